import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { AlertSink, TokenStore } from "../../../src/core/ports.js";
import { createAlertSink } from "../../../src/events/alert-sink.js";
import type { TokenEvent } from "../../../src/events/types.js";
import { createEventStore, type EventStore } from "../../../src/store/event-store.js";
import { createPrisma, type PrismaClient } from "../../../src/store/prisma.js";
import { createTokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { testLogger } from "../../support/log-sink.js";

// The transactional outbox on real Postgres: each alert-state flip writes exactly one event in the
// same statement, so a status flips once per streak and flips back on recovery
// (docs/architecture.md#invariant-7-every-outcome-is-recorded).

const NOW = new Date("2030-06-01T12:00:00.000Z");
const later = (ms: number) => new Date(NOW.getTime() + ms);

let prisma: PrismaClient;
let tokens: TokenStore;
let events: EventStore;
let sink: AlertSink;
let kicks = 0;

beforeAll(() => {
  // Wider than the 10-way race below so the UPDATEs really contend in Postgres.
  prisma = createPrisma(process.env.TEST_DATABASE_URL!, { max: 12 });
  tokens = createTokenStore({ prisma, cipher: createTokenCipher([{ id: "t1", key: randomBytes(32) }]) });
  events = createEventStore({ prisma });
  sink = createAlertSink({ eventStore: events, relay: { kick: () => void kicks++ }, logger: testLogger().logger });
});
afterAll(async () => {
  await prisma.$disconnect();
});

async function seeded(): Promise<{ id: string; accessToken: string; refreshToken: string }> {
  const id = ulid();
  const accessToken = `at_${randomBytes(16).toString("hex")}`;
  const refreshToken = `rt_${randomBytes(16).toString("hex")}`;
  await tokens.save({
    userUlid: id,
    kind: "managed",
    calUserId: 7,
    now: NOW,
    nextRefreshAt: later(50 * 60_000),
    pair: { accessToken, refreshToken, accessTokenExpiresAt: later(60 * 60_000), refreshTokenExpiresAt: null },
  });
  return { id, accessToken, refreshToken };
}

async function eventsOf(userUlid: string): Promise<{ id: string; type: string; payload: TokenEvent }[]> {
  const rows = await prisma.calTokenEvent.findMany({ where: { userUlid }, orderBy: [{ createdAt: "asc" }, { id: "asc" }] });
  return rows.map((r) => ({ id: r.id, type: r.type, payload: r.payload as unknown as TokenEvent }));
}

/** Affected: the access token expires in 2 minutes. */
const failing = (userUlid: string, now = NOW) => ({
  userUlid,
  kind: "managed" as const,
  code: "calcom.transient",
  accessTokenExpiresAt: later(2 * 60_000),
  firstFailureAt: now,
  now,
});

describe("alert flips (outbox)", () => {
  it("a new row starts in NONE with no events", async () => {
    const u = await seeded();
    expect(await events.alertState(u.id)).toBe("NONE");
    expect(await eventsOf(u.id)).toEqual([]);
  });

  it("fires token.refresh_failing once for two failures, kicking the relay once", async () => {
    const u = await seeded();
    const before = kicks;
    await sink.refreshFailing(failing(u.id));
    await sink.refreshFailing(failing(u.id, later(60_000)));
    const rows = await eventsOf(u.id);
    expect(rows.map((r) => r.type)).toEqual(["token.refresh_failing"]);
    expect(await events.alertState(u.id)).toBe("FAILING");
    expect(kicks - before).toBe(1);
    expect(rows[0]!.payload).toEqual({
      id: rows[0]!.id,
      type: "token.refresh_failing",
      userUlid: u.id,
      occurredAt: NOW.toISOString(),
      data: { kind: "managed", errorCode: "calcom.transient", accessTokenExpiresAt: later(2 * 60_000).toISOString() },
    });
    const row = await events.get(rows[0]!.id);
    expect(row).toMatchObject({ userUlid: u.id, createdAt: NOW, relayedAt: null });
  });

  it("an unaffected failure raises nothing", async () => {
    const u = await seeded();
    await sink.refreshFailing({ ...failing(u.id), accessTokenExpiresAt: later(3_600_000), firstFailureAt: later(-60_000) });
    expect(await eventsOf(u.id)).toEqual([]);
    expect(await events.alertState(u.id)).toBe("NONE");
  });

  it("token.recovered follows token.refresh_failing, once; recovery without an alert is silent", async () => {
    const u = await seeded();
    await sink.recovered({ userUlid: u.id, kind: "managed", now: NOW });
    expect(await eventsOf(u.id)).toEqual([]);

    await sink.refreshFailing(failing(u.id));
    await sink.recovered({ userUlid: u.id, kind: "managed", now: later(1000) });
    await sink.recovered({ userUlid: u.id, kind: "managed", now: later(2000) });
    expect((await eventsOf(u.id)).map((r) => r.type)).toEqual(["token.refresh_failing", "token.recovered"]);
    expect(await events.alertState(u.id)).toBe("NONE");

    // A new streak alerts again.
    await sink.refreshFailing(failing(u.id, later(5000)));
    expect((await eventsOf(u.id)).map((r) => r.type)).toEqual(["token.refresh_failing", "token.recovered", "token.refresh_failing"]);
  });

  it("reconnect then recovered; a failing user escalates to reconnect once", async () => {
    const u = await seeded();
    await sink.refreshFailing(failing(u.id));
    await sink.reconnectRequired({ userUlid: u.id, kind: "managed", code: "calcom.invalid_grant", now: later(1000) });
    await sink.reconnectRequired({ userUlid: u.id, kind: "managed", code: "calcom.invalid_grant", now: later(2000) });
    // Failing again while RECONNECT must not demote the alert.
    await sink.refreshFailing(failing(u.id, later(3000)));
    expect(await events.alertState(u.id)).toBe("RECONNECT");
    await sink.recovered({ userUlid: u.id, kind: "managed", now: later(4000) });
    const rows = await eventsOf(u.id);
    expect(rows.map((r) => r.type)).toEqual(["token.refresh_failing", "token.reconnect_required", "token.recovered"]);
    expect(rows[1]!.payload.data).toEqual({ kind: "managed", errorCode: "calcom.invalid_grant" });
    expect(rows[2]!.payload.data).toEqual({ kind: "managed" });
    expect(await events.alertState(u.id)).toBe("NONE");
  });

  it("10 concurrent refreshFailing calls write exactly one outbox row", async () => {
    const u = await seeded();
    await Promise.all(Array.from({ length: 10 }, (_, i) => sink.refreshFailing(failing(u.id, later(i)))));
    expect(await prisma.calTokenEvent.count({ where: { userUlid: u.id } })).toBe(1);
    expect(await events.alertState(u.id)).toBe("FAILING");
  });

  it("a flip for an unknown user writes nothing", async () => {
    const id = ulid();
    expect(await events.flip(id, ["NONE"], "FAILING", { id: ulid(), type: "token.refresh_failing", payload: {}, now: NOW })).toBe(false);
    expect(await prisma.calTokenEvent.count({ where: { userUlid: id } })).toBe(0);
  });

  it("no token string appears in any event payload", async () => {
    const u = await seeded();
    await sink.refreshFailing(failing(u.id));
    await sink.reconnectRequired({ userUlid: u.id, kind: "managed", code: "calcom.invalid_grant", now: NOW });
    await sink.recovered({ userUlid: u.id, kind: "managed", now: NOW });
    const text = JSON.stringify(await prisma.calTokenEvent.findMany({ where: { userUlid: u.id } }));
    expect(text).toContain(u.id);
    expect(text).not.toContain(u.accessToken);
    expect(text).not.toContain(u.refreshToken);
  });

  it("markRelayed marks only unrelayed rows", async () => {
    const u = await seeded();
    await sink.refreshFailing(failing(u.id));
    const [row] = await eventsOf(u.id);
    expect(await events.markRelayed([row!.id], later(1000))).toBe(1);
    expect(await events.markRelayed([row!.id], later(2000))).toBe(0);
    expect((await events.get(row!.id))?.relayedAt).toEqual(later(1000));
    expect(await events.markRelayed([], NOW)).toBe(0);
  });
});
