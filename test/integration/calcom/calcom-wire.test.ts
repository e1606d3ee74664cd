/** What goes over the wire, seen by a plain capturing server (no fake Cal.com logic in the way). */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createCalcomTokenApi, type HttpCalcomTokenApi, type CalcomTokenApiDeps } from "../../../src/calcom/index.js";
import type { CalRefreshResult } from "../../../src/core/calcom-result.js";
import { recordForSecretScan, testLogger } from "../../support/log-sink.js";

const clients: HttpCalcomTokenApi[] = [];
function makeClient(url: string, over: Partial<CalcomTokenApiDeps> = {}): { client: HttpCalcomTokenApi } {
  const client = createCalcomTokenApi({
    baseUrl: url,
    clientId: "fake-client",
    clientSecret: "fake-secret",
    oauth2: { clientId: "fake-oauth-client", clientSecret: "fake-oauth-secret" },
    timeoutMs: 2_000,
    logger: testLogger().logger,
    ...over,
  });
  clients.push(client);
  return { client };
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

async function run(p: Promise<CalRefreshResult>): Promise<CalRefreshResult> {
  const r = await p;
  if (r.kind !== "refreshed") recordForSecretScan(r);
  return r;
}

describe("wire details (a capturing server)", () => {
  let server: Server;
  let seen: { method: string | undefined; url: string | undefined; headers: IncomingHttpHeaders; body: string }[];
  let reply: (res: ServerResponse) => void;

  beforeEach(async () => {
    seen = [];
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString("utf8")));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body });
        reply(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const url = (): string => `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  it("sends both platform headers, JSON {refreshToken}, no Origin; trailing slash in baseUrl is fine", async () => {
    reply = (res) =>
      res
        .writeHead(400, { "content-type": "application/json" })
        .end('{"status":"error","error":{"code":"BadRequestException","message":"Invalid refresh token"}}');
    const c = makeClient(url()).client;
    expect(await run(c.refreshManaged("rt-abc"))).toMatchObject({ kind: "rejected", status: 400, code: "BadRequestException" });
    const req = seen[0]!;
    expect(req).toMatchObject({ method: "POST", url: "/v2/oauth/fake-client/refresh" });
    expect(req.headers).toMatchObject({ "x-cal-secret-key": "fake-secret", "x-cal-client-id": "fake-client" });
    expect(req.headers.origin).toBeUndefined();
    expect(req.headers["content-type"]).toMatch(/^application\/json/);
    expect(JSON.parse(req.body)).toEqual({ refreshToken: "rt-abc" });
  });

  it("oauth2 sends the RFC refresh_token grant as JSON, with the app's x-cal-client-id and no secret header", async () => {
    reply = (res) => res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid_grant"}');
    const c = makeClient(url()).client;
    await run(c.refreshOAuth2("ort-abc"));
    expect(seen[0]!.url).toBe("/v2/auth/oauth2/token");
    expect(JSON.parse(seen[0]!.body)).toEqual({
      grant_type: "refresh_token",
      client_id: "fake-oauth-client",
      client_secret: "fake-oauth-secret",
      refresh_token: "ort-abc",
    });
    expect(seen[0]!.headers["x-cal-secret-key"]).toBeUndefined();
    expect(seen[0]!.headers["x-cal-client-id"]).toBe("fake-oauth-client");
  });

  it("a redirect is not followed", async () => {
    reply = (res) => res.writeHead(307, { location: `${url()}elsewhere` }).end();
    const c = makeClient(url()).client;
    expect(await run(c.refreshManaged("rt-abc"))).toMatchObject({ kind: "malformed", status: 307, mayHaveRotated: false });
    expect(seen).toHaveLength(1);
  });

  it("a proxy page echoing the refresh token is scrubbed from the message", async () => {
    reply = (res) =>
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"code":"X","message":"no rt-echo-123 here"}}');
    const c = makeClient(url()).client;
    const r = await run(c.refreshManaged("rt-echo-123"));
    expect(r).toMatchObject({ kind: "config_error", message: expect.stringMatching(/^Cal\.com 404: X: no \[REDACTED\] here \(/) });
  });

  it("a rejection echoing the refresh token is scrubbed too", async () => {
    reply = (res) =>
      res
        .writeHead(400, { "content-type": "application/json" })
        .end('{"status":"error","error":{"code":"BadRequestException","message":"Invalid refresh token rt-echo-123"}}');
    const r = await run(makeClient(url()).client.refreshManaged("rt-echo-123"));
    expect(r).toEqual({
      kind: "rejected",
      status: 400,
      code: "BadRequestException",
      message: "Cal.com 400: BadRequestException: Invalid refresh token [REDACTED]",
    });
  });

  it("no call ever carries Authorization or Origin; each carries the right client id", async () => {
    reply = (res) => res.writeHead(503, { "content-type": "application/json" }).end("{}");
    const c = makeClient(url()).client;
    await run(c.refreshManaged("rt-abc"));
    await run(c.forceRefreshManaged(42));
    await run(c.refreshOAuth2("ort-abc"));
    expect(seen.map((r) => r.url)).toEqual([
      "/v2/oauth/fake-client/refresh",
      "/v2/oauth-clients/fake-client/users/42/force-refresh",
      "/v2/auth/oauth2/token",
    ]);
    expect(seen.map((r) => r.headers["x-cal-client-id"])).toEqual(["fake-client", "fake-client", "fake-oauth-client"]);
    for (const r of seen) {
      expect(r.headers.authorization).toBeUndefined();
      expect(r.headers.origin).toBeUndefined();
    }
  });

  it("a base URL with credentials, a query or a fragment is refused (got would send user:pass as Authorization)", () => {
    expect(() => makeClient("https://user:pass@api.cal.com")).toThrow(/credentials/);
    expect(() => makeClient("https://api.cal.com/?x=1")).toThrow(/query or fragment/);
    expect(() => makeClient("https://api.cal.com/#x")).toThrow(/query or fragment/);
  });

  it("connection refused → transient network, not rotated", async () => {
    // Bind the replacement first, so the OS cannot hand the freed port straight back to it.
    const dead = url();
    const old = server;
    server = createServer();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    await new Promise<void>((r) => old.close(() => r()));
    const c = makeClient(dead).client;
    expect(await run(c.refreshManaged("rt-abc"))).toMatchObject({
      kind: "transient",
      reason: "network",
      status: null,
      mayHaveRotated: false,
    });
  });
});
