import type { CalRefreshResult } from "../../src/core/calcom-result.js";
import {
  classifyResponse,
  DEFAULT_RATE_LIMIT_RESET_MS,
  matchRejection,
  rateLimitResetMs,
  readErrorBody,
  REJECTION_RULES,
  STATUS_RULES,
  statusRule,
  type TokenEndpoint,
  UNEXPECTED_STATUS,
} from "../../src/calcom/index.js";

const NOW = 1_750_000_000_000;
const json = (v: unknown): string => JSON.stringify(v);
const calError = (code: string, message: string): string =>
  json({ status: "error", timestamp: "2025-01-01T00:00:00.000Z", path: "/v2/x", error: { code, message } });
const rfc = (error: string, description = "x"): string => json({ error, error_description: description });
const HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>";
const NGINX_404 = "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center></body></html>";
const ENDPOINTS: TokenEndpoint[] = ["managed.refresh", "managed.forceRefresh", "oauth2.token", "oauth2.code"];
const classify = (endpoint: TokenEndpoint, status: number, body: string, headers = {}): CalRefreshResult =>
  classifyResponse(endpoint, status, headers, body, NOW);

type Case = [TokenEndpoint, number, string];

/**
 * Every row of the rejection table: the answers that prove it, and near misses (same status on
 * another endpoint, same words in another shape, another code) that must not.
 */
const REJECTION_CASES: Record<string, { proves: Case[]; nearMisses: Case[] }> = {
  "managed.invalid_refresh_token": {
    proves: [
      ["managed.refresh", 400, calError("BadRequestException", "Invalid refresh token")],
      ["managed.refresh", 400, calError("BadRequestException", "Invalid managed user refresh token")],
      ["managed.refresh", 400, calError("BadRequestException", "INVALID REFRESH TOKEN")],
    ],
    nearMisses: [
      ["managed.refresh", 400, calError("BadRequestException", "Bad Request Exception")],
      ["managed.refresh", 400, calError("BadRequestException", "refreshToken must be a string")],
      ["managed.refresh", 400, json({ message: "Invalid refresh token" })],
      ["managed.refresh", 400, "Invalid refresh token"],
      ["managed.refresh", 401, calError("UnauthorizedException", "Invalid refresh token")],
      ["managed.forceRefresh", 400, calError("BadRequestException", "Invalid refresh token")],
      ["oauth2.token", 400, calError("BadRequestException", "Invalid refresh token")],
    ],
  },
  "managed.record_race": {
    proves: [["managed.refresh", 404, calError("NOT_FOUND", "Invalid Query: The requested record was not found.")]],
    nearMisses: [
      ["managed.refresh", 404, calError("NotFoundException", "Cannot POST /v2/v2/oauth/c/refresh")],
      ["managed.refresh", 404, json({ message: "Invalid Query: The requested record was not found." })],
      ["managed.refresh", 400, calError("NOT_FOUND", "Invalid Query: The requested record was not found.")],
      ["managed.forceRefresh", 404, calError("NOT_FOUND", "Invalid Query: The requested record was not found.")],
    ],
  },
  "force.not_in_client": {
    proves: [["managed.forceRefresh", 404, calError("NotFoundException", "User with ID 42 is not part of this OAuth client.")]],
    nearMisses: [
      ["managed.forceRefresh", 404, calError("NotFoundException", "Cannot POST /v2/v2/oauth-clients/c/users/42/force-refresh")],
      ["managed.forceRefresh", 403, calError("ForbiddenException", "User with ID 42 is not part of this OAuth client.")],
      ["managed.refresh", 404, calError("NotFoundException", "User with ID 42 is not part of this OAuth client.")],
      ["managed.forceRefresh", 404, NGINX_404],
    ],
  },
  "oauth2.invalid_grant": {
    proves: [
      ["oauth2.token", 400, rfc("invalid_grant", "refresh_token_revoked")],
      ["oauth2.token", 400, json({ error: "invalid_grant" })],
      ["oauth2.token", 400, json({ status: "error", data: { error: "invalid_grant", error_description: "invalid_refresh_token" } })],
      ["oauth2.token", 400, calError("invalid_grant", "client_id_mismatch")],
    ],
    nearMisses: [
      ["oauth2.token", 401, rfc("invalid_grant")],
      ["oauth2.token", 400, rfc("invalid_client")],
      ["oauth2.token", 400, rfc("unauthorized_client")],
      ["oauth2.token", 400, rfc("invalid_request", "refresh_token is required")],
      ["oauth2.token", 400, rfc("unsupported_grant_type")],
      ["oauth2.token", 404, rfc("invalid_grant")],
      ["managed.refresh", 400, rfc("invalid_grant")],
    ],
  },
  "oauth2.code_rejected": {
    proves: [
      ["oauth2.code", 400, rfc("invalid_grant", "code_invalid_or_expired")],
      ["oauth2.code", 400, rfc("invalid_grant", "redirect_uri_mismatch")],
      ["oauth2.code", 400, rfc("invalid_grant", "invalid_code_verifier")],
      ["oauth2.code", 400, json({ status: "error", data: { error: "invalid_grant", error_description: "code_invalid_or_expired" } })],
    ],
    nearMisses: [
      ["oauth2.code", 401, rfc("invalid_grant")],
      ["oauth2.code", 401, rfc("invalid_client", "invalid_client_credentials")],
      ["oauth2.code", 400, rfc("invalid_request", "code is required")],
      ["oauth2.code", 400, rfc("unsupported_grant_type")],
      ["oauth2.code", 404, calError("NotFoundException", "Cannot POST /v2/v2/auth/oauth2/token")],
      ["managed.forceRefresh", 400, rfc("invalid_grant")],
    ],
  },
};

describe("rejection table: only proof of a dead grant is `rejected`", () => {
  it("has a test case for every rule, and every rule cites its doc anchor", () => {
    expect(Object.keys(REJECTION_CASES).sort()).toEqual(REJECTION_RULES.map((r) => r.id).sort());
    for (const r of REJECTION_RULES) expect(r.doc).toMatch(/^docs\/calcom-api\.md#[a-z0-9-]+$/);
  });
  describe.each(Object.entries(REJECTION_CASES))("%s", (id, { proves, nearMisses }) => {
    it.each(proves)("%s %i %s → rejected", (endpoint, status, body) => {
      expect(matchRejection(endpoint, status, readErrorBody(JSON.parse(body)))?.id).toBe(id);
      expect(classify(endpoint, status, body)).toMatchObject({ kind: "rejected", status });
    });
    it.each(nearMisses)("%s %i %s → config_error, not rejected", (endpoint, status, body) => {
      expect(classify(endpoint, status, body)).toMatchObject({ kind: "config_error", status });
    });
  });
  it("keeps Cal.com's code and message", () => {
    expect(classify("managed.refresh", 400, calError("BadRequestException", "Invalid refresh token"))).toEqual({
      kind: "rejected",
      status: 400,
      code: "BadRequestException",
      message: "Cal.com 400: BadRequestException: Invalid refresh token",
    });
    expect(classify("oauth2.token", 400, rfc("invalid_grant", "refresh_token_revoked"))).toEqual({
      kind: "rejected",
      status: 400,
      code: "invalid_grant",
      message: "Cal.com 400: invalid_grant: refresh_token_revoked",
    });
  });
});

describe("a wrong CAL_API_URL, a proxy or our credentials never pass for a dead grant", () => {
  const route404 = (path: string): string => calError("NotFoundException", `Cannot POST ${path}`);
  const answers: [string, number, string][] = [
    ["route-level 404 (base URL ends in /v2)", 404, route404("/v2/v2/oauth/c/refresh")],
    ["HTML 404 from a proxy", 404, NGINX_404],
    ["empty 404", 404, ""],
    ["JSON 404 without an envelope", 404, json({ message: "Not Found" })],
    ["HTML 400 from a WAF", 400, HTML],
    ["empty 400", 400, ""],
    ["400 validation error", 400, calError("BadRequestException", "Bad Request Exception")],
    ["401 unknown client", 401, calError("UnauthorizedException", "ApiAuthStrategy - oAuth client - Client with ID c not found")],
    ["401 wrong secret", 401, calError("UnauthorizedException", "ApiAuthStrategy - oAuth client - Invalid client secret")],
    ["403 client of another organisation", 403, calError("ForbiddenException", "Forbidden resource")],
    ["401 invalid_client", 401, rfc("invalid_client", "invalid_client_credentials")],
    ["legacy 401", 401, json({ message: "Unauthorized" })],
  ];
  describe.each(ENDPOINTS)("%s", (endpoint) => {
    it.each(answers)("%s → config_error", (_name, status, body) => {
      expect(classify(endpoint, status, body)).toMatchObject({ kind: "config_error", status });
    });
  });
  it("the message says what to check", () => {
    const hint = (status: number, body: string): string => {
      const r = classify("managed.refresh", status, body);
      return r.kind === "config_error" ? r.message : "";
    };
    expect(hint(404, route404("/v2/v2/oauth/c/refresh"))).toBe(
      "Cal.com 404: NotFoundException: Cannot POST /v2/v2/oauth/c/refresh (route not found: check CAL_API_URL (the base URL, without /v2))",
    );
    expect(hint(404, NGINX_404)).toContain("not an answer from Cal.com's API: check CAL_API_URL");
    expect(hint(401, calError("UnauthorizedException", "ApiAuthStrategy - oAuth client - Invalid client secret"))).toContain(
      "client credentials refused",
    );
  });
});

describe("status table: every row", () => {
  const cases: Record<string, [number, Record<string, unknown>][]> = {
    rate_limited: [[429, { kind: "rate_limited", status: 429 }]],
    server_error: [
      [500, { kind: "transient", reason: "server_error", mayHaveRotated: false }],
      [501, { kind: "transient", reason: "server_error", mayHaveRotated: false }],
      [503, { kind: "transient", reason: "server_error", mayHaveRotated: false }],
      [522, { kind: "transient", reason: "server_error", mayHaveRotated: false }],
      [502, { kind: "transient", reason: "server_error", mayHaveRotated: true }],
      [504, { kind: "transient", reason: "server_error", mayHaveRotated: true }],
      [520, { kind: "transient", reason: "server_error", mayHaveRotated: true }],
      [524, { kind: "transient", reason: "server_error", mayHaveRotated: true }],
    ],
    request_timeout: [[408, { kind: "transient", reason: "timeout", mayHaveRotated: false }]],
    not_a_rejection: [[400, { kind: "config_error" }]],
    client_refused: [[401, { kind: "config_error" }]],
    client_forbidden: [[403, { kind: "config_error" }]],
    not_found: [[404, { kind: "config_error" }]],
    unexpected_status: [301, 302, 307, 402, 405, 409, 410, 413, 415, 422, 498].map((s) => [
      s,
      { kind: "malformed", mayHaveRotated: false },
    ]),
  };
  it("has a test case for every rule", () => {
    expect(Object.keys(cases).sort()).toEqual([...STATUS_RULES, UNEXPECTED_STATUS].map((r) => r.id).sort());
  });
  describe.each(Object.entries(cases))("%s", (id, rows) => {
    it.each(rows)("%i → %o on every endpoint", (status, expected) => {
      expect(statusRule(status).id).toBe(id);
      for (const endpoint of ENDPOINTS) {
        expect(classify(endpoint, status, calError("SomeException", "boom"))).toMatchObject({ ...expected, status });
        expect(classify(endpoint, status, HTML)).toMatchObject({ ...expected, status });
      }
    });
  });
  it("an HTML 502 page is transient with the status only", () => {
    expect(classify("managed.refresh", 502, HTML)).toMatchObject({ kind: "transient", status: 502, message: "Cal.com 502" });
  });
  it("long messages are truncated", () => {
    const r = classify("managed.refresh", 400, calError("X", `Invalid refresh token ${"y".repeat(5000)}`));
    expect(r.kind === "rejected" && r.message.length).toBeLessThanOrEqual(301);
  });
});

describe("429 / rateLimitResetMs", () => {
  const body = calError("ThrottlerException", "CustomThrottlerGuard - Too many requests. Please try again later.");
  it.each(ENDPOINTS)("%s: X-RateLimit-Reset-Default is relative seconds", (endpoint) => {
    expect(classify(endpoint, 429, body, { "x-ratelimit-reset-default": "60" })).toEqual({
      kind: "rate_limited",
      status: 429,
      resetMs: 60_000,
    });
    expect(rateLimitResetMs({ "X-RateLimit-Reset-Default": "7" }, NOW)).toBe(7_000);
  });
  it.each([
    ["missing", {}],
    ["garbage", { "x-ratelimit-reset-default": "soon" }],
    ["negative", { "x-ratelimit-reset-default": "-5" }],
    ["empty", { "x-ratelimit-reset-default": "" }],
  ])("%s header → the 60 s default", (_n, headers) => {
    expect(classify("managed.refresh", 429, body, headers)).toMatchObject({ kind: "rate_limited", resetMs: DEFAULT_RATE_LIMIT_RESET_MS });
  });
  it("never below 1 s, never above 1 h", () => {
    expect(rateLimitResetMs({ "x-ratelimit-reset-default": "0" }, NOW)).toBe(DEFAULT_RATE_LIMIT_RESET_MS);
    expect(rateLimitResetMs({ "x-ratelimit-reset-default": "0.2" }, NOW)).toBe(1_000);
    expect(rateLimitResetMs({ "x-ratelimit-reset-default": "999999" }, NOW)).toBe(3_600_000);
  });
  it("a Unix-timestamp value (third-party docs claim) is converted to relative", () => {
    expect(rateLimitResetMs({ "x-ratelimit-reset-default": String(NOW / 1000 + 30) }, NOW)).toBe(30_000);
  });
  it("without Default, the longest named limit wins", () => {
    expect(rateLimitResetMs({ "x-ratelimit-reset-short": "5", "x-ratelimit-reset-long": "40" }, NOW)).toBe(40_000);
  });
});
