import type { CalRefreshResult } from "../../src/core/calcom-result.js";
import { classifyManaged, classifyOAuth2, DEFAULT_RATE_LIMIT_RESET_MS, rateLimitResetMs } from "../../src/calcom/index.js";

const NOW = 1_750_000_000_000;
const AT_EXP = 1_750_003_600_000;
const RT_EXP = 1_781_000_000_000;
const json = (v: unknown): string => JSON.stringify(v);
const managedOk = (data: Record<string, unknown>): string => json({ status: "success", data });
const calError = (code: string, message: string): string =>
  json({ status: "error", timestamp: "2025-01-01T00:00:00.000Z", path: "/v2/x", error: { code, message } });
const fullData = { accessToken: "at-1", refreshToken: "rt-1", accessTokenExpiresAt: AT_EXP, refreshTokenExpiresAt: RT_EXP };
const HTML = "<html><head><title>502 Bad Gateway</title></head><body><h1>502</h1></body></html>";

function expectKind<K extends CalRefreshResult["kind"]>(r: CalRefreshResult, kind: K): Extract<CalRefreshResult, { kind: K }> {
  expect(r.kind).toBe(kind);
  return r as Extract<CalRefreshResult, { kind: K }>;
}

describe("classifyManaged: 2xx", () => {
  it("valid body → refreshed with Date expiries", () => {
    const r = expectKind(classifyManaged(200, {}, managedOk(fullData)), "refreshed");
    expect(r.pair).toEqual({
      accessToken: "at-1",
      refreshToken: "rt-1",
      accessTokenExpiresAt: new Date(AT_EXP),
      refreshTokenExpiresAt: new Date(RT_EXP),
    });
  });
  it("missing (or null) refreshTokenExpiresAt → null", () => {
    const { refreshTokenExpiresAt: _drop, ...older } = fullData;
    expect(expectKind(classifyManaged(200, {}, managedOk(older)), "refreshed").pair.refreshTokenExpiresAt).toBeNull();
    const withNull = managedOk({ ...fullData, refreshTokenExpiresAt: null });
    expect(expectKind(classifyManaged(201, {}, withNull), "refreshed").pair.refreshTokenExpiresAt).toBeNull();
  });
  it.each([
    ["bad JSON", '{"status":"success","data":{'],
    ["HTML page", HTML],
    ["empty body", ""],
    ["missing accessToken", managedOk({ ...fullData, accessToken: undefined })],
    ["empty refreshToken", managedOk({ ...fullData, refreshToken: "" })],
    ["ISO accessTokenExpiresAt", managedOk({ ...fullData, accessTokenExpiresAt: new Date(AT_EXP).toISOString() })],
    ["epoch-seconds accessTokenExpiresAt", managedOk({ ...fullData, accessTokenExpiresAt: AT_EXP / 1000 })],
    ["ISO refreshTokenExpiresAt", managedOk({ ...fullData, refreshTokenExpiresAt: new Date(RT_EXP).toISOString() })],
    ["status not success", json({ status: "error", data: fullData })],
    ["no envelope", json(fullData)],
    ["JSON null", "null"],
  ])("%s → malformed, mayHaveRotated (the server committed)", (_name, body) => {
    const r = expectKind(classifyManaged(200, {}, body), "malformed");
    expect(r).toMatchObject({ status: 200, mayHaveRotated: true });
    expect(r.message).not.toContain("rt-1");
    expect(r.message).not.toContain("at-1");
  });
});

describe("classifyManaged: errors", () => {
  it("400 Invalid refresh token → rejected with Cal.com's code and message", () => {
    const r = expectKind(classifyManaged(400, {}, calError("BadRequestException", "Invalid refresh token")), "rejected");
    expect(r).toEqual({
      kind: "rejected",
      status: 400,
      code: "BadRequestException",
      message: "Cal.com 400: BadRequestException: Invalid refresh token",
    });
  });
  it("404 lost race / user not in client → rejected", () => {
    const r = expectKind(classifyManaged(404, {}, calError("NOT_FOUND", "Invalid Query")), "rejected");
    expect(r).toMatchObject({ status: 404, code: "NOT_FOUND" });
  });
  it("400 without Cal.com's JSON error (a proxy, a WAF) is not taken for a dead grant", () => {
    expect(classifyManaged(400, {}, "Bad Request")).toMatchObject({ kind: "config_error", status: 400 });
    expect(classifyManaged(400, {}, "")).toMatchObject({ kind: "config_error", status: 400 });
  });
  it("OAuth2: only invalid_grant rejects the user's token; other RFC errors are about our request", () => {
    const rfc = (error: string) => JSON.stringify({ error, error_description: "x" });
    expect(classifyOAuth2(400, {}, rfc("invalid_grant"), 0)).toMatchObject({ kind: "rejected", code: "invalid_grant" });
    for (const code of ["invalid_request", "unsupported_grant_type", "invalid_client", "unauthorized_client"]) {
      expect(classifyOAuth2(400, {}, rfc(code), 0)).toMatchObject({ kind: "config_error", status: 400 });
    }
  });
  it("404 without Cal.com's JSON error is a misconfigured URL, not a dead grant", () => {
    expect(classifyManaged(404, {}, HTML)).toMatchObject({ kind: "config_error", status: 404 });
    expect(classifyManaged(404, {}, "")).toMatchObject({ kind: "config_error", status: 404 });
    expect(classifyManaged(404, {}, calError("NOT_FOUND", "Invalid Query: The requested record was not found."))).toMatchObject({
      kind: "rejected",
      status: 404,
    });
  });
  it.each([401, 403])("%i → config_error", (status) => {
    const r = classifyManaged(status, {}, calError("UnauthorizedException", "ApiAuthStrategy - oAuth client - Invalid client secret"));
    expect(r).toMatchObject({ kind: "config_error", status });
    expect(expectKind(r, "config_error").message).toContain("Invalid client secret");
  });
  it.each([
    [500, false],
    [503, false],
    [502, true],
    [504, true],
    [524, true],
    [522, false],
  ])("%i → transient server_error, mayHaveRotated %p", (status, mayHaveRotated) => {
    expect(classifyManaged(status, {}, calError("InternalServerErrorException", "boom"))).toMatchObject({
      kind: "transient",
      reason: "server_error",
      status,
      mayHaveRotated,
    });
  });
  it("HTML 502 page is transient (not malformed) with the status", () => {
    const r = expectKind(classifyManaged(502, { "content-type": "text/html" }, HTML), "transient");
    expect(r).toMatchObject({ reason: "server_error", status: 502, mayHaveRotated: true, message: "Cal.com 502" });
  });
  it("408 → transient timeout that did not reach the handler", () => {
    expect(classifyManaged(408, {}, "")).toMatchObject({ kind: "transient", reason: "timeout", mayHaveRotated: false });
  });
  it.each([301, 302, 405, 409, 415, 422, 498])("%i → malformed, not rotated", (status) => {
    expect(classifyManaged(status, {}, "")).toMatchObject({ kind: "malformed", status, mayHaveRotated: false });
  });
  it("long messages are truncated", () => {
    const r = expectKind(classifyManaged(400, {}, calError("X", "y".repeat(5000))), "rejected");
    expect(r.message.length).toBeLessThanOrEqual(301);
  });
});

describe("429 / rateLimitResetMs", () => {
  const body = calError("ThrottlerException", "CustomThrottlerGuard - Too many requests. Please try again later.");
  it("uses X-RateLimit-Reset-Default as relative seconds", () => {
    expect(classifyManaged(429, { "x-ratelimit-reset-default": "60" }, body)).toEqual({
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
    expect(classifyManaged(429, headers, body)).toMatchObject({ kind: "rate_limited", resetMs: DEFAULT_RATE_LIMIT_RESET_MS });
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
  it("also for the oauth2 endpoint", () => {
    expect(classifyOAuth2(429, { "x-ratelimit-reset-default": "61" }, body, NOW)).toMatchObject({ kind: "rate_limited", resetMs: 61_000 });
  });
});

describe("classifyOAuth2", () => {
  const rfc = { access_token: "oat-1", refresh_token: "ort-1", expires_in: 1800, token_type: "bearer" };
  it("raw RFC body → refreshed, expiry = now + expires_in, refresh expiry null", () => {
    const r = expectKind(classifyOAuth2(200, {}, json(rfc), NOW), "refreshed");
    expect(r.pair).toEqual({
      accessToken: "oat-1",
      refreshToken: "ort-1",
      accessTokenExpiresAt: new Date(NOW + 1_800_000),
      refreshTokenExpiresAt: null,
    });
  });
  it("older wrapped body → refreshed", () => {
    const r = expectKind(classifyOAuth2(200, {}, json({ status: "success", data: rfc }), NOW), "refreshed");
    expect(r.pair.refreshToken).toBe("ort-1");
    expect(r.pair.accessTokenExpiresAt.getTime()).toBe(NOW + 1_800_000);
  });
  it("missing expires_in falls back to Cal.com's documented 1800 s", () => {
    const { expires_in: _e, ...noExp } = rfc;
    expect(expectKind(classifyOAuth2(200, {}, json(noExp), NOW), "refreshed").pair.accessTokenExpiresAt.getTime()).toBe(NOW + 1_800_000);
  });
  it("missing refresh_token → malformed, mayHaveRotated (never keep the old one silently)", () => {
    const { refresh_token: _r, ...noRt } = rfc;
    const r = expectKind(classifyOAuth2(200, {}, json(noRt), NOW), "malformed");
    expect(r).toMatchObject({ status: 200, mayHaveRotated: true });
    expect(r.message).toContain("refresh_token");
    expect(r.message).not.toContain("oat-1");
  });
  it.each([
    ["managed-shaped body", managedOk(fullData)],
    ["string expires_in", json({ ...rfc, expires_in: "1800" })],
    ["negative expires_in", json({ ...rfc, expires_in: -1 })],
    ["HTML", HTML],
  ])("%s → malformed", (_n, body) => {
    expect(classifyOAuth2(200, {}, body, NOW)).toMatchObject({ kind: "malformed", mayHaveRotated: true });
  });
  it("400 invalid_grant → rejected with the RFC error and description", () => {
    const r = classifyOAuth2(400, {}, json({ error: "invalid_grant", error_description: "refresh_token_revoked" }), NOW);
    expect(r).toEqual({
      kind: "rejected",
      status: 400,
      code: "invalid_grant",
      message: "Cal.com 400: invalid_grant: refresh_token_revoked",
    });
  });
  it("401 invalid_grant (non-standard) is still the grant's fault → rejected", () => {
    expect(classifyOAuth2(401, {}, json({ error: "invalid_grant" }), NOW)).toMatchObject({ kind: "rejected", code: "invalid_grant" });
  });
  it("401 invalid_client → config_error; 400 invalid_client too (RFC allows it)", () => {
    const body = json({ error: "invalid_client", error_description: "invalid_client_credentials" });
    expect(classifyOAuth2(401, {}, body, NOW)).toMatchObject({ kind: "config_error", status: 401 });
    expect(classifyOAuth2(400, {}, body, NOW)).toMatchObject({ kind: "config_error", status: 400 });
  });
  it("legacy {message} body is read", () => {
    expect(classifyOAuth2(401, {}, json({ message: "Unauthorized" }), NOW)).toMatchObject({ message: "Cal.com 401: Unauthorized" });
  });
});
