import { createAlertSink } from "../../src/events/alert-sink.js";
import type { TokenEvent } from "../../src/events/types.js";
import type { AlertState, EventStore, OutboxEvent } from "../../src/store/event-store.js";
import { testLogger } from "../support/log-sink.js";

// The alert policy and the flip wiring, against an in-memory EventStore (the real one is covered in
// test/integration/events). Postgres is what makes flips atomic; here only the decisions are tested.

const USER = "01HZZZZZZZZZZZZZZZZZZZZZZZ";
const NOW = new Date("2030-01-01T12:00:00.000Z");
const min = (m: number) => new Date(NOW.getTime() + m * 60_000);

function memoryStore(initial: AlertState = "NONE") {
  let state: AlertState = initial;
  const events: OutboxEvent[] = [];
  const store: EventStore = {
    async flip(_u, from, to, e) {
      if (!from.includes(state)) return false;
      state = to;
      events.push({ id: e.id, userUlid: USER, type: e.type, payload: e.payload, createdAt: e.now, relayedAt: null });
      return true;
    },
    async insertFleetEvent(e) {
      events.push({ id: e.id, userUlid: null, type: e.type, payload: e.payload, createdAt: e.now, relayedAt: null });
    },
    get: async (id) => events.find((e) => e.id === id) ?? null,
    unrelayed: async () => events,
    markRelayed: async () => 0,
    alertState: async () => state,
  };
  return { store, events, state: () => state };
}

function setup(initial: AlertState = "NONE") {
  const mem = memoryStore(initial);
  let kicks = 0;
  let n = 0;
  const sink = createAlertSink({
    eventStore: mem.store,
    relay: { kick: () => void kicks++ },
    logger: testLogger().logger,
    policy: { failingAfterMs: 15 * 60_000, affectedWithinMs: 5 * 60_000 },
    newId: () => `01J0000000000000000000000${n++}`,
  });
  return { sink, ...mem, kicks: () => kicks };
}

const failing = (accessTokenExpiresAt: Date, firstFailureAt: Date | null) => ({
  userUlid: USER,
  kind: "managed" as const,
  code: "calcom.transient",
  accessTokenExpiresAt,
  firstFailureAt,
  now: NOW,
});

describe("alert sink policy", () => {
  it("ignores a fresh failure while the token has plenty of life left", async () => {
    const t = setup();
    await t.sink.refreshFailing(failing(min(60), min(-1)));
    await t.sink.refreshFailing(failing(min(5.01), min(-14.9)));
    expect(t.events).toHaveLength(0);
    expect(t.kicks()).toBe(0);
  });

  it.each([
    ["the token expires within 5 minutes", min(5), null],
    ["the token already expired", min(-10), min(-1)],
    ["the streak is 15 minutes old", min(60), min(-15)],
  ])("alerts when %s", async (_label, expiresAt, firstFailureAt) => {
    const t = setup();
    await t.sink.refreshFailing(failing(expiresAt, firstFailureAt));
    expect(t.state()).toBe("FAILING");
    expect(t.events).toHaveLength(1);
    expect(t.kicks()).toBe(1);
    const payload = t.events[0]!.payload as TokenEvent;
    expect(payload).toEqual({
      id: t.events[0]!.id,
      type: "token.refresh_failing",
      userUlid: USER,
      occurredAt: NOW.toISOString(),
      data: { kind: "managed", errorCode: "calcom.transient", accessTokenExpiresAt: expiresAt.toISOString() },
    });
  });

  it("upper-cases the user ULID in the event (the stored form)", async () => {
    const t = setup();
    await t.sink.reconnectRequired({ userUlid: USER.toLowerCase(), kind: "oauth2", code: "calcom.invalid_grant", now: NOW });
    expect((t.events[0]!.payload as TokenEvent).userUlid).toBe(USER);
  });

  it("does not kick the relay when nothing flipped", async () => {
    const t = setup("RECONNECT");
    await t.sink.refreshFailing(failing(min(1), null));
    await t.sink.reconnectRequired({ userUlid: USER, kind: "managed", code: "x", now: NOW });
    expect(t.events).toHaveLength(0);
    expect(t.kicks()).toBe(0);
  });

  it("a throwing kick does not fail the flip", async () => {
    const mem = memoryStore();
    const sink = createAlertSink({
      eventStore: mem.store,
      logger: testLogger().logger,
      relay: {
        kick: () => {
          throw new Error("redis down");
        },
      },
    });
    await expect(sink.reconnectRequired({ userUlid: USER, kind: "managed", code: "x", now: NOW })).resolves.toBeUndefined();
    expect(mem.state()).toBe("RECONNECT");
  });
});
