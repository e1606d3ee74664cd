/**
 * A deployment with only an OAuth 2.0 app (no Platform client configured at all), with a confidential
 * and with a public app: users connected through completeCalConnection are kept fresh by the worker,
 * and request paths get valid tokens throughout (docs/oauth2.md).
 */
import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { s256 } from "../../fakes/calcom/index.js";
import { type Harness, startHarness } from "../../support/harness.js";
import { sleep, startWorker, uniquePrefix, workerEnv } from "../../support/worker-harness.js";

const USERS = 5;
const TTL_MS = 12_000;
const REDIRECT = "https://app.example.test/cal/callback";
const NO_PLATFORM = { CAL_CLIENT_ID: "", CAL_CLIENT_SECRET: "" };

describe.each([
  ["a confidential app", { ...NO_PLATFORM }, "fake-oauth-client"],
  [
    "a public app (no secret, PKCE)",
    { ...NO_PLATFORM, CAL_OAUTH_CLIENT_ID: "fake-public-client", CAL_OAUTH_CLIENT_SECRET: "" },
    "fake-public-client",
  ],
])("OAuth 2.0 only, %s", (_name, env, clientId) => {
  let h: Harness;
  let worker: WorkerApp | undefined;
  const prefix = uniquePrefix();
  beforeAll(async () => {
    h = await startHarness({ ownDatabase: true, env: { ...env, QUEUE_PREFIX: prefix, ON_DEMAND_BUFFER_SECONDS: "3" } });
  });
  afterAll(async () => {
    await worker?.close();
    await h.close();
  });

  it("connects users through the callback helper and the worker keeps them fresh", async () => {
    expect(h.client.config.calcom.platform).toBeNull();
    const users: { userUlid: string; firstExpiry: number }[] = [];
    for (let i = 0; i < USERS; i++) {
      const verifier = randomBytes(32).toString("base64url");
      const { code } = h.fake.createAuthorizationCode({
        clientId,
        redirectUri: REDIRECT,
        codeChallenge: s256(verifier),
        accessTokenTtlMs: TTL_MS,
      });
      const userUlid = ulid();
      const status = await h.client.completeCalConnection({ userUlid, code, codeVerifier: verifier, redirectUri: REDIRECT });
      users.push({ userUlid, firstExpiry: status.accessTokenExpiresAt.getTime() });
    }
    worker = await startWorker(workerEnv(h, prefix));

    const me = (t: string) => fetch(`${h.fake.url}/v2/me`, { headers: { authorization: `Bearer ${t}` } });
    const statuses = new Map<number, number>();
    const endAt = Math.max(...users.map((u) => u.firstExpiry)) + 2_000;
    while (Date.now() < endAt) {
      await Promise.all(
        users.map(async (u) => {
          const tok = await h.client.ensureValidCalToken(u.userUlid);
          if (!tok.success || !tok.tokenInfo) throw new Error(`no token: ${tok.error?.code}`);
          const res = await h.client.handleCalApiResponse(await me(tok.tokenInfo.accessToken), me, u.userUlid, {
            accessToken: tok.tokenInfo.accessToken,
          });
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        }),
      );
      await sleep(250);
    }

    expect([...statuses.keys()]).toEqual([200]);
    const byWorker = await h.db.calTokenAudit.groupBy({
      by: ["userUlid"],
      where: { outcome: "REFRESHED", trigger: "worker" },
      _min: { createdAt: true },
    });
    const first = new Map(byWorker.map((r) => [r.userUlid, r._min.createdAt!.getTime()]));
    expect(users.filter((u) => !((first.get(u.userUlid) ?? Number.POSITIVE_INFINITY) < u.firstExpiry))).toEqual([]);
    const stats = h.fake.stats();
    expect(stats).toMatchObject({ codeExchanges: USERS, deadRefreshTokenUses: 0, status401: 0 });
    expect(stats.oauth2Refreshes).toBeGreaterThanOrEqual(USERS);
  }, 60_000);
});
