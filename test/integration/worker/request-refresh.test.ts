/** requestCalTokenRefresh: through the queue, promoting rather than duplicating, waiting with a timeout. */
import { ulid } from "ulid";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { refreshDedupId } from "../../../src/queue/names.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { startWorker, uniquePrefix, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp | null = null;
const prefix = uniquePrefix();

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
});
afterAll(async () => {
  await worker?.close();
  await h.close();
});
beforeEach(() => h.fake.resetStats());

describe("without a running worker", () => {
  it("saving schedules exactly one delayed job per user; a request promotes it instead of adding another", async () => {
    const u = await h.seedManaged();
    const probe = await startWorker(workerEnv(h, prefix), {});
    await probe.refreshWorker.pause(); // queue inspection only: nothing runs
    const q = probe.refreshQueue;
    const jobId = await q.getDeduplicationJobId(refreshDedupId(u.userUlid));
    expect(jobId).toBeTruthy();
    const job = (await q.getJob(jobId!))!;
    expect(await job.getState()).toBe("delayed");
    expect(job.data).toEqual({ userUlid: u.userUlid }); // the ULID and nothing else

    const res = await h.client.requestCalTokenRefresh(u.userUlid); // no wait
    expect(res).toEqual({ success: true, refreshed: false });
    const after = (await q.getJob(jobId!))!;
    expect(await after.getState()).toBe("prioritized");
    expect(after.priority).toBe(1);
    expect(await q.getDeduplicationJobId(refreshDedupId(u.userUlid))).toBe(jobId);
    const pendingForUser = (await q.getJobs(["delayed", "prioritized", "waiting"])).filter((j) => j.data.userUlid === u.userUlid);
    expect(pendingForUser.map((j) => j.id)).toEqual([jobId]);

    const timedOut = await h.client.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 300 });
    recordForSecretScan(timedOut);
    expect(timedOut).toMatchObject({ success: false, error: { code: "refresh.wait_timeout", retryable: true } });
    await probe.close();
  });

  it("bad input and unknown users answer with stable codes", async () => {
    expect((await h.client.requestCalTokenRefresh("nope")).error?.code).toBe("input.invalid_user_ulid");
    expect((await h.client.requestCalTokenRefresh(ulid())).error?.code).toBe("token.not_found");
  });

  it("an unreachable Redis is a quick, clear error", async () => {
    const offline = h.newClient({ REDIS_URL: "redis://127.0.0.1:1" });
    const u = await h.seedManaged();
    const started = Date.now();
    const res = await offline.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
    expect(res).toMatchObject({ success: false, error: { code: "queue.unavailable", retryable: true } });
    expect(Date.now() - started).toBeLessThan(8_000);
    // While Redis stays down, the next calls fail at once instead of waiting out the connect timeout.
    const again = Date.now();
    const second = await offline.requestCalTokenRefresh(u.userUlid);
    expect(second.error?.code).toBe("queue.unavailable");
    expect(Date.now() - again).toBeLessThan(1_000);
  });
});

describe("with the worker running", () => {
  beforeAll(async () => {
    worker = await startWorker(workerEnv(h, prefix));
  });

  it("a row this client cannot decrypt is token.decrypt_failed, not queue.unavailable", async () => {
    const u = await h.seedManaged();
    const wrongKey = h.newClient({ TOKEN_ENCRYPTION_KEYS: `other:${Buffer.alloc(32, 7).toString("base64")}` });
    const res = await wrongKey.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
    expect(res).toEqual({
      success: false,
      refreshed: false,
      error: expect.objectContaining({ code: "token.decrypt_failed", retryable: false }),
    });
  });

  it("wait:true returns the refreshed token read from the database", async () => {
    const u = await h.seedManaged();
    const res = await h.client.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
    expect(res).toMatchObject({ success: true, refreshed: true, tokenInfo: { userUlid: u.userUlid, status: "ACTIVE" } });
    expect(res.tokenInfo!.accessToken).not.toBe(u.accessToken);
    expect(h.fake.isAccessTokenValid(res.tokenInfo!.accessToken)).toBe(true);
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid } });
    expect(audits.map((a) => [a.outcome, a.trigger])).toEqual([["REFRESHED", "manual"]]);
    // The job's return value holds no secret.
    const done = await worker!.refreshQueue.getJobs(["completed"]);
    const text = JSON.stringify(done.map((j) => [j.data, j.returnvalue]));
    expect(text).not.toContain(res.tokenInfo!.accessToken);
    expect(text).not.toContain(u.refreshToken);
  });

  it("the connect flow: save, then a queued refresh proves the grant works", async () => {
    const g = h.fake.createManagedUser();
    const userUlid = ulid();
    await h.client.saveCalTokens({
      userUlid,
      accessToken: g.accessToken,
      refreshToken: g.refreshToken,
      accessTokenExpiresAt: g.accessTokenExpiresAt,
      calUserId: g.calUserId,
    });
    const res = await h.client.requestCalTokenRefresh(userUlid, { wait: true, timeoutMs: 10_000 });
    expect(res).toMatchObject({ success: true, refreshed: true });
    expect(h.fake.isRefreshTokenLive(g.refreshToken)).toBe(false);
  });

  it("a dead grant comes back as reconnect_required", async () => {
    const u = await h.seedOAuth2();
    h.fake.faults.next("dropAfterCommit");
    await h.client.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
    const res = await h.client.requestCalTokenRefresh(u.userUlid, { wait: true, timeoutMs: 10_000 });
    recordForSecretScan(res);
    expect(res.error?.code).toBe("token.reconnect_required");
  });
});
