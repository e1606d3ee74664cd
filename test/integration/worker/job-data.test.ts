/**
 * The worker takes only refresh jobs our producers write: exactly `{ userUlid: <upper-case ULID> }`.
 * Anything else (a token in the data, a lower-case ULID, extra `repeat`-style keys, a wrong type or job
 * name) fails permanently without reading the row or calling Cal.com. Producers write the canonical
 * ULID, so two spellings of one user are one job; and queue-level overrides set in Redis before the
 * worker starts (rate limit, concurrency) are removed at start.
 */
import type { Job, Queue } from "bullmq";
import { ulid } from "ulid";
import { JOB_NAMES, PRIORITY, refreshDedupId, type RefreshJobData } from "../../../src/queue/names.js";
import { producerConnection } from "../../../src/queue/connection.js";
import { createRefreshQueue, requestRefreshNow, scheduleRefresh } from "../../../src/queue/refresh-queue.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, tokenEndpointCalls, type Harness, type SeededUser } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { eventually, startWorker, uniquePrefix, workerEnv } from "../../support/worker-harness.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = uniquePrefix();
const log = testLogger();
let h: Harness;
let worker: WorkerApp;
let producer: Queue<RefreshJobData>;
let user: SeededUser;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  user = await h.seedManaged(); // valid for an hour: nothing is due
  producer = createRefreshQueue({ connection: producerConnection(REDIS_URL), prefix });
  // An operator's overrides from before this deploy: one job per hour, one at a time.
  await producer.setGlobalRateLimit(1, 3_600_000);
  await producer.setGlobalConcurrency(1);
  worker = await startWorker(workerEnv(h, prefix), { logger: log.logger });
});

afterAll(async () => {
  await worker?.close();
  await producer?.close();
  await h?.close();
});

async function settled(job: Job): Promise<string> {
  await eventually(async () => ["failed", "completed"].includes(await job.getState()), 10_000, 50);
  return job.getState();
}

describe("worker start", () => {
  it("removes a queue-level rate limit and concurrency set before it started, and says so", async () => {
    expect(await producer.getGlobalRateLimit()).toBeNull();
    expect(await producer.getGlobalConcurrency()).toBeNull();
    const line = log.lines().find((l) => String(l.msg).includes("removed queue-level overrides"));
    expect(line).toMatchObject({ removedRateLimit: { max: 1, duration: 3_600_000 }, removedConcurrency: 1 });
  });
});

describe("job data", () => {
  it("refuses every job that is not exactly { userUlid: <canonical ULID> }: failed for good, nothing touched", async () => {
    const rowBefore = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    const callsBefore = tokenEndpointCalls(h.fake);
    const opts = { priority: PRIORITY.onDemand };
    const bad: [string, unknown][] = [
      [JOB_NAMES.refresh, { userUlid: user.userUlid, accessToken: user.accessToken }],
      [JOB_NAMES.refresh, { userUlid: user.userUlid.toLowerCase() }],
      [JOB_NAMES.refresh, { userUlid: user.userUlid, repeat: { every: 1_000 } }],
      [JOB_NAMES.refresh, { userUlid: Number.MAX_SAFE_INTEGER }],
      [JOB_NAMES.refresh, { userUlid: [user.userUlid] }],
      [JOB_NAMES.refresh, {}],
      ["refresh-now", { userUlid: user.userUlid }],
    ];
    const jobs = await Promise.all(bad.map(([name, data]) => worker.refreshQueue.add(name, data as RefreshJobData, opts)));

    for (const job of jobs) {
      expect(await settled(job)).toBe("failed");
      const stored = (await worker.refreshQueue.getJob(job.id!))!;
      expect(stored.attemptsMade).toBe(1); // no retries
      expect(stored.failedReason).toMatch(
        /^input\.invalid: .+; expected a "refresh" job with data exactly \{ userUlid: <upper-case ULID> \}$/,
      );
      expect(stored.failedReason).not.toContain(user.accessToken);
      expect(stored.failedReason).not.toContain(user.userUlid.toLowerCase());
    }
    expect(tokenEndpointCalls(h.fake)).toBe(callsBefore);
    const rowAfter = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: user.userUlid } });
    expect({ version: rowAfter.version, updatedAt: rowAfter.updatedAt }).toEqual({
      version: rowBefore.version,
      updatedAt: rowBefore.updatedAt,
    });
    expect(await h.db.calTokenAudit.count({ where: { userUlid: user.userUlid } })).toBe(0);
    const refusals = log.lines().filter((l) => String(l.msg).endsWith("refresh job refused: invalid job data"));
    expect(refusals).toHaveLength(bad.length);
  });

  it("a well-formed job for the same user still refreshes it", async () => {
    const job = await worker.refreshQueue.add(JOB_NAMES.refresh, { userUlid: user.userUlid }, { priority: PRIORITY.onDemand });
    expect(await settled(job)).toBe("completed");
    expect(((await worker.refreshQueue.getJob(job.id!))!.returnvalue as { result: string }).result).toMatch(/refreshed/);
  });
});

describe("producers", () => {
  it("write the canonical ULID: two spellings of one user are one job and one deduplication id", async () => {
    const upper = ulid();
    const lower = upper.toLowerCase();
    const at = new Date(Date.now() + 3_600_000);
    const first = await scheduleRefresh(producer, lower, at, PRIORITY.idle, () => new Date());
    const second = await scheduleRefresh(producer, upper, at, PRIORITY.idle, () => new Date());
    expect(second.jobId).toBe(first.jobId);
    expect(await producer.getDeduplicationJobId(refreshDedupId(upper))).toBe(first.jobId);
    expect(await producer.getDeduplicationJobId(refreshDedupId(lower))).toBeNull();
    expect((await producer.getJob(first.jobId!))!.data).toEqual({ userUlid: upper });

    const now = await requestRefreshNow(producer, lower);
    expect(now.id).toBe(first.jobId); // promoted, not a second job
    const forUser = (await producer.getJobs(["delayed", "prioritized", "waiting", "active", "completed"])).filter(
      (j) => j.data.userUlid.toUpperCase() === upper,
    );
    expect(forUser.map((j) => j.id)).toEqual([first.jobId]);
  });

  it("move a delayed job to the new time and priority; never demote a job raised on demand", async () => {
    const user = ulid();
    const parked = await scheduleRefresh(producer, user, new Date(Date.now() + 30 * 86_400_000), PRIORITY.idle, () => new Date());
    // The user came back: their next refresh is a keep-fresh one, at the active priority.
    const soon = new Date(Date.now() + 600_000);
    const back = await scheduleRefresh(producer, user, soon, PRIORITY.active, () => new Date());
    expect(back.jobId).toBe(parked.jobId);
    const moved = (await producer.getJob(parked.jobId!))!;
    expect(moved.priority).toBe(PRIORITY.active);
    expect(await moved.getState()).toBe("delayed");
    expect(moved.timestamp + moved.delay).toBeGreaterThanOrEqual(soon.getTime() - 1_000);
    expect(moved.timestamp + moved.delay).toBeLessThanOrEqual(soon.getTime() + 1_000);
  });

  it("never demote a delayed on-demand job (one waiting out a retry) to a scheduled priority", async () => {
    const user = ulid();
    const retrying = await producer.add(
      JOB_NAMES.refresh,
      { userUlid: user },
      { delay: 600_000, priority: PRIORITY.onDemand, deduplication: { id: refreshDedupId(user) } },
    );
    const again = await scheduleRefresh(producer, user, new Date(Date.now() + 300_000), PRIORITY.active, () => new Date());
    expect(again.jobId).toBe(retrying.id);
    expect((await producer.getJob(retrying.id!))!.priority).toBe(PRIORITY.onDemand);
  });

  it("refuse what is not a ULID at all", async () => {
    await expect(scheduleRefresh(producer, "not-a-ulid", new Date(), PRIORITY.idle, () => new Date())).rejects.toMatchObject({
      code: "input.invalid_user_ulid",
    });
    await expect(requestRefreshNow(producer, `${ulid()}x`)).rejects.toMatchObject({ code: "input.invalid_user_ulid" });
  });
});
