/**
 * The stall watchdog (src/queue/watchdog.ts) against a real queue on the run's Redis: "jobs waiting,
 * none active, worker supposedly running" for stallMs hands over to onStall (once); a paused queue,
 * a rate-limited queue, an empty queue or a worker that is not running are not stalls.
 */
import { Queue, Worker } from "bullmq";
import { loadConfig } from "../../../src/config/config.js";
import { startWatchdog } from "../../../src/queue/watchdog.js";
import { workerConnection } from "../../../src/queue/connection.js";
import { testEnv } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { eventually, sleep, uniquePrefix } from "../../support/worker-harness.js";

const STALL_MS = 1_000;
const CHECK_EVERY_MS = 200;
/** Long enough for a false alarm to show: stallMs plus several checks. */
const QUIET_MS = 3 * STALL_MS;

const connection = workerConnection(loadConfig(testEnv("http://127.0.0.1:1")).redisUrl);
const { logger } = testLogger();
const opened: { close(): Promise<void> }[] = [];
const watchdogs: { stop(): void }[] = [];

afterEach(async () => {
  for (const w of watchdogs.splice(0)) w.stop();
});
afterAll(async () => {
  await Promise.allSettled(opened.map((o) => o.close()));
});

async function newQueue(): Promise<Queue> {
  const q = new Queue("token-refresh", { connection, prefix: uniquePrefix() });
  q.on("error", () => undefined);
  opened.push(q);
  await q.waitUntilReady();
  return q;
}

/** A worker that claims to run but never takes a job: what a silently wedged BullMQ worker looks like. */
const wedged = (running = true) => ({ isRunning: () => running }) as unknown as Worker;

function watch(queue: Queue, worker: Worker) {
  const stalls: { reason: string; at: number }[] = [];
  const startedAt = Date.now();
  watchdogs.push(
    startWatchdog({
      queue,
      worker,
      stallMs: STALL_MS,
      checkEveryMs: CHECK_EVERY_MS,
      logger,
      onStall: (reason) => stalls.push({ reason, at: Date.now() }),
    }),
  );
  return { stalls, startedAt };
}

it("calls onStall once when jobs wait and none run for stallMs", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  const { stalls, startedAt } = watch(q, wedged());

  expect(await eventually(() => stalls.length > 0, 10_000, 50)).toBe(true);
  expect(stalls[0]!.at - startedAt).toBeGreaterThanOrEqual(STALL_MS);
  expect(stalls[0]!.reason).toMatch(/1 jobs waiting/);
  await sleep(QUIET_MS);
  expect(stalls).toHaveLength(1);
}, 30_000);

it("prioritized jobs count as waiting", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }, { priority: 5 });
  const { stalls } = watch(q, wedged());
  expect(await eventually(() => stalls.length > 0, 10_000, 50)).toBe(true);
}, 30_000);

it("does not fire when the queue is paused", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  await q.pause();
  const { stalls } = watch(q, wedged());
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
  // The same queue, resumed and still not consumed, is a stall (so the test above was not vacuous).
  await q.resume();
  expect(await eventually(() => stalls.length > 0, 10_000, 50)).toBe(true);
}, 30_000);

it("does not fire when there are no waiting jobs", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" }, { delay: 60_000 }); // delayed is not waiting
  const { stalls } = watch(q, wedged());
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
}, 30_000);

it("does not fire while the queue is rate-limited", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  await q.rateLimit(QUIET_MS + 5_000);
  const { stalls } = watch(q, wedged());
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
}, 30_000);

it("does not fire when the worker is not running (a real Worker with autorun: false)", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  const w = new Worker(q.name, async () => undefined, { connection, prefix: q.opts.prefix!, autorun: false });
  w.on("error", () => undefined);
  opened.push(w);
  expect(w.isRunning()).toBe(false);
  const { stalls } = watch(q, w);
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
}, 30_000);

it("does not fire when a live worker consumes the jobs", async () => {
  const q = await newQueue();
  const w = new Worker(q.name, async () => sleep(100), { connection, prefix: q.opts.prefix!, concurrency: 1 });
  w.on("error", () => undefined);
  opened.push(w);
  const { stalls } = watch(q, w);
  for (let i = 0; i < 5; i++) await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
  expect(await q.getJobCounts("waiting", "completed")).toMatchObject({ waiting: 0, completed: 5 });
}, 30_000);

it("stop() prevents a pending stall from firing", async () => {
  const q = await newQueue();
  await q.add("refresh", { userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  const { stalls } = watch(q, wedged());
  await sleep(STALL_MS / 2);
  for (const wd of watchdogs.splice(0)) wd.stop();
  await sleep(QUIET_MS);
  expect(stalls).toEqual([]);
}, 30_000);
