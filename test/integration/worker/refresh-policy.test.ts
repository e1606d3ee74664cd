/**
 * The refresh policy end to end (docs/architecture.md#scheduling, src/core/grant-policy.ts), with the
 * real worker, Postgres, Redis and the fake Cal.com:
 * - an active user (a request path used the token within KEEP_FRESH_WINDOW_SECONDS) is kept fresh as
 *   before; an idle managed user is parked: no Cal.com call while idle, the next request refreshes inline;
 * - a keep-fresh job that finds its user gone idle makes no call and re-plans: a write that bumps no
 *   version and leaves no audit row;
 * - an idle OAuth2 user is refreshed once inside its keep-alive window before the 30-day refresh-token
 *   expiry (the window is moved to seconds after the connection here), and the stored expiry moves on.
 */
import { randomBytes } from "node:crypto";
import type { Job } from "bullmq";
import { ulid } from "ulid";
import { PRIORITY, refreshDedupId, type RefreshJobData } from "../../../src/queue/names.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { s256, type TokenCallRecord } from "../../fakes/calcom/index.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { eventually, sleep, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

const S = 1_000;
const D = 86_400_000;
const PARK_MS = 30 * D; // PARK_SECONDS default

/** The jobs the worker finished for a user (newest first), with what they returned. */
async function finishedJobs(worker: WorkerApp, userUlid: string): Promise<Job<RefreshJobData>[]> {
  const jobs = await worker.refreshQueue.getJobs(["completed"], 0, 500);
  return jobs.filter((j) => j.data.userUlid === userUlid);
}

/** The user's job waiting in Redis (delayed), if any. */
async function pendingJob(worker: WorkerApp, userUlid: string): Promise<Job<RefreshJobData> | undefined> {
  const id = await worker.refreshQueue.getDeduplicationJobId(refreshDedupId(userUlid));
  return id ? ((await worker.refreshQueue.getJob(id)) ?? undefined) : undefined;
}

describe("with the default windows", () => {
  let h: Harness;
  let worker: WorkerApp;
  const prefix = uniquePrefix();
  // Every token call the fake Cal.com answered, by Cal.com user: the active users of one test are still
  // refreshed while the next runs.
  const tokenCalls: TokenCallRecord[] = [];
  const callsFor = (u: SeededUser) => tokenCalls.filter((c) => c.calUserId === u.calUserId).length;

  beforeAll(async () => {
    h = await startHarness({
      ownDatabase: true,
      env: { QUEUE_PREFIX: prefix, ON_DEMAND_BUFFER_SECONDS: "3" },
      fake: { onTokenCall: (c) => tokenCalls.push(c) },
    });
    worker = await startWorker(workerEnv(h, prefix));
  });
  afterAll(async () => {
    await worker?.close();
    await h.close();
  });

  it("keeps an active user of each kind fresh as before, and makes no call for an idle one", async () => {
    const TTL = 10_000;
    const managed = await h.seedManaged({ ttlMs: TTL });
    const oauth2 = await h.seedOAuth2({ ttlMs: TTL });
    const idle = await h.seedManaged({ ttlMs: TTL });
    const firstExpiry = async (u: SeededUser) =>
      (await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } })).accessTokenExpiresAt.getTime();
    const expiries = new Map([
      [managed.userUlid, await firstExpiry(managed)],
      [oauth2.userUlid, await firstExpiry(oauth2)],
    ]);
    await useTokens(h, [managed, oauth2]);
    await sleep(2.3 * TTL);

    for (const u of [managed, oauth2]) {
      const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: u.userUlid }, orderBy: { id: "asc" } });
      // Refreshed by the worker ahead of each expiry (at 50–70 % of each 10 s life): 2–4 times, nothing inline.
      expect(audits.length).toBeGreaterThanOrEqual(2);
      expect(audits.map((a) => [a.outcome, a.trigger])).toEqual(audits.map(() => ["REFRESHED", "worker"]));
      expect(audits[0]!.createdAt.getTime()).toBeLessThan(expiries.get(u.userUlid)!);
      for (let i = 1; i < audits.length; i++) {
        expect(audits[i]!.createdAt.getTime() - audits[i - 1]!.createdAt.getTime()).toBeLessThan(TTL);
      }
    }
    // The idle user's token lapsed twice over without a call: its first job found it idle and parked it.
    expect(callsFor(idle)).toBe(0);
    expect(await h.db.calTokenAudit.count({ where: { userUlid: idle.userUlid } })).toBe(0);
    const parked = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: idle.userUlid } });
    expect(parked.version).toBe(1);
    expect(parked.nextRefreshAt.getTime()).toBeGreaterThan(Date.now() + PARK_MS - 60 * S);
    expect(h.fake.stats().deadRefreshTokenUses).toBe(0);
  }, 60_000);

  it("parks an idle managed user: no Cal.com call while idle; its next request refreshes inline", async () => {
    const user = await h.seedManaged({ ttlMs: 6_000 });
    const savedRow = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    // The save plans a keep-fresh refresh (the user is connecting); the job that wakes finds nobody using it.
    const parked = async () =>
      (await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } })).nextRefreshAt.getTime() > Date.now() + 29 * D;
    expect(await eventually(parked, 15_000, 100)).toBe(true);
    expect(await eventually(async () => (await finishedJobs(worker, user.userUlid)).length > 0, 5_000, 50)).toBe(true);
    const job = (await finishedJobs(worker, user.userUlid))[0];
    expect(job?.returnvalue).toEqual({ result: "idle" });
    const { logs } = await worker.refreshQueue.getJobLogs(job!.id!);
    expect(logs.at(-1)).toMatch(
      /^attempt 1\/8: idle \(not used for as long as we know; parked until \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\)$/,
    );
    // …and the next wake-up is the parked time, at the idle priority.
    const next = await pendingJob(worker, user.userUlid);
    expect(next?.priority).toBe(PRIORITY.idle);
    expect((next?.timestamp ?? 0) + (next?.delay ?? 0)).toBeGreaterThan(Date.now() + 29 * D);

    // Idle past the token's expiry: still no call, the row as the save left it but for the time.
    await sleep(Math.max(0, savedRow.accessTokenExpiresAt.getTime() - Date.now()) + 500);
    expect(callsFor(user)).toBe(0);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    expect({ ...row, nextRefreshAt: null }).toEqual({ ...savedRow, nextRefreshAt: null });
    expect(await h.db.calTokenAudit.count({ where: { userUlid: user.userUlid } })).toBe(0);

    // The user comes back: the request refreshes inline, and the user is kept fresh from then on.
    const res = await h.client.ensureValidCalToken(user.userUlid);
    expect(res).toMatchObject({ success: true, refreshed: true });
    expect(h.fake.isAccessTokenValid(res.tokenInfo!.accessToken)).toBe(true);
    // (the fake reports a call once it knows the answer was delivered, about a second later)
    expect(await eventually(() => callsFor(user) === 1, 5_000, 100)).toBe(true);
    const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: user.userUlid } });
    expect(audits.map((a) => [a.outcome, a.trigger, a.version])).toEqual([["REFRESHED", "on_demand", 2]]);
    const after = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    // Kept fresh again: due ahead of the new 6 s token's expiry, held to this client's minimum interval
    // (MIN_REFRESH_INTERVAL_SECONDS, 30 s by default) — not parked.
    expect(after.nextRefreshAt.getTime()).toBeLessThanOrEqual(audits[0]!.createdAt.getTime() + 30 * S + 1_000);
  }, 30_000);

  it.each([
    ["managed", "parked", PRIORITY.idle],
    ["oauth2", "keep-alive at", PRIORITY.keepAlive],
  ] as const)(
    "a keep-fresh job that finds its %s user gone idle makes no call and re-plans (%s)",
    async (kind, what, priority) => {
      const user: SeededUser = kind === "managed" ? await h.seedManaged() : await h.seedOAuth2();
      // The user used the token 11 minutes ago (past the 10-minute window of these tests) and left; the
      // keep-fresh refresh planned while they were active comes due now.
      await h.db.calToken.update({
        where: { userUlid: user.userUlid },
        data: { lastUsedAt: new Date(Date.now() - 11 * 60_000), nextRefreshAt: new Date(Date.now() + 500) },
      });
      const before = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
      const replanned = async () =>
        (await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } })).nextRefreshAt.getTime() > Date.now() + 20 * D;
      expect(await eventually(replanned, 15_000, 100)).toBe(true);

      const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
      // Only next_refresh_at moved: no new version, updated_at untouched, no audit row, no call.
      expect({ ...row, nextRefreshAt: null }).toEqual({ ...before, nextRefreshAt: null });
      expect(await h.db.calTokenAudit.count({ where: { userUlid: user.userUlid } })).toBe(0);
      expect(callsFor(user)).toBe(0);
      if (kind === "managed") {
        expect(row.nextRefreshAt.getTime()).toBeGreaterThan(Date.now() + PARK_MS - 60 * S);
      } else {
        // Keep-alive at refresh-token expiry − 3 d − random(0, 2 d).
        const rt = row.refreshTokenExpiresAt!.getTime();
        expect(row.nextRefreshAt.getTime()).toBeGreaterThanOrEqual(rt - 5 * D);
        expect(row.nextRefreshAt.getTime()).toBeLessThanOrEqual(rt - 3 * D);
      }
      // The row is re-planned before the job finishes (it then schedules its successor): wait for it.
      expect(await eventually(async () => (await finishedJobs(worker, user.userUlid)).length > 0, 5_000, 50)).toBe(true);
      const job = (await finishedJobs(worker, user.userUlid))[0];
      expect(job?.returnvalue).toEqual({ result: "idle" });
      const { logs } = await worker.refreshQueue.getJobLogs(job!.id!);
      expect(logs.at(-1)).toContain(`idle (not used for 11 min; ${what} `);
      const next = await pendingJob(worker, user.userUlid);
      expect(next?.priority).toBe(priority);
      expect(Math.abs((next?.timestamp ?? 0) + (next?.delay ?? 0) - row.nextRefreshAt.getTime())).toBeLessThan(2 * S);
    },
    30_000,
  );

  it("retries an idle user in a failure streak instead of parking it (its next_refresh_at is the request paths' cool-down)", async () => {
    const user = await h.seedManaged();
    const failedAt = new Date(Date.now() - 5_000);
    await h.db.calToken.update({
      where: { userUlid: user.userUlid },
      data: {
        failureCount: 1,
        firstFailureAt: failedAt,
        lastFailureAt: failedAt,
        lastFailureCode: "calcom.transient",
        nextRefreshAt: new Date(Date.now() + 500),
      },
    });
    const refreshed = async () => (await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } })).version > 1;
    expect(await eventually(refreshed, 15_000, 100)).toBe(true);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    expect(row).toMatchObject({ version: 2, failureCount: 0, lastFailureAt: null });
    // Recovered, and idle: parked from now on.
    expect(row.nextRefreshAt.getTime()).toBeGreaterThan(Date.now() + PARK_MS - 60 * S);
  }, 30_000);
});

describe("an idle OAuth2 user near its refresh token's expiry", () => {
  let h: Harness;
  let worker: WorkerApp;
  const prefix = uniquePrefix();
  const REDIRECT = "https://app.example.test/cal/callback";
  // The keep-alive window moved to 15–20 s after the pair was issued: lead = 30 days − 20 s, jitter 5 s.
  const LEAD_MS = 30 * D - 20 * S;
  const JITTER_MS = 5 * S;

  beforeAll(async () => {
    h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
    worker = await startWorker(
      workerEnv(h, prefix, { KEEP_ALIVE_LEAD_SECONDS: String(LEAD_MS / S), KEEP_ALIVE_JITTER_SECONDS: String(JITTER_MS / S) }),
    );
  });
  afterAll(async () => {
    await worker?.close();
    await h.close();
  });

  it("is refreshed once inside its keep-alive window, and its refresh-token expiry moves 30 days on", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const { code } = h.fake.createAuthorizationCode({
      clientId: "fake-oauth-client",
      redirectUri: REDIRECT,
      codeChallenge: s256(verifier),
      accessTokenTtlMs: 12_000,
    });
    const userUlid = ulid();
    const sent = Date.now();
    await h.client.completeCalConnection({ userUlid, code, codeVerifier: verifier, redirectUri: REDIRECT });
    const connected = Date.now();
    const first = await h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
    // Cal.com sends no refresh-token expiry: 30 days from when the code exchange was sent.
    const rt0 = first.refreshTokenExpiresAt!.getTime();
    expect(rt0).toBeGreaterThanOrEqual(sent + 30 * D);
    expect(rt0).toBeLessThanOrEqual(connected + 30 * D);
    const windowStart = rt0 - LEAD_MS - JITTER_MS;

    // The keep-fresh job planned by the connection (at 6–8.4 s) finds nobody using the token, and the
    // keep-alive window not open yet: no call, the keep-alive is planned inside the window.
    const replanned = async () => (await finishedJobs(worker, userUlid)).some((j) => j.returnvalue?.result === "idle");
    expect(await eventually(replanned, 15_000, 100)).toBe(true);
    expect(h.fake.stats().oauth2Refreshes).toBe(0);
    const planned = await h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
    expect(planned.version).toBe(1);
    expect(planned.nextRefreshAt.getTime()).toBeGreaterThanOrEqual(windowStart);
    expect(planned.nextRefreshAt.getTime()).toBeLessThanOrEqual(rt0 - LEAD_MS);
    expect((await pendingJob(worker, userUlid))?.priority).toBe(PRIORITY.keepAlive);

    // The keep-alive refresh, although the access token lapsed long ago and nobody uses it.
    const kept = async () => (await h.db.calTokenAudit.count({ where: { userUlid } })) > 0;
    expect(await eventually(kept, 20_000, 100)).toBe(true);
    const [audit] = await h.db.calTokenAudit.findMany({ where: { userUlid } });
    expect(audit).toMatchObject({ outcome: "REFRESHED", trigger: "worker", version: 2 });
    const at = audit!.createdAt.getTime();
    expect(at).toBeGreaterThanOrEqual(windowStart);
    expect(at).toBeLessThan(rt0 - LEAD_MS + 3 * S);
    expect(at).toBeGreaterThan(first.accessTokenExpiresAt.getTime());
    // The new refresh token's expiry: 30 days from the refresh.
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
    const rt1 = row.refreshTokenExpiresAt!.getTime();
    expect(rt1).toBeLessThanOrEqual(at + 30 * D);
    expect(rt1).toBeGreaterThan(at + 30 * D - 3 * S);
    expect(rt1 - rt0).toBeGreaterThanOrEqual(15 * S);
    // Once: the next keep-alive is planned in the new window, 15–20 s after this refresh.
    expect(row.nextRefreshAt.getTime()).toBeGreaterThanOrEqual(rt1 - LEAD_MS - JITTER_MS);
    expect(row.nextRefreshAt.getTime()).toBeLessThanOrEqual(rt1 - LEAD_MS);
    expect(h.fake.stats()).toMatchObject({ oauth2Refreshes: 1, deadRefreshTokenUses: 0 });
    expect(await h.db.calTokenAudit.count({ where: { userUlid } })).toBe(1);
  }, 45_000);
});
