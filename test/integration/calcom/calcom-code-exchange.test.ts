/**
 * The OAuth 2.0 code exchange and the public client (docs/calcom-api.md#oauth2-authorization-code):
 * what goes over the wire (a capturing server), how the fake's answers are classified, and the calls a
 * client without the needed credentials refuses to make.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type CalcomTokenApiDeps, createCalcomTokenApi, type HttpCalcomTokenApi } from "../../../src/calcom/index.js";
import { testLogger } from "../../support/log-sink.js";
import { type FakeCalcom, s256 } from "../../fakes/calcom/index.js";
import { makeClient, NOW, run, startScannedFake } from "./support.js";

const REDIRECT = "https://app.example.test/cal/callback";
const clients: HttpCalcomTokenApi[] = [];
function client(url: string, over: Parameters<typeof makeClient>[1] = {}) {
  const made = makeClient(url, over);
  clients.push(made.client);
  return made;
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe("on the wire", () => {
  let server: Server;
  let seen: { headers: IncomingHttpHeaders; body: Record<string, unknown> }[];
  beforeEach(async () => {
    seen = [];
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        seen.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> });
        res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const url = () => `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  /** A client with exactly these credentials (makeClient's defaults configure both kinds). */
  const bare = (creds: Pick<CalcomTokenApiDeps, "clientId" | "clientSecret" | "oauth2">): HttpCalcomTokenApi => {
    const c = createCalcomTokenApi({ baseUrl: url(), timeoutMs: 2_000, logger: testLogger().logger, ...creds });
    clients.push(c);
    return c;
  };

  it("a confidential app sends the RFC authorization_code grant with its secret, the code, the redirect URI and the verifier", async () => {
    const c = client(url()).client;
    await run(c.exchangeAuthorizationCode({ code: "code-abc", redirectUri: REDIRECT, codeVerifier: "v".repeat(43) }));
    await run(c.exchangeAuthorizationCode({ code: "code-def", redirectUri: REDIRECT }));
    expect(seen.map((s) => s.body)).toEqual([
      {
        grant_type: "authorization_code",
        client_id: "fake-oauth-client",
        client_secret: "fake-oauth-secret",
        code: "code-abc",
        redirect_uri: REDIRECT,
        code_verifier: "v".repeat(43),
      },
      {
        grant_type: "authorization_code",
        client_id: "fake-oauth-client",
        client_secret: "fake-oauth-secret",
        code: "code-def",
        redirect_uri: REDIRECT,
      },
    ]);
    for (const s of seen) {
      expect(s.headers["x-cal-client-id"]).toBe("fake-oauth-client");
      expect(s.headers["x-cal-secret-key"]).toBeUndefined();
      expect(s.headers.authorization).toBeUndefined();
    }
  });

  it("a public app (no secret) sends no client_secret, on a code exchange or a refresh", async () => {
    const c = client(url(), { oauth2: { clientId: "fake-public-client" } }).client;
    await run(c.exchangeAuthorizationCode({ code: "code-abc", redirectUri: REDIRECT, codeVerifier: "v".repeat(43) }));
    await run(c.refreshOAuth2("ort-abc"));
    expect(seen.map((s) => s.body)).toEqual([
      {
        grant_type: "authorization_code",
        client_id: "fake-public-client",
        code: "code-abc",
        redirect_uri: REDIRECT,
        code_verifier: "v".repeat(43),
      },
      { grant_type: "refresh_token", client_id: "fake-public-client", refresh_token: "ort-abc" },
    ]);
  });

  it("calls nothing it has no credentials for (the refresher and the connect helper check first)", async () => {
    const publicOnly = bare({ oauth2: { clientId: "fake-public-client", clientSecret: null } });
    await expect(publicOnly.refreshManaged("rt-abc")).rejects.toThrow(/Platform client .* is not configured/);
    await expect(publicOnly.forceRefreshManaged(42)).rejects.toThrow(/Platform client .* is not configured/);
    await expect(publicOnly.exchangeAuthorizationCode({ code: "code-abc", redirectUri: REDIRECT })).rejects.toThrow(
      /codeVerifier \(PKCE\)/,
    );
    const platformOnly = bare({ clientId: "fake-client", clientSecret: "fake-secret" });
    await expect(platformOnly.refreshOAuth2("ort-abc")).rejects.toThrow(/OAuth 2\.0 app .* is not configured/);
    await expect(platformOnly.exchangeAuthorizationCode({ code: "c", redirectUri: REDIRECT })).rejects.toThrow(/is not configured/);
    expect(seen).toEqual([]);
    expect(() => bare({ clientId: "only-the-id" })).toThrow(/clientSecret must be a non-empty string/);
  });
});

describe("against the fake", () => {
  let fake: FakeCalcom;
  beforeEach(async () => {
    fake = await startScannedFake({ now: () => NOW });
  });
  afterEach(() => fake.close());

  it("a code becomes a pair (expires_in read as relative seconds); a used code is a rejection; nothing secret is logged", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const { code } = fake.createAuthorizationCode({ redirectUri: REDIRECT, codeChallenge: s256(verifier) });
    const { client: c, lines } = client(fake.url);
    const ok = await run(c.exchangeAuthorizationCode({ code, redirectUri: REDIRECT, codeVerifier: verifier }));
    expect(ok).toMatchObject({ kind: "refreshed", expiry: { source: "expires_in", field: "expires_in" } });
    if (ok.kind !== "refreshed") return;
    expect(ok.pair.accessTokenExpiresAt.getTime()).toBe(NOW + 1_800_000);
    expect(fake.isRefreshTokenLive(ok.pair.refreshToken)).toBe(true);

    const replay = await run(c.exchangeAuthorizationCode({ code, redirectUri: REDIRECT, codeVerifier: verifier }));
    expect(replay).toEqual({
      kind: "rejected",
      status: 400,
      code: "invalid_grant",
      message: "Cal.com 400: invalid_grant: code_invalid_or_expired",
    });
    const logged = JSON.stringify(lines());
    expect(logged).toContain('"op":"oauth2.code"');
    for (const secret of [code, verifier, ok.pair.accessToken, ok.pair.refreshToken, "fake-oauth-secret"])
      expect(logged).not.toContain(secret);
  });

  it("a public client connects with PKCE and refreshes without a secret", async () => {
    const verifier = randomBytes(32).toString("base64url");
    const { code } = fake.createAuthorizationCode({ clientId: "fake-public-client", codeChallenge: s256(verifier) });
    const c = client(fake.url, { oauth2: { clientId: "fake-public-client", clientSecret: null } }).client;
    const first = await run(c.exchangeAuthorizationCode({ code, redirectUri: REDIRECT, codeVerifier: verifier }));
    if (first.kind !== "refreshed") throw new Error(`expected a pair, got ${first.kind}`);
    const next = await run(c.refreshOAuth2(first.pair.refreshToken));
    expect(next.kind).toBe("refreshed");
    expect(fake.stats()).toMatchObject({ codeExchanges: 1, oauth2Refreshes: 1 });
  });

  it("bad client credentials on the exchange are config_error, not a refused code", async () => {
    const { code } = fake.createAuthorizationCode();
    const c = client(fake.url, { oauth2: { clientId: "fake-oauth-client", clientSecret: "wrong-secret" } }).client;
    expect(await run(c.exchangeAuthorizationCode({ code, redirectUri: REDIRECT }))).toMatchObject({ kind: "config_error", status: 401 });
  });
});
