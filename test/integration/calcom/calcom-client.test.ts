import type { HttpCalcomTokenApi, CalcomTokenApiDeps } from "../../../src/calcom/index.js";
import type { FakeCalcom, Fault } from "../../fakes/calcom/index.js";
import { NOW, makeClient as makeTestClient, run, startScannedFake, type TestClient } from "./support.js";

const clients: HttpCalcomTokenApi[] = [];

function makeClient(url: string, over: Partial<CalcomTokenApiDeps> = {}): TestClient {
  const made = makeTestClient(url, over);
  clients.push(made.client);
  return made;
}

let fake: FakeCalcom;
let client: HttpCalcomTokenApi;
let lines: () => Record<string, unknown>[];

beforeEach(async () => {
  // One clock for the fake and the client: expiries are checked against the client's clock.
  fake = await startScannedFake({ now: () => NOW });
  ({ client, lines } = makeClient(fake.url));
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fake.close();
});

describe("managed users", () => {
  it("refreshes, and the old refresh token is then rejected (strict rotation)", async () => {
    const user = fake.createManagedUser();
    const r = await run(client.refreshManaged(user.refreshToken));
    expect(r.kind).toBe("refreshed");
    if (r.kind !== "refreshed") return;
    expect(r.pair.refreshToken).not.toBe(user.refreshToken);
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(Math.floor((NOW + 3_600_000) / 60_000) * 60_000);
    expect(r.expiry).toEqual({ source: "epoch_ms", field: "accessTokenExpiresAt" });
    expect(r.pair.refreshTokenExpiresAt).toBeInstanceOf(Date);
    expect(fake.isRefreshTokenLive(r.pair.refreshToken)).toBe(true);

    const again = await run(client.refreshManaged(user.refreshToken));
    expect(again).toMatchObject({ kind: "rejected", status: 400, code: "BadRequestException" });
    expect(fake.stats().deadRefreshTokenUses).toBe(1);
  });

  it("force-refresh issues a pair that kills the old one; an unknown user is rejected 404", async () => {
    const user = fake.createManagedUser();
    const r = await run(client.forceRefreshManaged(user.calUserId));
    expect(r.kind).toBe("refreshed");
    expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(false);
    const unknown = await run(client.forceRefreshManaged(987_654));
    expect(unknown).toMatchObject({ kind: "rejected", status: 404, code: "NotFoundException" });
    expect(fake.stats().forceRefreshes).toBe(1);
  });

  it("a wrong client secret is a config_error, and the secret is never in the result or logs", async () => {
    const user = fake.createManagedUser();
    const bad = makeClient(fake.url, { clientSecret: "wrong-secret-value" });
    const r = await run(bad.client.refreshManaged(user.refreshToken));
    expect(r).toMatchObject({ kind: "config_error", status: 401 });
    expect(JSON.stringify(r)).not.toContain("wrong-secret-value");
    const logged = JSON.stringify(bad.lines());
    expect(logged).not.toContain("wrong-secret-value");
    expect(logged).not.toContain(user.refreshToken);
    expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(true);
  });

  it("logs {op, status, kind, durationMs} with the [TOKEN_SERVICE] prefix and no tokens", async () => {
    const user = fake.createManagedUser();
    const r = await run(client.refreshManaged(user.refreshToken));
    const line = lines().at(-1);
    expect(line).toMatchObject({ component: "tokenService", op: "managed.refresh", kind: "refreshed", status: 200 });
    expect(typeof line?.durationMs).toBe("number");
    expect(String(line?.msg)).toMatch(/^\[TOKEN_SERVICE\] /);
    const all = JSON.stringify(lines());
    if (r.kind === "refreshed") expect(all).not.toContain(r.pair.refreshToken);
    expect(all).not.toContain(user.refreshToken);
  });
});

describe("oauth2", () => {
  it("refreshes, and reuse of the old refresh token is rejected invalid_grant", async () => {
    const grant = fake.createOAuth2Grant();
    const r = await run(client.refreshOAuth2(grant.refreshToken));
    expect(r.kind).toBe("refreshed");
    if (r.kind !== "refreshed") return;
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(NOW + 1_800_000);
    expect(r.pair.refreshTokenExpiresAt).toBeNull();
    const again = await run(client.refreshOAuth2(grant.refreshToken));
    expect(again).toMatchObject({ kind: "rejected", status: 400, code: "invalid_grant" });
    expect(fake.stats().oauth2Refreshes).toBe(1);
  });

  it("a wrong oauth2 secret is a config_error", async () => {
    const grant = fake.createOAuth2Grant();
    const bad = makeClient(fake.url, { oauth2: { clientId: "fake-oauth-client", clientSecret: "nope-nope" } });
    expect(await run(bad.client.refreshOAuth2(grant.refreshToken))).toMatchObject({ kind: "config_error", status: 401 });
  });
});

describe("faults", () => {
  const cases: [Fault, Record<string, unknown>][] = [
    ["status500", { kind: "transient", reason: "server_error", status: 500, mayHaveRotated: false }],
    ["status503", { kind: "transient", reason: "server_error", status: 503, mayHaveRotated: false }],
    ["html502", { kind: "transient", reason: "server_error", status: 502, mayHaveRotated: true }],
    ["malformedJson", { kind: "malformed", status: 200, mayHaveRotated: true }],
    ["wrongShape", { kind: "malformed", status: 200, mayHaveRotated: true }],
    ["dropAfterCommit", { kind: "transient", reason: "network", mayHaveRotated: true }],
    ["rateLimit", { kind: "rate_limited", status: 429, resetMs: 60_000 }],
  ];
  it.each(cases)("managed %s → its classification, exactly one call (never retried)", async (fault, expected) => {
    const user = fake.createManagedUser();
    fake.faults.always(fault);
    expect(await run(client.refreshManaged(user.refreshToken))).toMatchObject(expected);
    expect(fake.stats().calls["managed.refresh"]).toBe(1);
  });
  it.each(cases)("oauth2 %s → its classification, exactly one call", async (fault, expected) => {
    const grant = fake.createOAuth2Grant();
    fake.faults.always(fault);
    expect(await run(client.refreshOAuth2(grant.refreshToken))).toMatchObject(expected);
    expect(fake.stats().calls["oauth2.token"]).toBe(1);
  });

  it.each<Fault>(["hang", "hangAfterCommit"])("%s with a 300 ms timeout → transient timeout, fast, exactly one call", async (fault) => {
    const user = fake.createManagedUser();
    const quick = makeClient(fake.url, { timeoutMs: 300 });
    fake.faults.always(fault);
    const started = performance.now();
    const r = await run(quick.client.refreshManaged(user.refreshToken));
    const elapsed = performance.now() - started;
    expect(r).toMatchObject({ kind: "transient", reason: "timeout", status: null, mayHaveRotated: true });
    expect(elapsed).toBeLessThan(900);
    // Give a would-be retry time to arrive before counting.
    await new Promise((res) => setTimeout(res, 400));
    expect(fake.stats().calls["managed.refresh"]).toBe(1);
    const logged = quick.lines().at(-1);
    expect(logged).toMatchObject({ kind: "transient", reason: "timeout", mayHaveRotated: true });
    expect(JSON.stringify(quick.lines())).not.toContain(user.refreshToken);
  });

  it("force-refresh under a 500 is transient and not rotated; the old tokens still work", async () => {
    const user = fake.createManagedUser();
    fake.faults.next("status500");
    expect(await run(client.forceRefreshManaged(user.calUserId))).toMatchObject({ kind: "transient", status: 500 });
    expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(true);
    expect(fake.stats().calls["managed.forceRefresh"]).toBe(1);
  });
});

describe("rate-limit bucket: x-cal-client-id is sent", () => {
  it("our calls share the client-id bucket, not the IP bucket", async () => {
    await fake.close();
    fake = await startScannedFake({ now: () => NOW, rateLimit: { limit: 2, windowMs: 60_000, blockMs: 7_000 } });
    ({ client } = makeClient(fake.url));
    const refreshUrl = `${fake.url}/v2/oauth/fake-client/refresh`;
    const raw = (headers: Record<string, string>): Promise<Response> =>
      fetch(refreshUrl, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: '{"refreshToken":"x"}' });

    await run(client.refreshManaged("unknown-1"));
    await run(client.refreshManaged("unknown-2"));
    const limited = await run(client.refreshManaged("unknown-3"));
    expect(limited).toEqual({ kind: "rate_limited", status: 429, resetMs: 7_000 });
    expect(limited.kind === "rate_limited" && limited.resetMs).toBeGreaterThanOrEqual(1_000);
    // Secret only → IP bucket, untouched by our three calls.
    expect((await raw({ "x-cal-secret-key": "fake-secret" })).status).toBe(400);
    // With the client id → the bucket our client exhausted.
    expect((await raw({ "x-cal-secret-key": "fake-secret", "x-cal-client-id": "fake-client" })).status).toBe(429);
  });
});

describe("rate-limit bucket: OAuth2 token calls carry x-cal-client-id too", () => {
  it("they count in the OAuth2 client's bucket, not in our IP's", async () => {
    await fake.close();
    fake = await startScannedFake({ now: () => NOW, rateLimit: { limit: 2, windowMs: 60_000, blockMs: 7_000 } });
    ({ client } = makeClient(fake.url));
    const raw = (headers: Record<string, string>): Promise<Response> =>
      fetch(`${fake.url}/v2/auth/oauth2/token`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ grant_type: "refresh_token", client_id: "fake-oauth-client", client_secret: "x", refresh_token: "x" }),
      });

    expect(await run(client.refreshOAuth2("unknown-1"))).toMatchObject({ kind: "rejected", code: "invalid_grant" });
    expect(await run(client.refreshOAuth2("unknown-2"))).toMatchObject({ kind: "rejected", code: "invalid_grant" });
    expect(await run(client.refreshOAuth2("unknown-3"))).toMatchObject({ kind: "rate_limited", resetMs: 7_000 });
    // No header → the IP bucket, untouched by our three calls.
    expect((await raw({})).status).toBe(401);
    expect((await raw({ "x-cal-client-id": "fake-oauth-client" })).status).toBe(429);
  });
});

describe("programmer errors throw", () => {
  it("rejects bad construction arguments and bad call arguments", async () => {
    expect(() => makeClient("not a url")).toThrow(TypeError);
    expect(() => makeClient(fake.url, { timeoutMs: 0 })).toThrow(TypeError);
    await expect(client.refreshManaged("")).rejects.toThrow(TypeError);
    await expect(client.forceRefreshManaged(1.5)).rejects.toThrow(TypeError);
  });
});
