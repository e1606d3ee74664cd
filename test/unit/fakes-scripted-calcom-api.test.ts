import {
  UnscriptedCalcomCallError,
  configError,
  createScriptedCalcomApi,
  malformed,
  rateLimited,
  refreshed,
  rejected,
  transient,
} from "../fakes/scripted-calcom-api.js";

// The scripted Cal.com double (test/fakes/scripted-calcom-api.ts) the refresher's unit tests rely on.

describe("scripted Cal.com API", () => {
  it("an unscripted call fails loudly, naming the method but not the refresh token", async () => {
    const api = createScriptedCalcomApi();
    const err = await api.refreshManaged("rt_secret_value_1234").then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(UnscriptedCalcomCallError);
    expect((err as Error).message).toMatch(/unexpected call refreshManaged/);
    expect((err as Error).message).not.toContain("rt_secret_value_1234");
    // Scripting one method does not script another.
    api.script("refreshManaged", refreshed());
    await expect(api.refreshOAuth2("rt_x")).rejects.toThrow(UnscriptedCalcomCallError);
    await expect(api.forceRefreshManaged(7)).rejects.toThrow(/forceRefreshManaged\(calUserId 7\)/);
  });

  it("answers each method's steps in order, runs function steps with the argument, records every call", async () => {
    const api = createScriptedCalcomApi()
      .script("refreshManaged", transient("timeout", true), refreshed({ accessToken: "at_new", refreshToken: "rt_new" }))
      .script("forceRefreshManaged", (calUserId) => rejected(404, `user_${calUserId}_gone`));

    expect(await api.refreshManaged("rt_1")).toEqual({
      kind: "transient",
      reason: "timeout",
      status: null,
      mayHaveRotated: true,
      message: expect.any(String),
    });
    expect(await api.forceRefreshManaged(42)).toEqual({ kind: "rejected", status: 404, code: "user_42_gone", message: expect.any(String) });
    const second = await api.refreshManaged("rt_2");
    expect(second.kind === "refreshed" && [second.pair.accessToken, second.pair.refreshToken]).toEqual(["at_new", "rt_new"]);

    expect(api.calls()).toEqual([
      { method: "refreshManaged", arg: "rt_1" },
      { method: "forceRefreshManaged", arg: 42 },
      { method: "refreshManaged", arg: "rt_2" },
    ]);
    expect(api.callsOf("refreshManaged")).toEqual(["rt_1", "rt_2"]);
    expect(api.remaining()).toBe(0);
    expect(() => api.assertAllConsumed()).not.toThrow();
    // The calls that failed for lack of a script are recorded too.
    await expect(api.refreshManaged("rt_3")).rejects.toThrow(UnscriptedCalcomCallError);
    expect(api.callsOf("refreshManaged")).toEqual(["rt_1", "rt_2", "rt_3"]);
  });

  it("assertAllConsumed reports steps a test expected but never got; results are copies", async () => {
    const shared = refreshed();
    const api = createScriptedCalcomApi().script("refreshOAuth2", shared, rateLimited(5000));
    const first = await api.refreshOAuth2("rt");
    expect(first).toEqual(shared);
    expect(first).not.toBe(shared);
    expect(() => api.assertAllConsumed()).toThrow(/refreshOAuth2: 1/);
  });

  it("builders produce every CalRefreshResult kind", () => {
    expect(rejected(400)).toMatchObject({ kind: "rejected", status: 400, code: "HTTP_400" });
    expect(transient("server_error", true)).toMatchObject({ kind: "transient", status: 502, mayHaveRotated: true });
    expect(transient("server_error", false)).toMatchObject({ status: 503, mayHaveRotated: false });
    expect(transient("network", false, 500)).toMatchObject({ reason: "network", status: 500 });
    expect(rateLimited(1000)).toEqual({ kind: "rate_limited", status: 429, resetMs: 1000 });
    expect(malformed(200, true)).toMatchObject({ kind: "malformed", status: 200, mayHaveRotated: true });
    expect(configError(401)).toMatchObject({ kind: "config_error", status: 401 });
    const a = refreshed();
    const b = refreshed();
    expect(a.kind === "refreshed" && b.kind === "refreshed" && a.pair.refreshToken !== b.pair.refreshToken).toBe(true);
  });
});
