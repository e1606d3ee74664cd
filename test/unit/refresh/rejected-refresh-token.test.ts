import { rateLimited, refreshed, rejected, transient } from "../../fakes/scripted-calcom-api.js";
import { at, harness, summary, USER } from "./harness.js";

// Cal.com rejected a managed user's refresh token and the force-refresh that should replace it failed
// (a 5xx, a timeout, a 429). The refresh token is dead: the retry must force-refresh at once, never
// present it again (each presentation is one more rejected call and one more dead-token report).

const refreshCall = { method: "refreshManaged", arg: "rt_1" } as const;
const forceCall = { method: "forceRefreshManaged", arg: 42 } as const;
const newPair = { accessToken: "at_3", refreshToken: "rt_3", accessTokenExpiresAt: at(3_600_000) };

describe.each([
  ["a 5xx", transient("server_error", false)],
  ["a timeout", transient("timeout", true)],
  ["a 429", rateLimited(5_000)],
])("rejected, then the force-refresh failed with %s", (_name, forceFailure) => {
  it("marks the row, and the retry force-refreshes without presenting the dead refresh token", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", rejected(400)).script("forceRefreshManaged", forceFailure);
    expect(summary(await h.refresh())).toMatchObject({ ok: false, retryable: true });
    expect(h.store.peek(USER)).toMatchObject({ refreshTokenRejected: true, refreshToken: "rt_1", version: 1, status: "ACTIVE" });

    h.advance(60_000);
    h.calcom.script("forceRefreshManaged", refreshed(newPair));
    expect(summary(await h.refresh({ trigger: "on_demand" }))).toMatchObject({ ok: true, how: "force_refreshed", accessToken: "at_3" });
    expect(h.calcom.calls()).toEqual([refreshCall, forceCall, forceCall]);
    expect(h.store.peek(USER)).toMatchObject({ refreshTokenRejected: false, rotationUncertain: false, refreshToken: "rt_3", version: 2 });
    expect(h.store.audits(USER).map((a) => a.outcome)).toEqual(["FAILED_TRANSIENT", "FORCE_REFRESHED"]);
  });
});

it("keeps force-refreshing while the force-refresh keeps failing; its rejection then means reconnect", async () => {
  const h = harness();
  h.seed();
  h.calcom
    .script("refreshManaged", rejected(400))
    .script("forceRefreshManaged", transient("server_error", false), transient("server_error", false), rejected(404));
  for (let i = 0; i < 3; i++) {
    await h.refresh();
    h.advance(60_000);
  }
  expect(h.calcom.calls()).toEqual([refreshCall, forceCall, forceCall, forceCall]);
  expect(h.store.peek(USER)).toMatchObject({ status: "RECONNECT_REQUIRED", refreshTokenRejected: true });
});

it("an ordinary transient failure does not mark the refresh token rejected: the retry presents it", async () => {
  const h = harness();
  h.seed();
  h.calcom.script("refreshManaged", transient("server_error", false), refreshed({ ...newPair, refreshToken: "rt_2" }));
  await h.refresh();
  expect(h.store.peek(USER)?.refreshTokenRejected).toBe(false);
  h.advance(60_000);
  expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed" });
  expect(h.calcom.calls()).toEqual([refreshCall, refreshCall]);
});

it("an OAuth2 user is never force-refreshed: the flag is a managed-only shortcut", async () => {
  const h = harness();
  h.seed({ kind: "oauth2", calUserId: null, refreshTokenRejected: true });
  h.calcom.script("refreshOAuth2", refreshed(newPair));
  expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed" });
  expect(h.calcom.calls()).toEqual([{ method: "refreshOAuth2", arg: "rt_1" }]);
});

it("a reconnect (a new pair saved) clears the mark: the new refresh token is presented", async () => {
  const h = harness();
  h.seed({ refreshTokenRejected: true });
  await h.other.reconnect();
  expect(h.store.peek(USER)?.refreshTokenRejected).toBe(false);
  h.calcom.script("refreshManaged", refreshed(newPair));
  await h.refresh();
  expect(h.calcom.calls()).toEqual([{ method: "refreshManaged", arg: "rt_reconnected" }]);
});
