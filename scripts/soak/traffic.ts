/**
 * Request-path traffic through the public module, as the web app does it: ensureValidCalToken →
 * GET /v2/me at the fake Cal.com → handleCalApiResponse (one refresh and one replay on 498/401).
 * Open loop at a fixed rate over random users; every call is timed, and every call that waited on a
 * refresh, met a rejected token, failed, or spent longer than `slowMs` in the module is kept with its
 * time span so it can be attributed to a fault window afterwards.
 */
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";

export interface SoakUser {
  userUlid: string;
  kind: "managed" | "oauth2";
  calUserId: number;
  ttlMs: number;
}

export interface RequestEvent {
  /** Milliseconds from the start of traffic. */
  start: number;
  end: number;
  user: string;
  kind: SoakUser["kind"];
  /** Time spent in the module: ensureValidCalToken plus handleCalApiResponse without the replayed call. */
  moduleMs: number;
  /** ensureValidCalToken refreshed inline (or gave up waiting for a refresh), or a rejected call was refreshed. */
  waitedOnRefresh: boolean;
  /** The first GET /v2/me was refused with this status (498, or 401 Invalid Access Token). */
  rejectedStatus?: number;
  /** Why the request path failed: an error code from the module, `calcom.unreachable`, or `api.<status>`. */
  failure?: string;
  slow: boolean;
}

export interface TrafficResult {
  requests: number;
  ok: number;
  /** Calls not started because too many were in flight (the process could not keep up). */
  shed: number;
  /** moduleMs of every call. */
  moduleMs: number[];
  notable: RequestEvent[];
  /** success: true with an error attached (a refresh failed but the stored token still works), by code. */
  servedWithError: Record<string, number>;
  /** Calls started per second of traffic. */
  perSecond: number[];
}

export interface Traffic {
  /** Counts so far, for progress lines. */
  live(): { requests: number; ok: number; notable: number };
  stop(): Promise<TrafficResult>;
}

export function startTraffic(opts: {
  client: CalTokenClient;
  users: SoakUser[];
  calcomUrl: string;
  requestsPerSecond: number;
  slowMs: number;
  t0: number;
}): Traffic {
  const { client, users, calcomUrl, requestsPerSecond, slowMs, t0 } = opts;
  const result: TrafficResult = { requests: 0, ok: 0, shed: 0, moduleMs: [], notable: [], servedWithError: {}, perSecond: [] };
  const maxInFlight = Math.max(50, requestsPerSecond * 5);
  const inFlight = new Set<Promise<void>>();
  let issued = 0;
  const startedAt = Date.now();
  const me = (token: string) =>
    fetch(`${calcomUrl}/v2/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });

  async function one(user: SoakUser): Promise<void> {
    const start = Date.now() - t0;
    const second = Math.floor(start / 1000);
    result.perSecond[second] = (result.perSecond[second] ?? 0) + 1;
    result.requests += 1;
    const ev: RequestEvent = { start, end: start, user: user.userUlid, kind: user.kind, moduleMs: 0, waitedOnRefresh: false, slow: false };
    const a = performance.now();
    const tok = await client.ensureValidCalToken(user.userUlid);
    let moduleMs = performance.now() - a;
    try {
      if (tok.refreshed || tok.error?.code === "token.refresh_in_progress") ev.waitedOnRefresh = true;
      if (!tok.success || !tok.tokenInfo) {
        ev.failure = tok.error?.code ?? "unknown";
        return;
      }
      if (tok.error) result.servedWithError[tok.error.code] = (result.servedWithError[tok.error.code] ?? 0) + 1;
      const accessToken = tok.tokenInfo.accessToken;
      let first: Response;
      try {
        first = await me(accessToken);
      } catch {
        ev.failure = "calcom.unreachable";
        return;
      }
      if (first.status === 498 || first.status === 401) {
        ev.rejectedStatus = first.status;
        ev.waitedOnRefresh = true;
      }
      let replayMs = 0;
      const retry = async (t: string) => {
        const r0 = performance.now();
        try {
          return await me(t);
        } finally {
          replayMs = performance.now() - r0;
        }
      };
      const h0 = performance.now();
      let final: Response;
      try {
        final = await client.handleCalApiResponse(first, retry, user.userUlid, { accessToken });
      } catch {
        ev.failure = "calcom.unreachable";
        return;
      } finally {
        moduleMs += performance.now() - h0 - replayMs;
      }
      await final.arrayBuffer().catch(() => undefined);
      if (final !== first) await first.arrayBuffer().catch(() => undefined);
      if (final.status !== 200) ev.failure = `api.${final.status}`;
      else result.ok += 1;
    } finally {
      ev.end = Date.now() - t0;
      ev.moduleMs = moduleMs;
      ev.slow = moduleMs > slowMs;
      result.moduleMs.push(moduleMs);
      if (ev.waitedOnRefresh || ev.failure !== undefined || ev.rejectedStatus !== undefined || ev.slow) result.notable.push(ev);
    }
  }

  const tick = setInterval(() => {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * requestsPerSecond) - issued;
    for (let i = 0; i < due; i++) {
      issued += 1;
      if (inFlight.size >= maxInFlight) {
        result.shed += 1;
        continue;
      }
      const user = users[Math.floor(Math.random() * users.length)] as SoakUser;
      const p = one(user).catch((err: unknown) => {
        // The module's contract is results, not throws: a throw is a finding of its own.
        result.notable.push({
          start: Date.now() - t0,
          end: Date.now() - t0,
          user: user.userUlid,
          kind: user.kind,
          moduleMs: 0,
          waitedOnRefresh: false,
          failure: `threw: ${err instanceof Error ? err.message.slice(0, 120) : String(err)}`,
          slow: false,
        });
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  }, 10);

  return {
    live: () => ({ requests: result.requests, ok: result.ok, notable: result.notable.length }),
    async stop() {
      clearInterval(tick);
      await Promise.allSettled([...inFlight]);
      return result;
    },
  };
}
