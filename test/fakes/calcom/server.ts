/**
 * startFakeCalcom(): the fake Cal.com API v2 over real HTTP (node:http). Routing, the global throttler
 * (which runs before any auth guard, as in Nest), and lifecycle: close() destroys every socket so
 * hung requests never keep a test alive.
 */
import { appendFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { AuthorizationCodes } from "./auth-codes.js";
import { control } from "./control-routes.js";
import { FaultController } from "./faults.js";
import type { Ctx } from "./http-io.js";
import { header, nestError, parseBody, readBody } from "./http-io.js";
import { DEFAULT_BLOCK_MS, RateLimiter, trackerFor } from "./rate-limiter.js";
import { calendars, createManagedUser, me } from "./resource-routes.js";
import { CalcomState } from "./state.js";
import { TOO_MANY_REQUESTS, forceRefresh, managedRefresh, oauth2Token } from "./token-routes.js";
import type { TokenDeps } from "./token-routes.js";
import type { FakeCalcom, FakeCalcomOptions, RouteKey } from "./types.js";

interface Route {
  method: string;
  pattern: RegExp;
  key: RouteKey;
}

const ROUTES: Route[] = [
  { method: "POST", pattern: /^\/v2\/oauth\/([^/]+)\/refresh$/, key: "managed.refresh" },
  { method: "POST", pattern: /^\/v2\/oauth-clients\/([^/]+)\/users\/([^/]+)\/force-refresh$/, key: "managed.forceRefresh" },
  { method: "POST", pattern: /^\/v2\/oauth-clients\/([^/]+)\/users$/, key: "managed.createUser" },
  { method: "POST", pattern: /^\/v2\/auth\/oauth2\/token$/, key: "oauth2.token" },
  { method: "GET", pattern: /^\/v2\/me$/, key: "me" },
  { method: "GET", pattern: /^\/v2\/calendars$/, key: "calendars" },
];

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export async function startFakeCalcom(opts: FakeCalcomOptions = {}): Promise<FakeCalcom> {
  const now = opts.now ?? Date.now;
  const tokensFile = opts.issuedTokensFile;
  const onIssue = tokensFile ? (token: string) => appendFileSync(tokensFile, `${token}\n`) : () => {};
  const state = new CalcomState({
    clients: opts.clients ?? [{ id: "fake-client", secret: "fake-secret" }],
    oauth2Clients: opts.oauth2Clients ?? [
      { id: "fake-oauth-client", secret: "fake-oauth-secret" },
      { id: "fake-public-client", secret: null },
    ],
    accessTokenTtlMs: opts.accessTokenTtlMs,
    oauth2AccessTokenTtlMs: opts.oauth2AccessTokenTtlMs ?? 1800 * 1000,
    now,
    enforceRefreshTokenExpiry: opts.enforceRefreshTokenExpiry ?? false,
    onIssue,
  });
  const faults = new FaultController(now);
  const limiter = opts.rateLimit === false ? null : new RateLimiter(now, opts.rateLimit);
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            resolve();
          }, ms);
          timers.add(t);
        });
  const codes = new AuthorizationCodes(state, onIssue);
  const deps: TokenDeps = {
    state,
    codes,
    faults,
    sleep,
    blockMs: limiter?.blockMs ?? DEFAULT_BLOCK_MS,
    ...(opts.onTokenCall ? { onTokenCall: opts.onTokenCall } : {}),
  };

  const countStatus = (status: number): void => {
    if (status === 401) state.stats.status401++;
    else if (status === 429) state.stats.status429++;
    else if (status === 498) state.stats.status498++;
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://fake.invalid").pathname;
    const ctx: Ctx = { req, res, now, extraHeaders: {}, rateLimit: 120, count: () => {} };
    const body = parseBody(await readBody(req), header(req.headers, "content-type"));
    if (path.startsWith("/__fake/")) return control(ctx, fake, method, path, body);

    let route: Route | undefined;
    let params: string[] = [];
    for (const r of ROUTES) {
      const m = r.method === method ? r.pattern.exec(path) : null;
      if (m) {
        route = r;
        params = m.slice(1).map((p) => safeDecode(p ?? ""));
        break;
      }
    }
    if (!route) {
      // Nest's router answers before any guard: no throttling, no auth. Its message quotes the
      // original URL, query included (docs/calcom-api.md#unknown-routes).
      state.stats.routeNotFound++;
      return nestError(ctx, 404, "NotFoundException", `Cannot ${method} ${req.url ?? path}`);
    }

    ctx.count = countStatus;
    state.stats.calls[route.key] = (state.stats.calls[route.key] ?? 0) + 1;
    if (limiter) {
      // The throttler resolves API keys itself and rejects unknown ones before counting.
      if (header(req.headers, "authorization")?.replace("Bearer ", "").startsWith("cal_")) {
        return nestError(ctx, 401, "UnauthorizedException", "CustomThrottlerGuard - Invalid API Key");
      }
      const isPlatformClient = (id: string): boolean => state.clientSecret("managed", id) !== undefined;
      const decision = limiter.hit(trackerFor(req.headers, req.socket.remoteAddress ?? "unknown", isPlatformClient));
      ctx.extraHeaders = decision.headers;
      ctx.rateLimit = decision.limit;
      if (!decision.allowed) return nestError(ctx, 429, "ThrottlerException", TOO_MANY_REQUESTS);
    }
    const [first = "", second = ""] = params;
    switch (route.key) {
      case "managed.refresh":
        return managedRefresh(ctx, deps, first, body);
      case "managed.forceRefresh":
        return forceRefresh(ctx, deps, first, second);
      case "managed.createUser":
        return createManagedUser(ctx, state, first, body);
      case "oauth2.token":
        return oauth2Token(ctx, deps, body);
      case "me":
        return me(ctx, state);
      case "calendars":
        return calendars(ctx, state);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the fake must show up as a 500 the test can see, not as a hung request.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(`fake-calcom internal error: ${err instanceof Error ? err.stack : String(err)}`);
      }
    });
  });
  let reachable = true;
  server.on("connection", (socket: Socket) => {
    if (!reachable) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const fake: FakeCalcom = {
    url: `http://127.0.0.1:${port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
      return closing;
    },
    createManagedUser: (o) => state.seedManaged(o),
    createOAuth2Grant: (o) => state.seedOAuth2(o),
    createAuthorizationCode: (o) => codes.mint(o),
    expireAccessToken: (token) => state.expireAccessToken(token),
    setReachable: (r) => {
      reachable = r;
      if (!r) for (const s of sockets) s.destroy();
    },
    setAccessTokenTtlMs: (ms) => {
      state.accessTokenTtlMs = ms;
    },
    faults,
    stats: () => state.snapshotStats(),
    resetStats: () => state.resetStats(),
    isRefreshTokenLive: (token) => state.isRefreshTokenLive(token),
    isAccessTokenValid: (token) => state.isAccessTokenValid(token),
  };
  return fake;
}
