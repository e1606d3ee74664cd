/**
 * The 3 a.m. view (docs/operations.md#bull-board): during a Cal.com outage (503 on every token call) a
 * user's refresh job retries at the row's retry time, keeps its attempt count, and after its last
 * attempt lands in Failed with Cal.com's status and error code, the attempt number and the next time
 * in its failure reason, and no stack trace; the user stays ACTIVE and the sweep queues them again.
 * After the outage, completed jobs and sweeps show what happened through the board's API.
 */
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import type { Job, Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import { createMetrics } from "../../../src/metrics/metrics.js";
import { JOB_NAMES, PRIORITY, QUEUES, refreshDedupId } from "../../../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS, scheduleRefresh } from "../../../src/queue/refresh-queue.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { basic, type Call, httpClient } from "../http/http-client.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { eventually, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

// Jest 30 on Node 20 cannot require() ESM (@fastify/static → content-disposition); see web-server.test.ts.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../../src/http/web-server.js");

const ATTEMPTS = 3;
const ISO = "\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z";
const BOARD = "/admin/queues";
const CREDS = { username: "ops", password: `pw-${randomBytes(8).toString("hex")}` };

let h: Harness;
let worker: WorkerApp;
let app: FastifyInstance | undefined;
const prefix = uniquePrefix();
let userUlid = "";
let failedJob: Job | undefined;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  worker = await startWorker(workerEnv(h, prefix, { SWEEP_INTERVAL_SECONDS: "1" }));
});
afterAll(async () => {
  await app?.close();
  await worker?.close();
  await h.close();
});

async function currentJob(userUlid: string): Promise<Job | undefined> {
  const id = await worker.refreshQueue.getDeduplicationJobId(refreshDedupId(userUlid));
  return id ? worker.refreshQueue.getJob(id) : undefined;
}

describe("a Cal.com outage", () => {
  it("moves a failing user's job to Failed after its attempts, with status, code, attempt and next try", async () => {
    const user = await h.seedManaged();
    userUlid = user.userUlid;
    await useTokens(h, [user]); // in use: the worker keeps it fresh (an idle user's job would make no call)
    h.fake.faults.always("status503");
    // The user's job with few attempts, then the row made due (the sweep only moves this same job).
    // Retries follow the row's retry time: seconds apart.
    await (await currentJob(userUlid))?.remove();
    const added = await worker.refreshQueue.add(
      JOB_NAMES.refresh,
      { userUlid },
      { ...REFRESH_JOB_DEFAULTS, attempts: ATTEMPTS, delay: 500, deduplication: { id: refreshDedupId(userUlid), reschedule: true } },
    );
    await h.db.calToken.update({ where: { userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1_000) } });

    expect(await eventually(async () => (await added.getState()) === "failed", 45_000, 250)).toBe(true);
    failedJob = await worker.refreshQueue.getJob(added.id!);
    expect(failedJob?.attemptsMade).toBe(ATTEMPTS);
    expect(failedJob?.failedReason).toMatch(
      new RegExp(
        `^calcom\\.transient: Cal\\.com 503 \\(ServiceUnavailableException\\) — attempt ${ATTEMPTS}/${ATTEMPTS}, ` +
          `no retries left; the sweep queues the user again at ${ISO}$`,
      ),
    );
    expect(failedJob?.stacktrace).toEqual([]);

    const { logs } = await worker.refreshQueue.getJobLogs(added.id!);
    expect(logs).toHaveLength(ATTEMPTS);
    for (const [i, line] of logs.slice(0, -1).entries()) {
      expect(line).toMatch(
        new RegExp(`^calcom\\.transient: Cal\\.com 503 \\(ServiceUnavailableException\\) — attempt ${i + 1}/${ATTEMPTS}, next try ${ISO}$`),
      );
    }
    expect(logs.at(-1)).toBe(failedJob?.failedReason);
    const text = JSON.stringify({ reason: failedJob?.failedReason, logs });
    for (const secret of [user.accessToken, user.refreshToken]) expect(text).not.toContain(secret);
  }, 60_000);

  it("keeps the user ACTIVE and covered: the sweep queues a fresh job, which refreshes once Cal.com is back", async () => {
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
    expect(row.status).toBe("ACTIVE");
    expect(row.failureCount).toBeGreaterThan(0);
    const fresh = await eventually(async () => {
      const job = await currentJob(userUlid);
      return job !== undefined && job.id !== failedJob?.id;
    }, 30_000);
    expect(fresh).toBe(true);

    h.fake.faults.clear();
    const refreshed = await eventually(
      async () => (await h.db.calToken.findUniqueOrThrow({ where: { userUlid } })).version > row.version,
      40_000,
    );
    expect(refreshed).toBe(true);
  }, 90_000);
});

describe("a retry that finds its user pushed later by another failed attempt", () => {
  it("waits for the row's time without using up an attempt", async () => {
    const user = await h.seedManaged();
    await useTokens(h, [user]);
    h.fake.faults.always("status503");
    try {
      await (await currentJob(user.userUlid))?.remove();
      const opts = { ...REFRESH_JOB_DEFAULTS, attempts: ATTEMPTS, delay: 500, deduplication: { id: refreshDedupId(user.userUlid) } };
      const job = await worker.refreshQueue.add(JOB_NAMES.refresh, { userUlid: user.userUlid }, opts);
      await h.db.calToken.update({ where: { userUlid: user.userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1_000) } });
      const retrying = async () => (await worker.refreshQueue.getJob(job.id!))?.attemptsMade === 1 && (await job.getState()) === "delayed";
      expect(await eventually(retrying, 20_000, 100)).toBe(true);
      // A request path failed meanwhile and set a later retry time (outside the sweep's horizon).
      const later = new Date(Date.now() + 30_000);
      await h.db.calToken.update({ where: { userUlid: user.userUlid }, data: { nextRefreshAt: later } });
      const waited = async () => (await worker.refreshQueue.getJobLogs(job.id!)).logs.some((l) => l.includes("waiting until"));
      expect(await eventually(waited, 20_000)).toBe(true);
      const stored = await worker.refreshQueue.getJob(job.id!);
      expect(stored?.attemptsMade).toBe(1);
      expect(await stored?.getState()).toBe("delayed");
      expect(await currentJob(user.userUlid)).toMatchObject({ id: job.id });
      expect(Math.abs((stored?.processedOn ?? 0) + (stored?.delay ?? 0) - later.getTime())).toBeLessThan(2_000);
    } finally {
      h.fake.faults.clear();
    }
  }, 60_000);
});

describe("the board's API", () => {
  let boardGet: Call;
  type Listed = { queues: { name: string; jobs: { id: string; returnValue: unknown; failedReason?: string; stacktrace: unknown[] }[] }[] };

  it("shows what completed refreshes and sweeps did, and the failed job's reason without a stack", async () => {
    const queues = { refresh: worker.refreshQueue as Queue, sweep: worker.sweepQueue, events: worker.eventsQueue as Queue };
    app = createWebServer({
      queues,
      metrics: createMetrics({ queues: Object.values(queues), defaultMetrics: false }),
      logger: testLogger().logger,
      bullBoard: CREDS,
      readiness: async () => ({ ok: true, checks: {} }),
    });
    boardGet = httpClient(await app.listen({ port: 0, host: "127.0.0.1" }), { authorization: basic(CREDS.username, CREDS.password) });
    const jobsOf = async (queue: string, status: string) => {
      const res = await boardGet(`${BOARD}/api/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=50`);
      expect(res.statusCode).toBe(200);
      return (res.json() as Listed).queues.find((q) => q.name === queue)?.jobs ?? [];
    };

    const refreshes = (await jobsOf(QUEUES.refresh, "completed")).map((j) => j.returnValue as Record<string, unknown>);
    expect(refreshes).toContainEqual({ result: "refreshed", version: expect.any(Number) });

    const sweeps = (await jobsOf(QUEUES.sweep, "completed")).map((j) => j.returnValue as Record<string, unknown>);
    expect(sweeps.length).toBeGreaterThan(0);
    for (const s of sweeps) {
      expect(Object.keys(s).sort()).toEqual(expect.arrayContaining(["complete", "durationMs", "pages", "visited"]));
      expect(s).toMatchObject({ visited: expect.any(Number), pages: expect.any(Number), complete: true, durationMs: expect.any(Number) });
    }

    const failed = (await jobsOf(QUEUES.refresh, "failed")).find((j) => j.id === failedJob?.id);
    expect(failed?.failedReason).toBe(failedJob?.failedReason);
    expect(failed?.stacktrace).toEqual([]);
  }, 30_000);

  it("shows no rate-limit badge in normal operation, only while the queue is paused", async () => {
    const ttlShown = async () => {
      const res = await boardGet(`${BOARD}/api/queues`);
      const queue = (res.json() as { queues: { name: string; activeRateLimitTtl?: number }[] }).queues.find(
        (q) => q.name === QUEUES.refresh,
      );
      return queue?.activeRateLimitTtl ?? -1;
    };
    // The worker's limiter counter lives a minute after the jobs above ran: that is not a rate limit.
    expect(await worker.refreshQueue.getRateLimitTtl()).toBeGreaterThan(0);
    expect(await ttlShown()).toBe(0);
    await worker.refreshQueue.rateLimit(30_000); // what the processor does after a 429
    try {
      expect(await ttlShown()).toBeGreaterThan(20_000);
    } finally {
      await worker.refreshQueue.removeRateLimitKey();
    }
  });

  it("shows a moved delayed job's real run time", async () => {
    const other = await h.seedManaged();
    const at = new Date(Date.now() + 20 * 60_000);
    await scheduleRefresh(worker.refreshQueue, other.userUlid, at, PRIORITY.idle, () => new Date());
    const res = await boardGet(`${BOARD}/api/queues?activeQueue=${QUEUES.refresh}&status=delayed&page=1&jobsPerPage=50`);
    type Delayed = { data: { userUlid?: string }; timestamp: number; delay: number; opts: { delay?: number } };
    const jobs = (res.json() as { queues: { name: string; jobs: Delayed[] }[] }).queues.find((q) => q.name === QUEUES.refresh)?.jobs;
    const job = jobs?.find((j) => j.data.userUlid === other.userUlid);
    expect(job?.delay).toBe(job?.opts.delay); // no "Delay changed; the new run time is currently unknown"
    expect(Math.abs((job?.timestamp ?? 0) + (job?.opts.delay ?? 0) - at.getTime())).toBeLessThan(1_000);
  });
});
