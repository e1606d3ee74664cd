/**
 * Bull Board observes and retries; it writes nothing else. With valid credentials, over real HTTP and
 * against a real Redis: every board call that would add, edit, rate-limit, change concurrency, pause,
 * empty, clean, remove or obliterate gets 403 on every queue and leaves Redis exactly as it was;
 * retrying a failed job and promoting a delayed one still work.
 */
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { Queue, UnrecoverableError, Worker } from "bullmq";
import type { FastifyInstance } from "fastify";
import { ulid } from "ulid";
import { createMetrics } from "../../../src/metrics/metrics.js";
import { producerConnection, workerConnection } from "../../../src/queue/connection.js";
import { JOB_NAMES, QUEUES } from "../../../src/queue/names.js";
import { testLogger } from "../../support/log-sink.js";
import { basic, httpClient, type Call } from "./http-client.js";

// See web-server.test.ts: jest's CommonJS loader needs the ESM-only content-disposition handed over.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../../src/http/web-server.js");

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}bw${randomBytes(3).toString("hex")}`;
const BASE = "/admin/queues";
const CREDS = { username: "ops", password: "correct horse battery staple" };
const SECRET = "SECRET_FROM_THE_BOARD_123";
const log = testLogger();

let refresh: Queue;
let sweep: Queue;
let events: Queue;
let app: FastifyInstance;
let call: Call;
const ids = { waiting: "", delayed: "", delayed2: "", completed: "", failed: "", failed2: "" };

beforeAll(async () => {
  const make = (name: string) => new Queue(name, { connection: producerConnection(REDIS_URL), prefix: PREFIX });
  [refresh, sweep, events] = [make(QUEUES.refresh), make(QUEUES.sweep), make(QUEUES.events)];
  await Promise.all([refresh, sweep, events].map((q) => q.waitUntilReady()));
  // A completed and two failed refresh jobs, made by a worker that runs only while they are the only jobs.
  await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() }, { jobId: "done-1" });
  await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() }, { jobId: "fail-1" });
  await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() }, { jobId: "fail-2" });
  const worker = new Worker(
    QUEUES.refresh,
    async (job) => {
      if (job.id?.startsWith("fail")) throw new UnrecoverableError("test failure");
      return { ok: true };
    },
    { connection: workerConnection(REDIS_URL), prefix: PREFIX },
  );
  await waitFor(async () => (await refresh.getJobCounts("completed", "failed")).failed === 2);
  await worker.close();
  Object.assign(ids, { completed: "done-1", failed: "fail-1", failed2: "fail-2" });
  ids.waiting = (await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() })).id!;
  ids.delayed = (await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() }, { delay: 3_600_000 })).id!;
  ids.delayed2 = (await refresh.add(JOB_NAMES.refresh, { userUlid: ulid() }, { delay: 3_600_000 })).id!;
  await sweep.upsertJobScheduler("test-sweep", { every: 3_600_000 }, { name: JOB_NAMES.sweep });
  await events.add(JOB_NAMES.deliver, { eventId: "evt_1" });

  app = createWebServer({
    queues: { refresh, sweep, events },
    metrics: createMetrics({ defaultMetrics: false }),
    logger: log.logger,
    bullBoard: CREDS,
    readiness: async () => ({ ok: true, checks: {} }),
  });
  call = httpClient(await app.listen({ port: 0, host: "127.0.0.1" }), { authorization: basic(CREDS.username, CREDS.password) });
});

afterAll(async () => {
  await app?.close();
  for (const q of [refresh, sweep, events]) {
    await q?.obliterate({ force: true }).catch(() => undefined);
    await q?.close();
  }
});

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Everything a board write could change, for all three queues. */
async function redisState(): Promise<unknown> {
  const perQueue = async (q: Queue) => ({
    counts: await q.getJobCounts(),
    paused: await q.isPaused(),
    concurrency: await q.getGlobalConcurrency(),
    rateLimit: await q.getGlobalRateLimit(),
    rateLimitTtl: await q.getRateLimitTtl(),
    schedulers: (await q.getJobSchedulers()).map((s) => [s.key, s.every]),
    jobs: await Promise.all(
      (await q.getJobs()).map(async (j) => [j.id, j.name, j.data, j.priority, j.delay, await j.getState()] as const),
    ).then((all) => all.sort((a, b) => String(a[0]).localeCompare(String(b[0])))),
  });
  return { refresh: await perQueue(refresh), sweep: await perQueue(sweep), events: await perQueue(events) };
}

/** Every write the board offers except the allowed ones, for one queue. */
function refusedWrites(queue: string): [string, string, unknown?][] {
  const q = `${BASE}/api/queues/${queue}`;
  return [
    ["POST", `${q}/add`, { name: JOB_NAMES.refresh, data: { userUlid: ulid(), accessToken: SECRET }, options: { priority: 1 } }],
    ["PATCH", `${q}/${ids.waiting}/update-data`, { jobData: { userUlid: ulid(), accessToken: SECRET } }],
    ["PUT", `${q}/rate-limit`, { max: 1, duration: 3_600_000 }],
    ["PUT", `${q}/rate-limit/release`],
    ["PUT", `${q}/concurrency`, { concurrency: 1 }],
    ["PUT", `${q}/pause`],
    ["PUT", `${q}/resume`],
    ["PUT", `${q}/empty`],
    ["PUT", `${q}/clean/failed`],
    ["PUT", `${q}/clean/completed`],
    ["PUT", `${q}/clean/delayed`],
    ["PUT", `${q}/${ids.waiting}/clean`],
    ["PUT", `${q}/${ids.failed}/clean`],
    ["PUT", `${q}/obliterate`, { force: true }],
    ["PATCH", `${q}/${ids.delayed}/delay`, { delay: 1 }],
    ["PATCH", `${q}/${ids.waiting}/priority`, { priority: 1 }],
    ["PUT", `${q}/${ids.waiting}/remove-unprocessed-children`],
    ["PUT", `${q}/job-schedulers/test-sweep/remove`],
    ["PATCH", `${q}/job-schedulers/test-sweep`, { every: 1_000 }],
    ["PUT", `${q}/job-schedulers/test-sweep/run`],
    // Retrying is for failed jobs only; promoting for delayed ones only.
    ["PUT", `${q}/retry/completed`],
    ["PUT", `${q}/${ids.completed}/retry`],
    ["PUT", `${q}/${ids.waiting}/retry`],
    ["PUT", `${q}/${ids.waiting}/promote`],
  ];
}

describe("refused writes", () => {
  it.each([QUEUES.refresh, QUEUES.sweep, QUEUES.events])("every write on %s is 403 and Redis is unchanged", async (queue) => {
    const before = await redisState();
    const answers: string[] = [];
    for (const [method, path, body] of refusedWrites(queue)) {
      const res = await call(path, { method, body });
      answers.push(`${res.statusCode} ${method} ${path.slice(BASE.length)}`);
    }
    expect(answers.filter((a) => !a.startsWith("403 "))).toEqual([]);
    expect(await redisState()).toEqual(before);
  });

  it("the board-wide pause and resume are 403 too, and the refusals are logged without data", async () => {
    const before = await redisState();
    expect((await call(`${BASE}/api/queues/pause`, { method: "PUT" })).statusCode).toBe(403);
    expect((await call(`${BASE}/api/queues/resume`, { method: "PUT" })).statusCode).toBe(403);
    expect(await redisState()).toEqual(before);
    const refusals = log.lines().filter((l) => l.msg === "Bull Board write refused");
    expect(refusals.length).toBeGreaterThan(0);
    expect(JSON.stringify(log.lines())).not.toContain(SECRET);
  });

  it("a refused call says why in the board's error format", async () => {
    const res = await call(`${BASE}/api/queues/${QUEUES.refresh}/add`, { method: "POST", body: { name: "x", data: {} } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: { key: "ERRORS.FORBIDDEN" }, message: expect.stringContaining("retry failed jobs") });
  });

  it("the UI is told not to offer rate limits, scheduler edits or retries of completed jobs", async () => {
    const res = await call(`${BASE}/api/queues`);
    type Listed = { queues: { name: string; allowRetries: boolean; allowCompletedRetries: boolean; supportsGlobalRateLimit: boolean }[] };
    const refreshQueue = (res.json() as Listed).queues.find((q) => q.name === QUEUES.refresh);
    expect(refreshQueue).toMatchObject({ allowRetries: true, allowCompletedRetries: false, supportsGlobalRateLimit: false });
  });
});

describe("allowed writes", () => {
  it("retrying one failed job works", async () => {
    const res = await call(`${BASE}/api/queues/${QUEUES.refresh}/${ids.failed}/retry`, { method: "PUT" });
    expect(res.statusCode).toBe(204);
    expect(await (await refresh.getJob(ids.failed))!.getState()).toBe("waiting");
  });

  it("retrying every failed job works", async () => {
    const res = await call(`${BASE}/api/queues/${QUEUES.refresh}/retry/failed`, { method: "PUT" });
    expect(res.statusCode).toBe(200);
    expect(await (await refresh.getJob(ids.failed2))!.getState()).toBe("waiting");
    expect((await refresh.getJobCounts("failed")).failed).toBe(0);
  });

  it("promoting one delayed job, then every delayed job, works", async () => {
    const one = await call(`${BASE}/api/queues/${QUEUES.refresh}/${ids.delayed}/promote`, { method: "PUT" });
    expect(one.statusCode).toBe(204);
    expect(await (await refresh.getJob(ids.delayed))!.getState()).toBe("waiting");
    const all = await call(`${BASE}/api/queues/${QUEUES.refresh}/promote`, { method: "PUT" });
    expect(all.statusCode).toBe(200);
    expect(await (await refresh.getJob(ids.delayed2))!.getState()).toBe("waiting");
    expect((await refresh.getJobCounts("delayed")).delayed).toBe(0);
  });

  it("wrong credentials are still 401, before any of this", async () => {
    const res = await call(`${BASE}/api/queues/${QUEUES.refresh}/retry/failed`, {
      method: "PUT",
      headers: { authorization: basic("ops", "wrong") },
    });
    expect(res.statusCode).toBe(401);
  });
});
