-- Backfill (hand-written data migration): OAuth2 rows written before the refresh-token expiry was
-- stored. Cal.com's OAuth2 refresh tokens expire 30 days after the request that issued them and it does
-- not send that expiry (docs/architecture.md#scheduling). The pair in the row was issued no later than
-- its last write (last_refreshed_at, else updated_at, else created_at) and, since an OAuth2 access
-- token lives 1800 s, no later than its access-token expiry − 1800 s (a pair saved or imported long
-- after it was issued); the earlier of the two is taken, so the assumed expiry is never late.
UPDATE "cal_token"
SET "refresh_token_expires_at" = LEAST(
      COALESCE("last_refreshed_at", "updated_at", "created_at"),
      "access_token_expires_at" - interval '1800 seconds'
    ) + interval '30 days'
WHERE "kind" = 'oauth2'::"CalTokenKind" AND "refresh_token_expires_at" IS NULL;

-- CreateIndex
CREATE INDEX "cal_token_rt_expiry_idx" ON "cal_token"("status", "refresh_token_expires_at");
