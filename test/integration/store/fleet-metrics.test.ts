/**
 * What an operator sees on /metrics when the fleet is in trouble: the configuration breaker open,
 * held pairs waiting in Redis or quarantined, refreshes whose expiry Cal.com did not send usably.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { ulid } from "ulid";
import { readFleetState } from "../../../src/fleet/fleet-state.js";
import { createMetrics } from "../../../src/metrics/metrics.js";
import { heldPairKeys } from "../../../src/store/held-pair-keys.js";
import { readTokenStats } from "../../../src/store/token-stats.js";
import { startHarness, type Harness } from "../../support/harness.js";

const redis = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}fm${randomBytes(3).toString("hex")}`;
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ownDatabase: true });
});
afterAll(async () => {
  await h.close();
  redis.disconnect();
});

it("reports suspended calls, held and quarantined pairs, and adjusted expiries; no user id in the page", async () => {
  const now = new Date();
  const render = () =>
    createMetrics({
      defaultMetrics: false,
      tokenStats: () => readTokenStats(h.db, new Date()),
      fleetState: () => readFleetState(redis, prefix, new Date()),
    }).render();
  const quiet = await render();
  expect(quiet).toContain("cal_token_calls_suspended 0");
  expect(quiet).toContain("cal_token_held_pairs 0");
  expect(quiet).toContain("cal_token_held_pairs_quarantined 0");
  expect(quiet).toContain('cal_token_expiry_adjusted_recent{how="assumed"} 0');

  const keys = heldPairKeys(prefix);
  const u = await h.seedManaged();
  await redis.hset(`${prefix}:fleet:config-breaker`, "openedAt", now.getTime(), "reason", "Cal.com 401", "probeAt", now.getTime());
  await redis.zadd(keys.index, now.getTime(), u.userUlid, now.getTime(), ulid());
  await redis.zadd(keys.quarantineIndex, now.getTime(), keys.quarantine(u.userUlid, now.getTime()));
  await h.db.calTokenAudit.createMany({
    data: [
      { userUlid: u.userUlid, outcome: "REFRESHED", trigger: "worker", errorCode: "calcom.expiry_assumed" },
      { userUlid: u.userUlid, outcome: "REFRESHED", trigger: "worker", errorCode: "calcom.expiry_converted" },
      { userUlid: u.userUlid, outcome: "REFRESHED", trigger: "worker", errorCode: "calcom.expiry_converted" },
    ],
  });
  const loud = await render();
  expect(loud).toContain("cal_token_calls_suspended 1");
  expect(loud).toContain("cal_token_held_pairs 2");
  expect(loud).toContain("cal_token_held_pairs_quarantined 1");
  expect(loud).toContain('cal_token_expiry_adjusted_recent{how="assumed"} 1');
  expect(loud).toContain('cal_token_expiry_adjusted_recent{how="converted"} 2');
  expect(loud).not.toContain(u.userUlid);
  await redis.del(`${prefix}:fleet:config-breaker`, keys.index, keys.quarantineIndex);
});
