import { randomBytes } from "node:crypto";
import { Queue, Worker, type Job } from "bullmq";
import { ulid } from "ulid";
import { createDeliverEventProcessor } from "../../../jobs/deliver-event.js";
import { createAlertSink } from "../../../src/events/alert-sink.js";
import { createEventRelay, type EventRelay } from "../../../src/events/relay.js";
import type { DeliverEventJobData, TokenEvent } from "../../../src/events/types.js";
import { producerConnection, workerConnection } from "../../../src/queue/connection.js";
import { QUEUES } from "../../../src/queue/names.js";
import { createEventStore, type EventStore } from "../../../src/store/event-store.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../fakes/webhook-receiver.js";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";

// Outbox → BullMQ events queue → signed webhook, on real Postgres and Redis. The relay tests live in
// this one file on purpose: a relay moves EVERY unrelayed row in the (shared) test database, so two
// files relaying in parallel would steal each other's rows. Assertions only look at this file's users.

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const SECRET = "whsec_events_test_secret_0123456789";
const prefix = () => `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}ev${randomBytes(3).toString("hex")}`;

let h: Harness;
let events: EventStore;
const { logger, lines } = testLogger();
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  h = await startHarness();
  events = createEventStore({ prisma: h.db });
});
afterAll(async () => {
  // Reverse order: workers and relays before the queues they use, queues before the harness.
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await h.close();
});

async function openQueue(): Promise<Queue<DeliverEventJobData>> {
  const queue = new Queue<DeliverEventJobData>(QUEUES.events, { connection: producerConnection(REDIS_URL), prefix: prefix() });
  closers.push(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
  });
  await queue.waitUntilReady();
  return queue;
}

function relayFor(queue: Queue<DeliverEventJobData>): EventRelay {
  const relay = createEventRelay({ eventStore: events, queue, logger });
  closers.push(() => relay.close());
  return relay;
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expiresAt(u: SeededUser): Promise<Date> {
  const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid }, select: { accessTokenExpiresAt: true } });
  return row.accessTokenExpiresAt;
}

describe("event relay", () => {
  it("is idempotent: relaying twice, or re-relaying after a crash, gives one job per event", async () => {
    const queue = await openQueue();
    const relay = relayFor(queue);
    // relay: null so nothing relays behind the test's back.
    const sink = createAlertSink({ eventStore: events, relay: null, logger });
    const users = [await h.seedManaged(), await h.seedOAuth2()];
    const now = new Date();
    for (const u of users) await sink.reconnectRequired({ userUlid: u.userUlid, kind: "managed", code: "calcom.invalid_grant", now });
    const mine = await h.db.calTokenEvent.findMany({ where: { userUlid: { in: users.map((u) => u.userUlid) } } });
    const ids = mine.map((e) => e.id).sort();
    expect(ids).toHaveLength(2);

    expect(await relay.relayOnce()).toBeGreaterThanOrEqual(2);
    await relay.relayOnce();
    // A crash between queue.add and markRelayed: the rows come back unrelayed and are added again.
    await h.db.calTokenEvent.updateMany({ where: { id: { in: ids } }, data: { relayedAt: null } });
    await relay.relayOnce();

    const jobs = (await queue.getJobs(["waiting", "delayed", "prioritized"])).filter((j) => ids.includes(j.id ?? ""));
    expect(jobs.map((j) => j.id).sort()).toEqual(ids);
    for (const j of jobs) {
      // Only the id travels through Redis (docs/architecture.md#invariant-6-no-secret-leaves-the-row); the event body stays in Postgres.
      expect(j.data).toEqual({ eventId: j.id });
      expect(j.opts).toMatchObject({ attempts: 12, backoff: { type: "exponential", delay: 2000 } });
    }
    const after = await h.db.calTokenEvent.findMany({ where: { id: { in: ids } } });
    expect(after.every((e) => e.relayedAt !== null)).toBe(true);
  });

  it("the deliver processor completes without a webhook configured, and for a missing row", async () => {
    const processor = createDeliverEventProcessor({ eventStore: events, webhook: null, logger });
    const sink = createAlertSink({ eventStore: events, relay: null, logger });
    const u = await h.seedManaged();
    await sink.reconnectRequired({ userUlid: u.userUlid, kind: "managed", code: "calcom.invalid_grant", now: new Date() });
    const row = await h.db.calTokenEvent.findFirstOrThrow({ where: { userUlid: u.userUlid } });
    const fakeJob = (eventId: string) => ({ id: eventId, data: { eventId }, attemptsMade: 0 }) as unknown as Job<DeliverEventJobData>;
    await expect(processor(fakeJob(row.id))).resolves.toBeUndefined();
    await expect(processor(fakeJob(ulid()))).resolves.toBeUndefined();
    expect(lines().some((l) => String(l.msg).includes("no events webhook configured") && l.eventId === row.id)).toBe(true);
  });
});

describe("end to end: flip → outbox → queue → signed webhook", () => {
  it("delivers every event verified, exactly once by idempotency key, with no token in any payload", async () => {
    const receiver: WebhookReceiver = await startWebhookReceiver({ secret: SECRET, failFirst: 2 });
    closers.push(() => receiver.close());
    const queue = await openQueue();
    const relay = relayFor(queue);
    const worker = new Worker<DeliverEventJobData>(
      QUEUES.events,
      createDeliverEventProcessor({ eventStore: events, webhook: { url: receiver.url, secret: SECRET, timeoutMs: 2000 }, logger }),
      { connection: workerConnection(REDIS_URL), prefix: queue.opts.prefix!, concurrency: 4 },
    );
    worker.on("error", (err) => logger.error({ err }, "worker error"));
    closers.push(() => worker.close());
    const sink = createAlertSink({ eventStore: events, relay, logger });

    const a = await h.seedManaged({ ttlMs: 2 * 60_000 });
    const b = await h.seedOAuth2();
    const now = new Date();
    // a: failing (token expires in 2 min) then recovered; b: reconnect then recovered.
    await sink.refreshFailing({
      userUlid: a.userUlid,
      kind: "managed",
      code: "calcom.transient",
      accessTokenExpiresAt: await expiresAt(a),
      firstFailureAt: now,
      now,
    });
    await sink.refreshFailing({
      userUlid: a.userUlid,
      kind: "managed",
      code: "calcom.transient",
      accessTokenExpiresAt: await expiresAt(a),
      firstFailureAt: now,
      now,
    });
    await sink.reconnectRequired({ userUlid: b.userUlid, kind: "oauth2", code: "calcom.invalid_grant", now });
    await sink.recovered({ userUlid: a.userUlid, kind: "managed", now: new Date() });
    await sink.recovered({ userUlid: b.userUlid, kind: "oauth2", now: new Date() });

    const mineIds = new Set(
      (await h.db.calTokenEvent.findMany({ where: { userUlid: { in: [a.userUlid, b.userUlid] } } })).map((e) => e.id),
    );
    expect(mineIds.size).toBe(4);
    // Backoff is 2 s then 4 s, so even one event failing twice lands within ~6 s.
    await waitFor(() => receiver.uniqueEvents().filter((e) => mineIds.has(e.id)).length === 4);

    const mine = receiver.received.filter((r) => mineIds.has(r.id));
    expect(mine.every((r) => r.verified)).toBe(true);
    const unique = receiver.uniqueEvents().filter((e) => mineIds.has(e.id));
    expect(unique.map((e) => e.id).sort()).toEqual([...mineIds].sort());
    const byUser = (u: string) =>
      unique
        .filter((e) => e.userUlid === u)
        .map((e) => e.type)
        .sort();
    expect(byUser(a.userUlid)).toEqual(["token.recovered", "token.refresh_failing"]);
    expect(byUser(b.userUlid)).toEqual(["token.reconnect_required", "token.recovered"]);
    // The two injected 500s were retried by BullMQ, not lost.
    expect(receiver.received.filter((r) => !r.accepted)).toHaveLength(2);

    const bodies = receiver.received.map((r) => r.body).join("\n");
    const outbox = JSON.stringify(await h.db.calTokenEvent.findMany({ where: { id: { in: [...mineIds] } } }));
    for (const u of [a, b]) {
      for (const secret of [u.accessToken, u.refreshToken]) {
        expect(bodies).not.toContain(secret);
        expect(outbox).not.toContain(secret);
      }
    }
    const body = JSON.parse(unique[0]!.body) as TokenEvent;
    expect(Object.keys(body).sort()).toEqual(["data", "id", "occurredAt", "type", "userUlid"]);
  });
});
