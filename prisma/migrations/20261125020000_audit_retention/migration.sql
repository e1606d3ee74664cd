-- CreateIndex
CREATE INDEX "cal_token_audit_created_brin" ON "cal_token_audit" USING BRIN ("created_at" timestamptz_minmax_ops);

