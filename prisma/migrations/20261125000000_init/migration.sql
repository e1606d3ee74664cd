-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateEnum
CREATE TYPE "CalTokenStatus" AS ENUM ('ACTIVE', 'RECONNECT_REQUIRED');

-- CreateEnum
CREATE TYPE "CalTokenKind" AS ENUM ('managed', 'oauth2');

-- CreateEnum
CREATE TYPE "CalTokenOutcome" AS ENUM ('REFRESHED', 'FORCE_REFRESHED', 'FAILED_TRANSIENT', 'RECONNECT_REQUIRED', 'RECOVERED', 'CONFIG_ERROR');

-- CreateTable
CREATE TABLE "cal_token" (
    "user_ulid" CHAR(26) NOT NULL,
    "kind" "CalTokenKind" NOT NULL DEFAULT 'managed',
    "cal_user_id" INTEGER,
    "access_token_enc" TEXT NOT NULL,
    "refresh_token_enc" TEXT NOT NULL,
    "access_token_expires_at" TIMESTAMPTZ(3) NOT NULL,
    "refresh_token_expires_at" TIMESTAMPTZ(3),
    "status" "CalTokenStatus" NOT NULL DEFAULT 'ACTIVE',
    "version" INTEGER NOT NULL DEFAULT 1,
    "lease_owner" TEXT,
    "lease_until" TIMESTAMPTZ(3),
    "rotation_uncertain" BOOLEAN NOT NULL DEFAULT false,
    "failure_count" INTEGER NOT NULL DEFAULT 0,
    "first_failure_at" TIMESTAMPTZ(3),
    "last_failure_at" TIMESTAMPTZ(3),
    "last_failure_code" TEXT,
    "last_refreshed_at" TIMESTAMPTZ(3),
    "next_refresh_at" TIMESTAMPTZ(3) NOT NULL,
    "last_used_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "cal_token_pkey" PRIMARY KEY ("user_ulid")
);

-- CreateTable
CREATE TABLE "cal_token_audit" (
    "id" BIGSERIAL NOT NULL,
    "user_ulid" CHAR(26) NOT NULL,
    "outcome" "CalTokenOutcome" NOT NULL,
    "trigger" TEXT NOT NULL,
    "error_code" TEXT,
    "version" INTEGER,
    "duration_ms" INTEGER,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "cal_token_audit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "cal_token_due_idx" ON "cal_token"("status", "next_refresh_at", "user_ulid");

-- CreateIndex
CREATE INDEX "cal_token_audit_user_idx" ON "cal_token_audit"("user_ulid", "created_at");

-- AddForeignKey
ALTER TABLE "cal_token_audit" ADD CONSTRAINT "cal_token_audit_user_ulid_fkey" FOREIGN KEY ("user_ulid") REFERENCES "cal_token"("user_ulid") ON DELETE CASCADE ON UPDATE CASCADE;

