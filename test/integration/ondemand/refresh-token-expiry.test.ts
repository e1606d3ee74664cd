/**
 * Every write of an OAuth2 pair stores the refresh token's expiry, which Cal.com does not send: 30 days
 * from when the pair was issued (src/core/grant-policy.ts, docs/architecture.md#scheduling). The
 * connect helper and a refresh know when their request left; `saveCalTokens` (and so `cal-tokens
 * import`) takes the latest moment the pair can have been issued. Managed pairs are stored as issued.
 */
import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import { s256 } from "../../fakes/calcom/index.js";
import { startHarness, type Harness } from "../../support/harness.js";

const D = 86_400_000;
const REDIRECT = "https://app.example.test/cal/callback";
let h: Harness;

beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.close();
});

const stored = async (userUlid: string) =>
  (await h.db.calToken.findUniqueOrThrow({ where: { userUlid }, select: { refreshTokenExpiresAt: true } })).refreshTokenExpiresAt;

it("completeCalConnection: 30 days from when the code exchange was sent", async () => {
  const verifier = randomBytes(32).toString("base64url");
  const { code } = h.fake.createAuthorizationCode({ clientId: "fake-oauth-client", redirectUri: REDIRECT, codeChallenge: s256(verifier) });
  const userUlid = ulid();
  const before = Date.now();
  const status = await h.client.completeCalConnection({ userUlid, code, codeVerifier: verifier, redirectUri: REDIRECT });
  const after = Date.now();
  const rt = (await stored(userUlid))!.getTime();
  expect(rt).toBeGreaterThanOrEqual(before + 30 * D);
  expect(rt).toBeLessThanOrEqual(after + 30 * D);
  expect(status.refreshTokenExpiresAt?.getTime()).toBe(rt);
});

describe("saveCalTokens", () => {
  const save = async (over: { accessTokenExpiresAt: Date; refreshTokenExpiresAt?: Date; kind?: "oauth2" | "managed" }) => {
    const userUlid = ulid();
    const g = over.kind === "managed" ? h.fake.createManagedUser() : h.fake.createOAuth2Grant();
    await h.client.saveCalTokens({
      userUlid,
      accessToken: g.accessToken,
      refreshToken: g.refreshToken,
      kind: over.kind ?? "oauth2",
      ...(over.kind === "managed" ? { calUserId: (g as { calUserId: number }).calUserId } : {}),
      accessTokenExpiresAt: over.accessTokenExpiresAt,
      ...(over.refreshTokenExpiresAt ? { refreshTokenExpiresAt: over.refreshTokenExpiresAt } : {}),
    });
    return userUlid;
  };

  it("a pair just issued (access token good for 1800 s): 30 days from now", async () => {
    const before = Date.now();
    const id = await save({ accessTokenExpiresAt: new Date(before + 1800_000) });
    const rt = (await stored(id))!.getTime();
    expect(rt).toBeGreaterThanOrEqual(before + 30 * D);
    expect(rt).toBeLessThanOrEqual(Date.now() + 30 * D);
  });

  it("an old pair (its access token expired 10 days ago, as an import may bring): 30 days from when it was issued", async () => {
    const accessTokenExpiresAt = new Date(Date.now() - 10 * D);
    const id = await save({ accessTokenExpiresAt });
    expect(await stored(id)).toEqual(new Date(accessTokenExpiresAt.getTime() - 1800_000 + 30 * D));
  });

  it("an expiry the caller knows is kept; a managed pair without one stays without", async () => {
    const known = new Date(Date.now() + 9 * D);
    expect(await stored(await save({ accessTokenExpiresAt: new Date(Date.now() + 600_000), refreshTokenExpiresAt: known }))).toEqual(known);
    expect(await stored(await save({ kind: "managed", accessTokenExpiresAt: new Date(Date.now() + 3600_000) }))).toBeNull();
  });
});

it("an inline refresh of an OAuth2 user stores 30 days from when its request left", async () => {
  const u = await h.seedOAuth2({ ttlMs: 60_000 });
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { refreshTokenExpiresAt: new Date(Date.now() + 2 * D) } });
  const before = Date.now();
  const res = await h.client.ensureValidCalToken(u.userUlid, true);
  const after = Date.now();
  expect(res).toMatchObject({ success: true, refreshed: true });
  const rt = (await stored(u.userUlid))!.getTime();
  expect(rt).toBeGreaterThanOrEqual(before + 30 * D);
  expect(rt).toBeLessThanOrEqual(after + 30 * D);
});
