/**
 * The client against a misbehaving Cal.com over HTTP: a wrong base URL, 2xx bodies with odd expiries,
 * a 5xx storm. The classification must keep every live pair and disconnect no one.
 */
import { ASSUMED_ACCESS_TOKEN_TTL_MS, type HttpCalcomTokenApi } from "../../../src/calcom/index.js";
import type { ExpiryNote } from "../../../src/core/calcom-result.js";
import type { FakeCalcom, OddExpiryFault } from "../../fakes/calcom/index.js";
import { NOW, expectRefreshed, makeClient, run, startScannedFake, type TestClient } from "./support.js";

let t = NOW;
let fake: FakeCalcom;
const clients: HttpCalcomTokenApi[] = [];
function client(baseUrl = fake.url): TestClient {
  const made = makeClient(baseUrl, { now: () => t });
  clients.push(made.client);
  return made;
}

beforeEach(async () => {
  t = NOW;
  fake = await startScannedFake({ now: () => t });
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await fake.close();
});

describe("CAL_API_URL ending in /v2 (Cal.com's route-level 404 for /v2/v2/…)", () => {
  it.each([`/v2`, `/v2/`])(
    "base %s: refresh, force-refresh and OAuth2 are config_error; Cal.com never sees a token call",
    async (suffix) => {
      const user = fake.createManagedUser();
      const grant = fake.createOAuth2Grant();
      const { client: c, lines } = client(`${fake.url}${suffix}`);

      const results = [
        await run(c.refreshManaged(user.refreshToken)),
        await run(c.forceRefreshManaged(user.calUserId)),
        await run(c.refreshOAuth2(grant.refreshToken)),
      ];
      const paths = [
        "/v2/v2/oauth/fake-client/refresh",
        `/v2/v2/oauth-clients/fake-client/users/${user.calUserId}/force-refresh`,
        "/v2/v2/auth/oauth2/token",
      ];
      results.forEach((r, i) => {
        expect(r).toEqual({
          kind: "config_error",
          status: 404,
          message: `Cal.com 404: NotFoundException: Cannot POST ${paths[i]} (route not found: check CAL_API_URL (the base URL, without /v2))`,
        });
      });
      const stats = fake.stats();
      expect(stats.routeNotFound).toBe(3);
      expect([stats.calls["managed.refresh"], stats.calls["managed.forceRefresh"], stats.calls["oauth2.token"]]).toEqual([0, 0, 0]);
      expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(true);
      expect(fake.isRefreshTokenLive(grant.refreshToken)).toBe(true);
      expect(lines().filter((l) => l.kind === "config_error")).toHaveLength(3);
      expect(JSON.stringify(lines())).not.toContain(user.refreshToken);
    },
  );
});

describe("2xx with odd expiries: the live pair is kept, the expiry normalised or assumed, and noted", () => {
  const assumed = NOW + ASSUMED_ACCESS_TOKEN_TTL_MS;
  /** Cal.com's managed access-token expiry: an hour ahead, floored to the minute. */
  const managedExp = Math.floor((NOW + 3_600_000) / 60_000) * 60_000;
  const oauth2Exp = NOW + 1_800_000;
  const managed: [OddExpiryFault, number, ExpiryNote][] = [
    ["expiryEpochSeconds", managedExp, { source: "epoch_seconds", field: "accessTokenExpiresAt" }],
    ["expiryIso", managedExp, { source: "iso8601", field: "accessTokenExpiresAt" }],
    ["expiryNumericString", managedExp, { source: "numeric_string", field: "accessTokenExpiresAt" }],
    ["expiryMissing", assumed, { source: "assumed", assumed: "missing", field: null }],
    ["expiryAbsurdFuture", assumed, { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["expiryAbsurdPast", assumed, { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
  ];
  const oauth2: [OddExpiryFault, number, ExpiryNote][] = [
    ["expiryEpochSeconds", oauth2Exp, { source: "epoch_seconds", field: "expires_at" }],
    ["expiryIso", oauth2Exp, { source: "iso8601", field: "expires_at" }],
    ["expiryNumericString", oauth2Exp, { source: "expires_in", field: "expires_in" }],
    ["expiryMissing", assumed, { source: "assumed", assumed: "missing", field: null }],
    ["expiryAbsurdFuture", assumed, { source: "assumed", assumed: "absurd", field: "expires_in" }],
    ["expiryAbsurdPast", assumed, { source: "assumed", assumed: "absurd", field: "expires_in" }],
  ];

  it.each(managed)("managed refresh, %s", async (fault, at, note) => {
    const user = fake.createManagedUser();
    const { client: c, lines } = client();
    fake.faults.next(fault);
    const r = expectRefreshed(await run(c.refreshManaged(user.refreshToken)));
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(at);
    expect(r.pair.refreshTokenExpiresAt).toBeInstanceOf(Date);
    expect(r.expiry).toEqual(note);
    expect(fake.isRefreshTokenLive(r.pair.refreshToken)).toBe(true);
    expect(fake.isAccessTokenValid(r.pair.accessToken)).toBe(true);
    expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(false);
    expect(lines().at(-1)).toMatchObject({ op: "managed.refresh", kind: "refreshed", expirySource: note.source });
    // The kept refresh token is the live one: the next refresh goes through.
    expect((await run(c.refreshManaged(r.pair.refreshToken))).kind).toBe("refreshed");
  });

  it.each(managed)("managed force-refresh, %s", async (fault, at, note) => {
    const user = fake.createManagedUser();
    fake.faults.next(fault);
    const r = expectRefreshed(await run(client().client.forceRefreshManaged(user.calUserId)));
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(at);
    expect(r.expiry).toEqual(note);
    expect(fake.isRefreshTokenLive(r.pair.refreshToken)).toBe(true);
  });

  it.each(oauth2)("OAuth2, %s", async (fault, at, note) => {
    const grant = fake.createOAuth2Grant();
    const c = client().client;
    fake.faults.next(fault);
    const r = expectRefreshed(await run(c.refreshOAuth2(grant.refreshToken)));
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(at);
    expect(r.pair.refreshTokenExpiresAt).toBeNull();
    expect(r.expiry).toEqual(note);
    expect(fake.isRefreshTokenLive(r.pair.refreshToken)).toBe(true);
    expect((await run(c.refreshOAuth2(r.pair.refreshToken))).kind).toBe("refreshed");
  });

  it.each(["managed", "oauth2"] as const)(
    "%s: a 2xx without the refresh token is malformed, mayHaveRotated, and says why",
    async (kind) => {
      const c = client().client;
      fake.faults.next("noRefreshToken");
      const r =
        kind === "managed"
          ? await run(c.refreshManaged(fake.createManagedUser().refreshToken))
          : await run(c.refreshOAuth2(fake.createOAuth2Grant().refreshToken));
      expect(r).toMatchObject({ kind: "malformed", status: 200, mayHaveRotated: true });
      expect(r.kind === "malformed" && r.message).toMatch(/Cal\.com rotates on every refresh, so the old refresh token is already dead/);
    },
  );
});

describe("a 5xx storm", () => {
  it("every call is transient until it ends; nothing rotates; then calls succeed again", async () => {
    const user = fake.createManagedUser();
    const grant = fake.createOAuth2Grant();
    const c = client().client;
    fake.faults.storm({ durationMs: 30_000, status: 503 });
    for (let i = 0; i < 3; i++) {
      expect(await run(c.refreshManaged(user.refreshToken))).toMatchObject({ kind: "transient", status: 503, mayHaveRotated: false });
      expect(await run(c.refreshOAuth2(grant.refreshToken))).toMatchObject({ kind: "transient", status: 503, mayHaveRotated: false });
      t += 5_000;
    }
    expect(fake.isRefreshTokenLive(user.refreshToken)).toBe(true);
    t += 15_000;
    expect((await run(c.refreshManaged(user.refreshToken))).kind).toBe("refreshed");
    expect((await run(c.refreshOAuth2(grant.refreshToken))).kind).toBe("refreshed");
  });

  it("calls that committed before the gateway gave up are flagged mayHaveRotated; the others are not", async () => {
    const c = client().client;
    fake.faults.storm({ durationMs: 60_000, status: 500, commitFraction: 0.5 });
    const outcomes: [boolean, boolean][] = [];
    for (let i = 0; i < 4; i++) {
      const user = fake.createManagedUser();
      const r = await run(c.refreshManaged(user.refreshToken));
      if (r.kind !== "transient") throw new Error(`expected transient, got ${r.kind}`);
      outcomes.push([r.mayHaveRotated, !fake.isRefreshTokenLive(user.refreshToken)]);
    }
    // [flagged, really rotated]: every second call committed, and exactly those are flagged.
    expect(outcomes).toEqual([
      [false, false],
      [true, true],
      [false, false],
      [true, true],
    ]);
  });
});
