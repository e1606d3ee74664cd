import type { CalRefreshResult, ExpiryNote } from "../../src/core/calcom-result.js";
import { ASSUMED_ACCESS_TOKEN_TTL_MS, classifyResponse, MAX_TOKEN_BYTES, type TokenEndpoint } from "../../src/calcom/index.js";

const NOW = 1_750_000_000_000;
const AT_EXP = NOW + 3_600_000;
const RT_EXP = NOW + 365 * 86_400_000;
const ASSUMED = NOW + ASSUMED_ACCESS_TOKEN_TTL_MS;
const json = (v: unknown): string => JSON.stringify(v);
const managed = (data: Record<string, unknown>): string => json({ status: "success", data });
const full = { accessToken: "at-1", refreshToken: "rt-1", accessTokenExpiresAt: AT_EXP, refreshTokenExpiresAt: RT_EXP };
const rfcBody = { access_token: "at-1", refresh_token: "rt-1", expires_in: 1800, token_type: "bearer" };
const HTML = "<html><body>OK</body></html>";

function refreshed(body: string, endpoint: TokenEndpoint = "managed.refresh", status = 200) {
  const r = classifyResponse(endpoint, status, {}, body, NOW);
  if (r.kind !== "refreshed") throw new Error(`expected refreshed, got ${JSON.stringify(r)}`);
  return { ...r, at: r.pair.accessTokenExpiresAt.getTime(), rt: r.pair.refreshTokenExpiresAt?.getTime() ?? null };
}

function malformed(body: string, endpoint: TokenEndpoint = "managed.refresh"): Extract<CalRefreshResult, { kind: "malformed" }> {
  const r = classifyResponse(endpoint, 200, {}, body, NOW);
  expect(r).toMatchObject({ kind: "malformed", status: 200, mayHaveRotated: true });
  const text = JSON.stringify(r);
  for (const secret of ["at-1", "rt-1", "x".repeat(40)]) expect(text).not.toContain(secret);
  return r as Extract<CalRefreshResult, { kind: "malformed" }>;
}

describe("a 2xx that carries both tokens is a pair, whatever its wrapper and key style", () => {
  const snake = { access_token: "at-1", refresh_token: "rt-1", access_token_expires_at: AT_EXP, refresh_token_expires_at: RT_EXP };
  it.each([
    ["managed, documented", managed(full), "managed.refresh"],
    ["managed, no wrapper", json(full), "managed.refresh"],
    ["managed, wrapper without status", json({ data: full }), "managed.forceRefresh"],
    ["managed, snake_case in the wrapper", managed(snake), "managed.refresh"],
    ["managed, snake_case, no wrapper", json(snake), "managed.forceRefresh"],
    ["managed body on the OAuth2 endpoint", managed(full), "oauth2.token"],
  ] as const)("%s", (_name, body, endpoint) => {
    const r = refreshed(body, endpoint);
    expect(r.pair).toEqual({
      accessToken: "at-1",
      refreshToken: "rt-1",
      accessTokenExpiresAt: new Date(AT_EXP),
      refreshTokenExpiresAt: new Date(RT_EXP),
    });
    expect(r.expiry?.source).toBe("epoch_ms");
  });
  it.each([
    ["raw RFC 6749", json(rfcBody)],
    ["older wrapper, snake_case", json({ status: "success", data: rfcBody })],
    ["older wrapper, camelCase", json({ status: "success", data: { accessToken: "at-1", refreshToken: "rt-1", expiresIn: 1800 } })],
  ])("OAuth2 %s → expiry = request time + expires_in, refresh expiry null", (_name, body) => {
    const r = refreshed(body, "oauth2.token");
    expect(r.pair).toMatchObject({ accessToken: "at-1", refreshToken: "rt-1", refreshTokenExpiresAt: null });
    expect(r.at).toBe(NOW + 1_800_000);
    expect(r.expiry).toEqual({ source: "expires_in", field: expect.stringMatching(/^expires_?[iI]n$/) });
  });
  it("201 is a 2xx too", () => {
    expect(refreshed(managed(full), "managed.forceRefresh", 201).at).toBe(AT_EXP);
  });
});

describe("access-token expiry: normalised, or a conservative assumption with a note", () => {
  const withExp = (v: unknown): string => managed({ ...full, accessTokenExpiresAt: v });
  const seconds = Math.floor(AT_EXP / 1000);
  it.each<[string, string, number, ExpiryNote]>([
    ["epoch ms", withExp(AT_EXP), AT_EXP, { source: "epoch_ms", field: "accessTokenExpiresAt" }],
    ["epoch seconds", withExp(seconds), seconds * 1000, { source: "epoch_seconds", field: "accessTokenExpiresAt" }],
    ["numeric string, ms", withExp(String(AT_EXP)), AT_EXP, { source: "numeric_string", field: "accessTokenExpiresAt" }],
    ["numeric string, s", withExp(` ${seconds} `), seconds * 1000, { source: "numeric_string", field: "accessTokenExpiresAt" }],
    ["ISO with Z", withExp(new Date(AT_EXP).toISOString()), AT_EXP, { source: "iso8601", field: "accessTokenExpiresAt" }],
    [
      "ISO with +02:00",
      withExp("2025-06-15T17:46:40+02:00"),
      Date.UTC(2025, 5, 15, 15, 46, 40),
      { source: "iso8601", field: "accessTokenExpiresAt" },
    ],
    [
      "ISO with +0200",
      withExp("2025-06-15T17:46:40.000+0200"),
      Date.UTC(2025, 5, 15, 15, 46, 40),
      { source: "iso8601", field: "accessTokenExpiresAt" },
    ],
    ["expires_in as a string", json({ ...rfcBody, expires_in: "1800" }), NOW + 1_800_000, { source: "expires_in", field: "expires_in" }],
    [
      "absolute expires_at in seconds",
      json({ ...rfcBody, expires_in: undefined, expires_at: seconds }),
      seconds * 1000,
      { source: "epoch_seconds", field: "expires_at" },
    ],
    [
      "absolute expiresAt as ISO",
      json({ ...rfcBody, expires_in: undefined, expiresAt: new Date(AT_EXP).toISOString() }),
      AT_EXP,
      { source: "iso8601", field: "expiresAt" },
    ],
    ["exactly 24 h ahead", withExp(NOW + 86_400_000), NOW + 86_400_000, { source: "epoch_ms", field: "accessTokenExpiresAt" }],
    [
      "an unusable absolute field falls back to a usable expires_in",
      json({ ...rfcBody, expires_at: "soon" }),
      NOW + 1_800_000,
      { source: "expires_in", field: "expires_in" },
    ],
  ])("%s", (_name, body, at, note) => {
    const r = refreshed(body);
    expect(r.at).toBe(at);
    expect(r.expiry).toEqual(note);
  });

  it.each<[string, string, ExpiryNote]>([
    ["managed, missing", managed({ ...full, accessTokenExpiresAt: undefined }), { source: "assumed", assumed: "missing", field: null }],
    ["managed, null", withExp(null), { source: "assumed", assumed: "missing", field: null }],
    ["OAuth2, no expires_in", json({ ...rfcBody, expires_in: undefined }), { source: "assumed", assumed: "missing", field: null }],
    [
      "ISO without an offset (host time zone)",
      withExp("2025-06-15T17:46:40"),
      { source: "assumed", assumed: "unparsable", field: "accessTokenExpiresAt" },
    ],
    ["a date only", withExp("2025-06-15"), { source: "assumed", assumed: "unparsable", field: "accessTokenExpiresAt" }],
    ["words", withExp("in an hour"), { source: "assumed", assumed: "unparsable", field: "accessTokenExpiresAt" }],
    ["a boolean", withExp(true), { source: "assumed", assumed: "unparsable", field: "accessTokenExpiresAt" }],
    ["an object", withExp({ ms: AT_EXP }), { source: "assumed", assumed: "unparsable", field: "accessTokenExpiresAt" }],
    [
      "expires_in words",
      json({ ...rfcBody, expires_in: "half an hour" }),
      { source: "assumed", assumed: "unparsable", field: "expires_in" },
    ],
    ["in the past", withExp(NOW - 1), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["exactly now", withExp(NOW), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    [
      "3600 (relative seconds in an absolute field)",
      withExp(3600),
      { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" },
    ],
    ["zero", withExp(0), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["more than 24 h ahead", withExp(NOW + 86_400_001), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["microseconds", withExp(AT_EXP * 1000), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["ISO in the past", withExp("2001-01-01T00:00:00Z"), { source: "assumed", assumed: "absurd", field: "accessTokenExpiresAt" }],
    ["expires_in 0", json({ ...rfcBody, expires_in: 0 }), { source: "assumed", assumed: "absurd", field: "expires_in" }],
    ["expires_in negative", json({ ...rfcBody, expires_in: -60 }), { source: "assumed", assumed: "absurd", field: "expires_in" }],
    ["expires_in ten years", json({ ...rfcBody, expires_in: 315_360_000 }), { source: "assumed", assumed: "absurd", field: "expires_in" }],
  ])("%s → refreshed, expiry now + 10 min, noted", (_name, body, note) => {
    const r = refreshed(body);
    expect(r.pair.refreshToken).toBe("rt-1");
    expect(r.at).toBe(ASSUMED);
    expect(r.expiry).toEqual(note);
  });
  it("the assumption is ten minutes", () => {
    expect(ASSUMED_ACCESS_TOKEN_TTL_MS).toBe(600_000);
  });
});

describe("refresh-token expiry: same forms, null when unknown", () => {
  const withRt = (v: unknown): string => managed({ ...full, refreshTokenExpiresAt: v });
  it.each([
    ["epoch ms", RT_EXP, RT_EXP],
    ["epoch seconds", RT_EXP / 1000, RT_EXP],
    ["numeric string", String(RT_EXP), RT_EXP],
    ["ISO", new Date(RT_EXP).toISOString(), RT_EXP],
    ["missing (older builds)", undefined, null],
    ["null", null, null],
    ["unreadable", "next year", null],
    ["without offset", "2026-06-15T00:00:00", null],
    ["in the past", NOW - 1, null],
    ["absurdly far", NOW + 20 * 366 * 86_400_000, null],
  ])("%s", (_name, value, expected) => {
    const r = refreshed(withRt(value));
    expect(r.rt).toBe(expected);
    expect(r.at).toBe(AT_EXP);
  });
  it("snake_case and relative forms", () => {
    expect(refreshed(json({ ...rfcBody, refresh_token_expires_in: 2_592_000 }), "oauth2.token").rt).toBe(NOW + 2_592_000_000);
    expect(refreshed(json({ ...rfcBody, refresh_token_expires_at: new Date(RT_EXP).toISOString() }), "oauth2.token").rt).toBe(RT_EXP);
  });
});

describe("a 2xx without both tokens is malformed (the server committed: mayHaveRotated)", () => {
  it("an access token without a refresh token says why the old one cannot be kept", () => {
    for (const body of [managed({ ...full, refreshToken: undefined }), json({ ...rfcBody, refresh_token: undefined })]) {
      expect(malformed(body).message).toMatch(/access token without a refresh token \(missing\): Cal.com rotates on every refresh/);
    }
  });
  it.each([
    ["bad JSON", '{"status":"success","data":{'],
    ["HTML page", HTML],
    ["empty body", ""],
    ["JSON null", "null"],
    ["an array", json([full])],
    ["no tokens at all", json({ status: "success", data: { ok: true } })],
    ["missing access token", managed({ ...full, accessToken: undefined })],
    ["empty refresh token", managed({ ...full, refreshToken: "" })],
    ["empty access token", managed({ ...full, accessToken: "" })],
    ["numeric refresh token", managed({ ...full, refreshToken: 12345 })],
    ["access token over 16 KiB", managed({ ...full, accessToken: "x".repeat(MAX_TOKEN_BYTES + 1) })],
    ["refresh token over 16 KiB (in bytes)", managed({ ...full, refreshToken: "é".repeat(MAX_TOKEN_BYTES / 2 + 1) })],
  ])("%s", (_name, body) => {
    malformed(body);
  });
  it("a token of exactly 16 KiB is kept", () => {
    expect(refreshed(managed({ ...full, accessToken: "x".repeat(MAX_TOKEN_BYTES) })).pair.accessToken).toHaveLength(MAX_TOKEN_BYTES);
  });
});
