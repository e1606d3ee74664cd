/**
 * rediss:// on a Redis Cluster: a three-master cluster that speaks only TLS (to clients and between
 * its nodes), REDIS_URL naming one node. Every kind of connection the service makes reaches every
 * node over TLS: BullMQ's shared Cluster and the blocking duplicates of a Worker and a QueueEvents,
 * the fleet client's Lua scripts, and the plain subscriber connection. (The full service on a cluster:
 * redis-cluster.test.ts.)
 */
import { randomBytes } from "node:crypto";
import { Job, Queue, QueueEvents, Worker } from "bullmq";
import { loadConfig, type Config } from "../../../src/config/config.js";
import { createRedisCallBudget } from "../../../src/fleet/call-budget.js";
import { createRedisConfigBreaker } from "../../../src/fleet/config-breaker.js";
import { publishPairChange, subscribePairChanges } from "../../../src/fleet/pair-changes.js";
import { fleetRedis, queueConnection, type QueueConnection, subscriberRedis } from "../../../src/queue/connection.js";
import { type RedisCluster, startRedisCluster } from "../../support/redis-cluster.js";
import { testEnv } from "../../support/harness.js";

const prefix = `{${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}t${randomBytes(3).toString("hex")}}`;
let cluster: RedisCluster | undefined;
let config: Config;
const closers: (() => Promise<unknown> | unknown)[] = [];

beforeAll(async () => {
  cluster = await startRedisCluster({ tls: true });
  config = loadConfig(testEnv("http://127.0.0.1:1", { REDIS_URL: cluster.url, REDIS_CLUSTER: "true", QUEUE_PREFIX: prefix }));
}, 60_000);

afterAll(async () => {
  for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  await cluster?.stop();
}, 30_000);

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

function connection(role: Parameters<typeof queueConnection>[1]): QueueConnection {
  const c = queueConnection(config, role);
  closers.push(() => c.close());
  return c;
}

it("names a TLS node", () => {
  expect(config).toMatchObject({ redisCluster: true, redisUrl: expect.stringMatching(/^rediss:\/\/127\.0\.0\.1:\d+$/) });
});

it("BullMQ runs a job through a Queue, a Worker and a QueueEvents over TLS", async () => {
  const worker = connection("worker");
  const queue = new Queue("tls-check", { connection: worker.connection, prefix });
  const events = new QueueEvents("tls-check", { connection: connection("events").connection, prefix });
  const consumer = new Worker("tls-check", async (job) => ({ twice: (job.data as { n: number }).n * 2 }), {
    connection: worker.connection,
    prefix,
  });
  closers.push(
    () => queue.close(),
    () => consumer.close(),
    () => events.close(),
  );
  const completed = new Set<string>();
  events.on("completed", ({ jobId }) => completed.add(jobId));
  await events.waitUntilReady();
  // The worker takes a job through its blocking duplicate and completes it.
  const first = await queue.add("x", { n: 21 });
  expect(await until(async () => (await first.getState()) === "completed")).toBe(true);
  expect((await Job.fromId(queue, first.id!))?.returnvalue).toEqual({ twice: 42 });
  // QueueEvents reads its stream from "$" once its blocking read runs (by now): the next completion reaches it.
  const second = await queue.add("x", { n: 1 });
  expect(await until(() => completed.has(second.id!))).toBe(true);
  const producer = new Queue("tls-check", { connection: connection("producer").connection, prefix });
  closers.push(() => producer.close());
  expect((await producer.getJobCounts("completed")).completed).toBe(2);
});

it("the fleet client's scripts and the pair-change feed work over TLS", async () => {
  const redis = fleetRedis(config);
  closers.push(() => redis.disconnect());
  const now = new Date();
  const breaker = createRedisConfigBreaker({ redis, prefix });
  expect(await breaker.trip("tls check", now)).toBe("opened");
  expect(await breaker.close(now)).toBe(true);
  expect(await createRedisCallBudget({ redis, prefix, ratePerMinute: 10 }).take("request", now)).toEqual({ ok: true });

  const received: string[] = [];
  const subscription = subscribePairChanges({
    redis: subscriberRedis(config),
    prefix,
    onChange: (u) => received.push(u),
    onLiveChange: () => undefined,
  });
  closers.push(() => subscription.close());
  for (let i = 0; i < 100 && !subscription.live; i++) await new Promise((r) => setTimeout(r, 20));
  expect(subscription.live).toBe(true);
  await publishPairChange(redis, prefix, "01TLSCHECK");
  for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received).toEqual(["01TLSCHECK"]);
});
