import { ulid } from "ulid";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { FakeCalcom } from "../fakes/calcom/index.js";

export interface SeededUser {
  userUlid: string;
  calUserId: number;
  accessToken: string;
  refreshToken: string;
}

/**
 * Creates a managed user at the fake Cal.com and stores its pair through the public API, the way the
 * web app's connect flow does (tests, the demo and the benchmarks all seed this way).
 */
export async function seedManagedUser(
  client: CalTokenClient,
  fake: FakeCalcom,
  opts: { ttlMs?: number; withCalUserId?: boolean } = {},
): Promise<SeededUser> {
  const u = fake.createManagedUser(opts.ttlMs === undefined ? {} : { accessTokenTtlMs: opts.ttlMs });
  const userUlid = ulid();
  await client.saveCalTokens({
    userUlid,
    accessToken: u.accessToken,
    refreshToken: u.refreshToken,
    accessTokenExpiresAt: u.accessTokenExpiresAt,
    refreshTokenExpiresAt: u.refreshTokenExpiresAt,
    kind: "managed",
    ...(opts.withCalUserId === false ? {} : { calUserId: u.calUserId }),
  });
  return { userUlid, calUserId: u.calUserId, accessToken: u.accessToken, refreshToken: u.refreshToken };
}
