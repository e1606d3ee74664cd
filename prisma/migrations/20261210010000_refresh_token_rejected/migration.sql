-- Managed users: set when Cal.com rejected the stored refresh token and the force-refresh that should
-- have replaced it failed (a 5xx, a timeout), so the next attempt force-refreshes at once instead of
-- presenting a token Cal.com has already refused. A new pair clears it.
-- AlterTable
ALTER TABLE "cal_token" ADD COLUMN     "refresh_token_rejected" BOOLEAN NOT NULL DEFAULT false;
