import { randomBytes } from "node:crypto";
import { ulid } from "ulid";
import type { HeldPair } from "../../src/core/ports.js";

/** A plausible held pair (just refreshed, version 1) with fresh made-up tokens; `over` wins. */
export function heldPairFor(userUlid: string = ulid(), over: Partial<HeldPair> = {}): HeldPair {
  const now = Date.now();
  return {
    userUlid,
    expectedVersion: 1,
    heldSince: new Date(now - 1_000),
    nextRefreshAt: new Date(now + 20 * 60_000),
    trigger: "worker",
    pair: {
      accessToken: `cal_at_held_${randomBytes(8).toString("hex")}`,
      refreshToken: `cal_rt_held_${randomBytes(8).toString("hex")}`,
      accessTokenExpiresAt: new Date(now + 30 * 60_000),
      refreshTokenExpiresAt: null,
    },
    ...over,
  };
}
