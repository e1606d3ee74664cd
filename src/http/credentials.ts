import { createHash, timingSafeEqual } from "node:crypto";

export interface BoardCredentials {
  username: string;
  password: string;
}

/** Who may read /metrics: the board's basic-auth pair and/or a bearer token (METRICS_BEARER_TOKEN). */
export interface MetricsCredentials {
  basic: BoardCredentials | null;
  bearerToken: string | null;
}

/** Constant-time: both fields are always compared, on fixed-length digests (no length or prefix leak). */
export function credentialsMatch(expected: BoardCredentials, username: string, password: string): boolean {
  const userOk = secretMatches(expected.username, username);
  const passOk = secretMatches(expected.password, password);
  return userOk && passOk;
}

/** Constant-time comparison of a presented secret with the expected one, on SHA-256 digests. */
export function secretMatches(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/**
 * Checks an Authorization header against the configured metrics credentials: `Bearer <token>` when a
 * token is configured, `Basic <base64 user:pass>` when the board's pair is. Anything else is refused.
 */
export function metricsAuthorized(header: string | undefined, expected: MetricsCredentials): boolean {
  if (!header) return false;
  const space = header.indexOf(" ");
  if (space < 0) return false;
  const scheme = header.slice(0, space).toLowerCase();
  const value = header.slice(space + 1).trim();
  if (scheme === "bearer" && expected.bearerToken !== null) return secretMatches(expected.bearerToken, value);
  if (scheme === "basic" && expected.basic !== null) {
    const decoded = Buffer.from(value, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon < 0) return false;
    return credentialsMatch(expected.basic, decoded.slice(0, colon), decoded.slice(colon + 1));
  }
  return false;
}

/** The challenges a 401 from /metrics offers: one per configured scheme. */
export function metricsChallenges(expected: MetricsCredentials, realm: string): string[] {
  const challenges: string[] = [];
  if (expected.basic) challenges.push(`Basic realm="${realm}", charset="UTF-8"`);
  if (expected.bearerToken) challenges.push(`Bearer realm="${realm}"`);
  return challenges;
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}
