/**
 * rotate-key's Redis side against real Redis: held-pair records are re-encrypted under the active key
 * (expiry kept), a record that changed since it was read is left alone, and records no configured
 * key opens are reported and not touched.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { ulid } from "ulid";
import { heldPairKeys, REPLACE_IF_SAME } from "../../../src/store/held-pair-keys.js";
import { reencryptHeldPairs } from "../../../src/store/held-pair-rotation.js";
import { createRedisHeldPairStore } from "../../../src/store/held-pair-store.js";
import { createTokenCipher, type TokenCipher } from "../../../src/store/token-cipher.js";
import { heldPairFor } from "../../support/held-pair-fixture.js";
import { testLogger } from "../../support/log-sink.js";
import { deleteRedisKeys } from "../../support/redis-keys.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const redis = new Redis(REDIS_URL);
const KEY_A = { id: "A", key: randomBytes(32) };
const KEY_B = { id: "B", key: randomBytes(32) };
const prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}hr${randomBytes(3).toString("hex")}`;
const keys = heldPairKeys(prefix);
const storeWith = (cipher: TokenCipher) => createRedisHeldPairStore({ redis, prefix, cipher, logger: testLogger().logger });

afterAll(async () => {
  await deleteRedisKeys(REDIS_URL, prefix);
  redis.disconnect();
});

it("re-encrypts records under the active key, keeps their expiry, and reports what no key opens", async () => {
  const onA = storeWith(createTokenCipher([KEY_A]));
  const a = await onA.put(heldPairFor());
  const b = await onA.put(heldPairFor());
  const bad = ulid();
  await redis.set(keys.record(bad), "garbage");
  await redis.zadd(keys.index, Date.now(), bad);
  await redis.expire(keys.record(a.userUlid), 1000);

  const during = createTokenCipher([KEY_B, KEY_A]);
  expect(await reencryptHeldPairs({ redis, prefix, cipher: during })).toEqual({ reencrypted: 2, changed: [], failed: [bad], remaining: 1 });
  const onB = storeWith(createTokenCipher([KEY_B]));
  for (const h of [a, b]) {
    const got = await onB.get(h.userUlid);
    expect(got?.raw?.startsWith("v2.B.")).toBe(true);
    expect(got?.pair).toEqual(h.pair);
  }
  const ttl = await redis.ttl(keys.record(a.userUlid));
  expect(ttl).toBeGreaterThan(900);
  expect(ttl).toBeLessThanOrEqual(1000);
  // A second run has nothing to do but report the record no key opens; that record is left as it was.
  expect(await reencryptHeldPairs({ redis, prefix, cipher: during })).toEqual({ reencrypted: 0, changed: [], failed: [bad], remaining: 1 });
  expect(await redis.get(keys.record(bad))).toBe("garbage");
});

it("writes back only over the exact record it read", async () => {
  const onA = storeWith(createTokenCipher([KEY_A]));
  const first = await onA.put(heldPairFor());
  const second = await onA.put({ ...first, expectedVersion: 2 });
  expect(await redis.eval(REPLACE_IF_SAME, 1, keys.record(first.userUlid), first.raw!, "v2.B.replacement")).toBe(0);
  expect(await redis.get(keys.record(first.userUlid))).toBe(second.raw);
});
