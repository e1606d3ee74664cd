/**
 * `/__fake/*` control endpoints so a fake started in another process (main.ts) can be seeded and
 * driven over HTTP. Not rate limited, not counted in stats.
 */
import type { Body, Ctx } from "./http-io.js";
import { sendJson } from "./http-io.js";
import { isFault, stormError } from "./faults.js";
import type { AuthorizationCodeOptions, FakeCalcom, SeedOptions, StormOptions } from "./types.js";

function seedOptions(body: Record<string, unknown> | undefined): SeedOptions {
  const opts: SeedOptions = {};
  const ttl = body?.accessTokenTtlMs;
  const clientId = body?.clientId;
  if (typeof ttl === "number") opts.accessTokenTtlMs = ttl;
  if (typeof clientId === "string") opts.clientId = clientId;
  return opts;
}

/** `{clientId?, redirectUri?, codeChallenge?, calUserId?, accessTokenTtlMs?}`; other fields are ignored. */
function codeOptions(body: Record<string, unknown> | undefined): AuthorizationCodeOptions {
  const opts: AuthorizationCodeOptions = { ...seedOptions(body) };
  const { redirectUri, codeChallenge, calUserId } = body ?? {};
  if (typeof redirectUri === "string") opts.redirectUri = redirectUri;
  if (typeof codeChallenge === "string") opts.codeChallenge = codeChallenge;
  if (typeof calUserId === "number") opts.calUserId = calUserId;
  return opts;
}

/**
 * Applies `{clear?, latencyMs?, next?: {fault, times?}, always?, storm?}` in that order (`storm` is
 * `{durationMs, status?, commitFraction?}` or null); returns an error text or null.
 */
function applyFaults(fake: FakeCalcom, body: Record<string, unknown> | undefined): string | null {
  const next = body?.next as { fault?: unknown; times?: unknown } | undefined;
  const { always, storm, latencyMs: latency } = body ?? {};
  if (next !== undefined && !isFault(next?.fault)) return "next.fault is not a known fault";
  if (always !== undefined && always !== null && !isFault(always)) return "always is not a known fault";
  if (latency !== undefined && typeof latency !== "number") return "latencyMs must be a number";
  const badStorm = storm === undefined || storm === null ? null : stormError(storm);
  if (badStorm) return badStorm;
  if (body?.clear === true) fake.faults.clear();
  if (typeof latency === "number") fake.faults.latencyMs = latency;
  if (next && isFault(next.fault)) fake.faults.next(next.fault, typeof next.times === "number" ? next.times : 1);
  if (always === null || isFault(always)) fake.faults.always(always);
  if (storm !== undefined) fake.faults.storm(storm as StormOptions | null);
  return null;
}

/** Handles a /__fake/ request; answers 404 for unknown control paths. */
export function control(ctx: Ctx, fake: FakeCalcom, method: string, path: string, body: Body): void {
  if (body === "invalid") return sendJson(ctx, 400, { error: "invalid JSON body" });
  const route = `${method} ${path}`;
  try {
    switch (route) {
      case "POST /__fake/managed-users":
        return sendJson(ctx, 201, fake.createManagedUser(seedOptions(body)));
      case "POST /__fake/oauth2-grants":
        return sendJson(ctx, 201, fake.createOAuth2Grant(seedOptions(body)));
      case "POST /__fake/authorization-codes":
        return sendJson(ctx, 201, fake.createAuthorizationCode(codeOptions(body)));
      case "POST /__fake/faults": {
        const error = applyFaults(fake, body);
        return error ? sendJson(ctx, 400, { error }) : sendJson(ctx, 200, { ok: true, latencyMs: fake.faults.latencyMs });
      }
      case "GET /__fake/stats":
        return sendJson(ctx, 200, fake.stats());
      case "POST /__fake/reset-stats":
        fake.resetStats();
        return sendJson(ctx, 200, { ok: true });
      case "POST /__fake/ttl": {
        const ttl = body?.accessTokenTtlMs;
        if (typeof ttl !== "number") return sendJson(ctx, 400, { error: "accessTokenTtlMs must be a number" });
        fake.setAccessTokenTtlMs(ttl);
        return sendJson(ctx, 200, { ok: true });
      }
      case "POST /__fake/expire-access-token": {
        const token = body?.accessToken;
        if (typeof token !== "string") return sendJson(ctx, 400, { error: "accessToken must be a string" });
        fake.expireAccessToken(token);
        return sendJson(ctx, 200, { ok: true });
      }
      default:
        return sendJson(ctx, 404, { error: `no control route ${route}` });
    }
  } catch (err) {
    // e.g. an unknown clientId in a seed request: a test mistake, reported rather than crashing the fake.
    sendJson(ctx, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}
