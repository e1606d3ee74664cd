import { refreshed } from "../../fakes/scripted-calcom-api.js";
import { at, harness, memoryHeldPairStore, T0, USER } from "./harness.js";

// After a new pair, the row's next refresh follows the grant policy (src/core/grant-policy.ts) and an
// OAuth2 row stores the refresh-token expiry Cal.com does not send (docs/architecture.md#scheduling).
// rand() = 0.5; the harness's policy is the production default (window 5 min, keep-alive 3 d + 0–2 d
// before the refresh token expires, parking 30 d).

const D = 86_400_000;
const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };
const dbDown = () => new Error("in-memory token store: connection terminated");

describe("the next refresh after a new pair", () => {
  it.each([
    // An active user (seen a minute ago) stays on the keep-fresh schedule: expiry − 300 s − 0.5 · 60 s.
    ["worker", "an active user", { lastUsedAt: at(-60_000) }, 3_270_000],
    // The worker refreshing an idle managed user (a failure streak retried): parked afterwards.
    ["worker", "an idle user", { lastUsedAt: at(-6 * 60_000) }, 30 * D],
    ["cli", "a user never seen", { lastUsedAt: null }, 30 * D],
    // A refresh for a request is use: keep fresh even if last_used_at has not been written yet.
    ["on_demand", "a user never seen", { lastUsedAt: null }, 3_270_000],
    ["api_expired", "an idle user", { lastUsedAt: at(-D) }, 3_270_000],
    ["manual", "a user never seen", { lastUsedAt: null }, 3_270_000],
  ] as const)("managed, trigger %s, %s: next refresh in %i ms", async (trigger, _who, seen, nextInMs) => {
    const h = harness();
    h.seed(seen);
    h.calcom.script("refreshManaged", refreshed(newPair));
    await h.refresh({ trigger });
    expect(h.row()?.nextRefreshInMs).toBe(nextInMs);
    // A managed pair is stored as issued: Cal.com's refresh-token expiry, or none.
    expect(h.store.peek(USER)?.refreshTokenExpiresAt).toBeNull();
  });

  it("OAuth2, idle: the refresh token is taken to expire 30 days after the request left, and is kept alive 4 days before", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null, lastUsedAt: null, refreshTokenExpiresAt: at(2 * D) });
    const sentAt = at(1_000);
    h.calcom.script("refreshOAuth2", () => {
      h.advance(1_300); // the answer takes a while: the expiry still counts from when the request left
      return refreshed(newPair, sentAt);
    });
    await h.refresh();
    const row = h.store.peek(USER);
    expect(row?.refreshTokenExpiresAt).toEqual(new Date(sentAt.getTime() + 30 * D));
    // Keep-alive at expiry − 3 d − 0.5 · 2 d, at the keep-alive priority (the processor's concern).
    expect(row?.nextRefreshAt).toEqual(new Date(sentAt.getTime() + 26 * D));
  });

  it("OAuth2, active: the same stored expiry, and the keep-fresh schedule", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null });
    h.calcom.script("refreshOAuth2", refreshed(newPair, at(500)));
    await h.refresh();
    expect(h.store.peek(USER)?.refreshTokenExpiresAt).toEqual(at(500 + 30 * D));
    expect(h.row()?.nextRefreshInMs).toBe(3_270_000);
  });

  it("OAuth2 through a client that does not say when the request left: counted from the attempt's start (earlier)", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null, lastUsedAt: null });
    h.calcom.script("refreshOAuth2", () => {
      h.advance(2_000);
      return refreshed(newPair);
    });
    await h.refresh();
    expect(h.store.peek(USER)?.refreshTokenExpiresAt).toEqual(new Date(T0.getTime() + 30 * D));
  });

  it("OAuth2 with an expiry Cal.com reported: stored as reported", async () => {
    const h = harness();
    h.seed({ kind: "oauth2", calUserId: null });
    h.calcom.script("refreshOAuth2", refreshed({ ...newPair, refreshTokenExpiresAt: at(10 * D) }, at(0)));
    await h.refresh();
    expect(h.store.peek(USER)?.refreshTokenExpiresAt).toEqual(at(10 * D));
  });

  it("a pair held while the database is down carries the assumed expiry and the planned time", async () => {
    const shared = memoryHeldPairStore();
    const h = harness({ heldPairStore: shared.store, policy: { persistAttempts: 1 } });
    h.seed({ kind: "oauth2", calUserId: null, lastUsedAt: null });
    h.store.failAll("saveRotated", dbDown);
    h.calcom.script("refreshOAuth2", refreshed(newPair, at(0)));
    const outcome = await h.refresh();
    expect(outcome.ok).toBe(true);
    const [held] = [...shared.pairs.values()];
    expect(held?.pair.refreshTokenExpiresAt).toEqual(at(30 * D));
    expect(held?.nextRefreshAt).toEqual(at(26 * D));
  });

  it("the minimum interval still holds on top of the plan", async () => {
    const h = harness({ policy: { minIntervalMs: 60_000 } });
    h.seed();
    h.calcom.script("refreshManaged", refreshed({ ...newPair, accessTokenExpiresAt: at(30_000) }));
    await h.refresh({ trigger: "on_demand" });
    expect(h.row()?.nextRefreshInMs).toBe(60_000);
  });
});
