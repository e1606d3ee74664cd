-- CreateEnum
CREATE TYPE "CalTokenAlertState" AS ENUM ('NONE', 'FAILING', 'RECONNECT');

-- AlterTable
ALTER TABLE "cal_token" ADD COLUMN     "alert_state" "CalTokenAlertState" NOT NULL DEFAULT 'NONE';

-- CreateTable
CREATE TABLE "cal_token_event" (
    "id" CHAR(26) NOT NULL,
    "user_ulid" CHAR(26) NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL,
    "relayed_at" TIMESTAMPTZ(3),

    CONSTRAINT "cal_token_event_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "cal_token_event_relay_idx" ON "cal_token_event"("relayed_at", "created_at");

