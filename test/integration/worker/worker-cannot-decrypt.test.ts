/**
 * The worker cannot decrypt a row (its TOKEN_ENCRYPTION_KEYS lack the row's key): a queued refresh
 * says so (`token.decrypt_failed`), not an anonymous "queued refresh failed".
 */
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { startWorker, uniquePrefix, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp;
const prefix = uniquePrefix();

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  worker = await startWorker(workerEnv(h, prefix, { TOKEN_ENCRYPTION_KEYS: `other:${Buffer.alloc(32, 9).toString("base64")}` }));
});
afterAll(async () => {
  await worker?.close();
  await h.close();
});

it("a queued refresh the worker cannot decrypt answers token.decrypt_failed", async () => {
  const u = await h.seedManaged();
  const res = await h.client.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
  expect(res).toEqual({
    success: false,
    refreshed: false,
    error: expect.objectContaining({ code: "token.decrypt_failed", retryable: false }),
  });
  const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
  expect(row).toMatchObject({ version: 1, status: "ACTIVE" });
});
