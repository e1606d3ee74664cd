import type { TokenRecord } from "../../../src/core/ports.js";
import type { RefreshTrigger } from "../../../src/core/types.js";
import type { BreakerTiming } from "../../../src/fleet/config-breaker.js";
import type { RefreshOutcome } from "../../../src/refresh/types.js";
import { createInMemoryCallBudget, createInMemoryConfigBreaker } from "../../fakes/in-memory-fleet.js";
import type { SeedRecord } from "../../fakes/in-memory-token-store.js";
import { at, type Harness, harness, T0, USER, USER_2 } from "./harness.js";

// The refresher harness with both fleet gates (gates.test.ts, budget.test.ts), on the in-memory doubles
// of the Redis implementations (test/fakes/in-memory-fleet.ts, pinned to Redis by
// test/integration/fleet/fleet-contract.test.ts).

export const TIMING: BreakerTiming = { probeDelayMs: 15_000, maxProbeDelayMs: 600_000, probeLeaseMs: 30_000 };
export const REASON = "Cal.com 401: scripted client credential error";
export const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };
export const nothingHappened = { calls: [], audits: [], alerts: [], events: [] };

/** A harness whose refresher has both gates; the budget reads the harness's clock (its "Redis TIME"). */
export function gated(budget: { ratePerMinute?: number; reserve?: number } = {}) {
  const breaker = createInMemoryConfigBreaker({ timing: TIMING });
  let h: Harness | undefined;
  const calls = createInMemoryCallBudget({
    ratePerMinute: budget.ratePerMinute ?? 100,
    ...(budget.reserve === undefined ? {} : { reserve: budget.reserve }),
    clock: () => (h ? h.clock() : T0),
  });
  h = harness({ breaker, budget: calls });
  return { h, breaker, budget: calls };
}

/** A second user like the first (seeded if need be), with its own tokens. */
export function seedUser2(h: Harness, over: Partial<SeedRecord> = {}): TokenRecord {
  const { userUlid: _u, ...user1 } = h.store.peek(USER) ?? h.seed();
  return h.store.seed({ ...user1, userUlid: USER_2, accessToken: "at_user2", refreshToken: "rt_user2", ...over });
}

export const refreshUser2 = (h: Harness, trigger: RefreshTrigger = "worker") => h.refresher.refresh({ userUlid: USER_2, trigger });
export const message = (o: RefreshOutcome) => (o.ok ? "" : o.error.message);
