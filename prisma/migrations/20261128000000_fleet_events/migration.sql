-- AlterTable
ALTER TABLE "cal_token_event" ALTER COLUMN "user_ulid" DROP NOT NULL;

