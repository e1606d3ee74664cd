import { classifyAccessTokenRejection } from "../../src/core/api-response.js";
import { backoffDelayMs, computeNextRefreshAt, decideOnDemand, isStillValid } from "../../src/core/policy.js";

const now = new Date("2026-11-25T12:00:00.000Z");
const at = (ms: number) => new Date(now.getTime() + ms);

describe("decideOnDemand", () => {
  it.each([
    [{ accessTokenExpiresAt: at(10 * 60_000), status: "ACTIVE" as const }, false, { should: false, reason: "fresh" }],
    [{ accessTokenExpiresAt: at(60_000), status: "ACTIVE" as const }, false, { should: true, reason: "expiring" }],
    [{ accessTokenExpiresAt: at(-1), status: "ACTIVE" as const }, false, { should: true, reason: "expired" }],
    [{ accessTokenExpiresAt: at(10 * 60_000), status: "ACTIVE" as const }, true, { should: true, reason: "forced" }],
    [{ accessTokenExpiresAt: at(-1), status: "RECONNECT_REQUIRED" as const }, true, { should: false, reason: "reconnect_required" }],
  ])("%o force=%p → %o", (token, force, expected) => {
    expect(decideOnDemand(token, now, 120_000, force)).toStrictEqual(expected);
  });
});

describe("computeNextRefreshAt", () => {
  it("schedules lead + jitter before expiry for hour-long tokens", () => {
    const exp = at(60 * 60_000);
    expect(computeNextRefreshAt(exp, now, 600_000, 300_000, () => 0).getTime()).toBe(exp.getTime() - 600_000);
    expect(computeNextRefreshAt(exp, now, 600_000, 300_000, () => 0.5).getTime()).toBe(exp.getTime() - 750_000);
  });
  it("spreads a cohort saved at the same instant", () => {
    const exp = at(60 * 60_000);
    const times = new Set([0.1, 0.3, 0.6, 0.9].map((r) => computeNextRefreshAt(exp, now, 600_000, 300_000, () => r).getTime()));
    expect(times.size).toBe(4);
  });
  it("caps the offset for short-lived tokens so they are not due on arrival", () => {
    const exp = at(60_000);
    const next = computeNextRefreshAt(exp, now, 600_000, 300_000, () => 0);
    expect(next.getTime()).toBe(exp.getTime() - 18_000);
  });
  it("is never in the past", () => {
    expect(computeNextRefreshAt(at(-5_000), now, 600_000, 0, () => 0).getTime()).toBe(now.getTime());
  });
});

describe("backoffDelayMs", () => {
  it("grows exponentially, is capped and jittered within [50%, 100%]", () => {
    expect(backoffDelayMs(0, () => 0)).toBe(2_500);
    expect(backoffDelayMs(0, () => 1)).toBe(5_000);
    expect(backoffDelayMs(3, () => 1)).toBe(40_000);
    expect(backoffDelayMs(30, () => 1)).toBe(300_000);
  });
});

describe("isStillValid", () => {
  it("keeps a margin", () => {
    expect(isStillValid(at(10_000), now)).toBe(true);
    expect(isStillValid(at(4_000), now)).toBe(false);
  });
});

describe("classifyAccessTokenRejection", () => {
  it.each([
    [498, '{"error":{"code":"TokenExpiredException","message":"ACCESS_TOKEN_IS_EXPIRED"}}', "expired"],
    [401, '{"error":{"code":"UnauthorizedException","message":"Invalid Access Token."}}', "invalid"],
    [401, "ApiAuthStrategy - access token - OAuth client not found given the access token", "invalid"],
    [401, '{"error":{"message":"ApiAuthStrategy - oAuth client - Invalid client secret"}}', null],
    [403, "Invalid Access Token.", null],
    [200, "", null],
  ])("%p %s → %p", (status, body, expected) => {
    expect(classifyAccessTokenRejection(status, body)).toBe(expected);
  });
});
