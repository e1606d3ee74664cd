/**
 * A CalcomTokenApi for unit tests: every call answers the next scripted step for its method and is
 * recorded. A call with nothing scripted throws UnscriptedCalcomCallError, so an unexpected Cal.com
 * call (the expensive, rotation-burning kind) fails the test loudly instead of returning a default.
 *
 *   const api = createScriptedCalcomApi()
 *     .script("refreshManaged", transient("timeout", true), refreshed({ accessToken: "at_2" }))
 *     .script("forceRefreshManaged", (calUserId) => rejected(404, `no user ${calUserId}`));
 *
 * Refresh tokens passed in are kept in `calls()` for assertions (memory only; error messages show a
 * short fingerprint, never the token).
 */
import type { CalRefreshResult } from "../../src/core/calcom-result.js";
import type { CalcomTokenApi } from "../../src/core/ports.js";
import type { TokenPair } from "../../src/core/types.js";

export type CalcomMethod = keyof CalcomTokenApi;
export type CalcomArg<M extends CalcomMethod> = Parameters<CalcomTokenApi[M]>[0];

/** A canned result, or a function of the call's argument (may throw or reject to simulate a bug). */
export type ScriptStep<M extends CalcomMethod> = CalRefreshResult | ((arg: CalcomArg<M>) => CalRefreshResult | Promise<CalRefreshResult>);

export type RecordedCalcomCall = { [M in CalcomMethod]: { method: M; arg: CalcomArg<M> } }[CalcomMethod];

export interface ScriptedCalcomApi extends CalcomTokenApi {
  /** Appends steps for `method`, answered in order (one per call). Chainable. */
  script<M extends CalcomMethod>(method: M, ...steps: ScriptStep<M>[]): ScriptedCalcomApi;
  /** Every call so far, in order, with its argument. */
  calls(): RecordedCalcomCall[];
  /** The arguments of the calls to one method, in order. */
  callsOf<M extends CalcomMethod>(method: M): CalcomArg<M>[];
  /** Steps still scripted (for one method, or all). */
  remaining(method?: CalcomMethod): number;
  /** Throws if any scripted step was never used (the test expected a call that did not happen). */
  assertAllConsumed(): void;
}

export class UnscriptedCalcomCallError extends Error {
  readonly method: CalcomMethod;
  constructor(method: CalcomMethod, arg: string, history: string) {
    super(`scripted Cal.com API: unexpected call ${method}(${arg}): nothing scripted for it. Calls so far: ${history || "none"}`);
    this.name = "UnscriptedCalcomCallError";
    this.method = method;
  }
}

const METHODS: readonly CalcomMethod[] = ["refreshManaged", "forceRefreshManaged", "refreshOAuth2", "exchangeAuthorizationCode"];

/** How an argument appears in a message: a calUserId as is, a token as length + last 4 characters. */
function describeArg(call: RecordedCalcomCall): string {
  if (call.method === "forceRefreshManaged") return `calUserId ${call.arg}`;
  if (call.method === "exchangeAuthorizationCode") return `authorization code …${call.arg.code.slice(-4)} (${call.arg.code.length} chars)`;
  const t = String(call.arg);
  return `refresh token …${t.slice(-4)} (${t.length} chars)`;
}

export function createScriptedCalcomApi(): ScriptedCalcomApi {
  const steps = new Map<CalcomMethod, ScriptStep<CalcomMethod>[]>(METHODS.map((m) => [m, []]));
  const recorded: RecordedCalcomCall[] = [];

  async function answer(call: RecordedCalcomCall): Promise<CalRefreshResult> {
    recorded.push(call);
    const step = steps.get(call.method)!.shift();
    if (step === undefined) {
      const history = recorded
        .slice(0, -1)
        .map((c) => `${c.method}(${describeArg(c)})`)
        .join(", ");
      throw new UnscriptedCalcomCallError(call.method, describeArg(call), history);
    }
    const result =
      typeof step === "function" ? await (step as (arg: unknown) => CalRefreshResult | Promise<CalRefreshResult>)(call.arg) : step;
    return copyResult(result);
  }

  const api: ScriptedCalcomApi = {
    refreshManaged: (refreshToken) => answer({ method: "refreshManaged", arg: refreshToken }),
    forceRefreshManaged: (calUserId) => answer({ method: "forceRefreshManaged", arg: calUserId }),
    refreshOAuth2: (refreshToken) => answer({ method: "refreshOAuth2", arg: refreshToken }),
    exchangeAuthorizationCode: (input) => answer({ method: "exchangeAuthorizationCode", arg: { ...input } }),

    script(method, ...more) {
      steps.get(method)!.push(...(more as ScriptStep<CalcomMethod>[]));
      return api;
    },
    calls: () => recorded.map((c) => ({ ...c })),
    callsOf: <M extends CalcomMethod>(method: M) => recorded.filter((c) => c.method === method).map((c) => c.arg as CalcomArg<M>),
    remaining: (method) => (method === undefined ? METHODS.reduce((n, m) => n + steps.get(m)!.length, 0) : steps.get(method)!.length),
    assertAllConsumed() {
      const left = METHODS.filter((m) => steps.get(m)!.length > 0).map((m) => `${m}: ${steps.get(m)!.length}`);
      if (left.length > 0) throw new Error(`scripted Cal.com API: scripted steps never used (${left.join(", ")})`);
    },
  };
  return api;
}

// ---- result builders ------------------------------------------------------------------------------

let issued = 0;
/** Far enough ahead of any test clock that a default pair is never "already expired". */
const DEFAULT_ACCESS_EXPIRY = new Date("2099-01-01T00:00:00.000Z");

/** A fresh pair (unique tokens); pass `accessTokenExpiresAt` when the test's clock matters. */
export function scriptedPair(over: Partial<TokenPair> = {}): TokenPair {
  issued += 1;
  return {
    accessToken: `scripted_at_${issued}`,
    refreshToken: `scripted_rt_${issued}`,
    accessTokenExpiresAt: new Date(DEFAULT_ACCESS_EXPIRY.getTime()),
    refreshTokenExpiresAt: null,
    ...over,
  };
}

/** `sentAt`: when the HTTP client would say the request left (it always does; omitted = like a double that does not). */
export function refreshed(pair: Partial<TokenPair> = {}, sentAt?: Date): CalRefreshResult {
  return sentAt === undefined ? { kind: "refreshed", pair: scriptedPair(pair) } : { kind: "refreshed", pair: scriptedPair(pair), sentAt };
}

/** `code` defaults to what the classifier uses without a Cal.com error code: `HTTP_<status>`. */
export function rejected(status: number, code = `HTTP_${status}`): CalRefreshResult {
  return { kind: "rejected", status, code, message: `Cal.com ${status}: ${code}` };
}

/**
 * `status` defaults to 502 (gateway: may have committed) or 503 (handler never committed) for
 * server_error, following `mayHaveRotated`, and to null for timeout / network.
 */
export function transient(
  reason: "timeout" | "network" | "server_error",
  mayHaveRotated: boolean,
  status: number | null = reason === "server_error" ? (mayHaveRotated ? 502 : 503) : null,
): CalRefreshResult {
  return { kind: "transient", reason, status, mayHaveRotated, message: `scripted ${reason}${status === null ? "" : ` (${status})`}` };
}

export function rateLimited(resetMs: number): CalRefreshResult {
  return { kind: "rate_limited", status: 429, resetMs };
}

export function malformed(status: number, mayHaveRotated: boolean): CalRefreshResult {
  return { kind: "malformed", status, mayHaveRotated, message: `Cal.com ${status}: scripted malformed response` };
}

export function configError(status: number): CalRefreshResult {
  return { kind: "config_error", status, message: `Cal.com ${status}: scripted client credential error` };
}

/** A copy the caller cannot use to change the script; Dates are rebuilt in this realm (structuredClone's are not `instanceof Date` under Jest). */
function copyResult(r: CalRefreshResult): CalRefreshResult {
  if (r.kind !== "refreshed") return { ...r };
  const { accessTokenExpiresAt: a, refreshTokenExpiresAt: b } = r.pair;
  return {
    kind: "refreshed",
    pair: { ...r.pair, accessTokenExpiresAt: new Date(a.getTime()), refreshTokenExpiresAt: b === null ? null : new Date(b.getTime()) },
    ...(r.sentAt ? { sentAt: new Date(r.sentAt.getTime()) } : {}),
  };
}
