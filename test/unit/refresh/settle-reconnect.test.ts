import { rejected } from "../../fakes/scripted-calcom-api.js";
import { harness, type OutcomeSummary, pairOf, summary, T0, USER, at } from "./harness.js";

// A 400/404 that ends the grant (RECONNECT_REQUIRED), unless the row moved on meanwhile: then the
// other writer's pair stands. (The force-refresh route: settle-rejection.test.ts.)

const refreshCall = { method: "refreshManaged", arg: "rt_1" } as const;
const forceCall = { method: "forceRefreshManaged", arg: 42 } as const;
const reconnectOutcome: OutcomeSummary = {
  ok: false,
  code: "token.reconnect_required",
  retryable: false,
  retryAfterMs: undefined,
  hasToken: true,
};

describe("rejected when the row moved on meanwhile: the other writer's pair stands", () => {
  it.each([
    ["the user reconnected", (h: ReturnType<typeof harness>) => h.other.reconnect()],
    [
      "another process flushed its held pair (our lease survives that write)",
      (h: ReturnType<typeof harness>) =>
        h.store.saveRotated({
          userUlid: USER,
          expectedVersion: 1,
          owner: "shared",
          pair: pairOf({ accessToken: "at_reconnected" }),
          nextRefreshAt: at(3_000_000),
          now: h.clock(),
        }),
    ],
  ])("%s → by_other, no force-refresh, no audit, lease released", async (_name, write) => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", async () => {
      await write(h);
      return rejected(400);
    });
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_reconnected", version: 2 });
    expect(h.observe()).toMatchObject({
      calls: [refreshCall],
      audits: [],
      alerts: [],
      events: [],
      row: { version: 2, status: "ACTIVE", accessToken: "at_reconnected", leaseOwner: null },
    });
  });
});

describe("rejected without a force-refresh route: RECONNECT_REQUIRED", () => {
  it.each([
    ["an OAuth2 grant", { kind: "oauth2" as const, calUserId: null }, "refreshOAuth2" as const, "oauth2"],
    ["a managed user without calUserId", { kind: "managed" as const, calUserId: null }, "refreshManaged" as const, "managed"],
  ])("%s → reconnect, audit and alert, no force-refresh", async (_name, seed, method, kind) => {
    const h = harness();
    h.seed(seed);
    h.calcom.script(method, rejected(400));
    expect(summary(await h.refresh())).toEqual(reconnectOutcome);
    expect(h.observe()).toEqual({
      row: {
        version: 1,
        status: "RECONNECT_REQUIRED",
        accessToken: "at_1",
        refreshToken: "rt_1",
        failureCount: 0,
        rotationUncertain: false,
        lastFailureCode: "token.reconnect_required",
        nextRefreshInMs: 0,
        leaseOwner: null,
      },
      audits: [{ outcome: "RECONNECT_REQUIRED", errorCode: "token.reconnect_required", version: null }],
      calls: [{ method, arg: "rt_1" }],
      alerts: ["reconnectRequired"],
      events: [{ outcome: "RECONNECT_REQUIRED", errorCode: "token.reconnect_required" }],
    });
    expect(h.alerts.calls[0]?.input).toEqual({ userUlid: USER, kind, code: "token.reconnect_required", now: T0 });
  });

  it("marking loses its compare-and-swap (the user reconnected) → by_other, no alert, no audit", async () => {
    const h = harness({
      wrapStore: (s) => ({
        ...s,
        markReconnectRequired: async (input) => {
          await h.other.reconnect();
          return s.markReconnectRequired(input);
        },
      }),
    });
    h.seed({ kind: "oauth2", calUserId: null });
    h.calcom.script("refreshOAuth2", rejected(400));
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_reconnected", version: 2 });
    expect(h.observe()).toMatchObject({ audits: [], alerts: [], events: [], row: { status: "ACTIVE", version: 2, leaseOwner: null } });
  });

  it("force-refresh rejected while the user reconnected → by_other, no alert, no audit", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", rejected(400)).script("forceRefreshManaged", async () => {
      await h.other.reconnect();
      return rejected(404);
    });
    expect(summary(await h.refresh())).toEqual({ ok: true, how: "by_other", accessToken: "at_reconnected", version: 2 });
    expect(h.observe()).toMatchObject({ calls: [refreshCall, forceCall], audits: [], alerts: [], events: [], row: { status: "ACTIVE" } });
  });

  it("the store failing to mark → store.unavailable, lease released, nothing recorded", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null });
    h.store.failNext("markReconnectRequired", new Error("connection reset by peer 10.0.0.5:5432"));
    h.calcom.script("refreshOAuth2", rejected(400));
    const outcome = await h.refresh();
    expect(summary(outcome)).toEqual({ ok: false, code: "store.unavailable", retryable: true, retryAfterMs: undefined, hasToken: true });
    expect(outcome.ok || outcome.error.message).not.toContain("10.0.0.5");
    expect(h.observe()).toMatchObject({ audits: [], alerts: [], events: [], row: { status: "ACTIVE", leaseOwner: null } });
  });
});
