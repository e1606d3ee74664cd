/**
 * Held-pair records in Redis that someone who can write Redis tampered with, planted or replayed,
 * flushed by the real refresher against real Postgres: every bad record is quarantined or dropped,
 * never applied, and never stops the valid record in the same batch
 * (docs/architecture.md#invariant-2-persist-first).
 */
import { Redis } from "ioredis";
import { ulid } from "ulid";
import { loadConfig } from "../../../src/config/config.js";
import type { HeldPairStore } from "../../../src/core/ports.js";
import { heldPairKeys } from "../../../src/store/held-pair-keys.js";
import { encodeHeldPair } from "../../../src/store/held-pair-record.js";
import { countQuarantinedHeldPairs, createRedisHeldPairStore } from "../../../src/store/held-pair-store.js";
import { createTokenCipher, type TokenCipher } from "../../../src/store/token-cipher.js";
import { createTokenStore } from "../../../src/store/token-store.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { heldPairFor } from "../../support/held-pair-fixture.js";
import { testLogger } from "../../support/log-sink.js";

let h: Harness;
let redis: Redis;
let cipher: TokenCipher;
let store: HeldPairStore;
let keys: ReturnType<typeof heldPairKeys>;
let prefix: string;
const log = testLogger();

beforeAll(async () => {
  h = await startHarness();
  const config = loadConfig(h.env());
  prefix = config.queuePrefix;
  keys = heldPairKeys(prefix);
  cipher = createTokenCipher(config.encryptionKeys);
  redis = new Redis(config.redisUrl);
  store = createRedisHeldPairStore({ redis, prefix, cipher, logger: log.logger });
});
afterAll(async () => {
  await h.close();
  redis.disconnect();
});

const heldFor = heldPairFor;

/** What anyone who can write Redis can do: set a user's record key and index it (first in line). */
async function plant(userUlid: string, raw: string): Promise<void> {
  await redis.set(keys.record(userUlid), raw, "EX", 3600);
  await redis.zadd(keys.index, 1, userUlid);
}

const row = (userUlid: string) => h.db.calToken.findUniqueOrThrow({ where: { userUlid } });
const flush = () => h.client.refresher.heldPairs.flushShared(100);

it("tampered, garbage, foreign and implausible records are quarantined, a replayed one is dropped, and the valid one is written", async () => {
  const tokens = createTokenStore({ prisma: h.db, cipher });
  const [valid, tampered, garbage, foreign, parked, replayed, unindexed] = await Promise.all(
    Array.from({ length: 7 }, () => h.seedManaged()),
  );

  // Replay: an authentic record, flushed once; an attacker who kept a copy writes it back later.
  const original = await store.put(heldFor(replayed!.userUlid));
  expect(await flush()).toBe(1);
  const afterFirst = await row(replayed!.userUlid);
  expect(afterFirst.version).toBe(2);
  await plant(replayed!.userUlid, original.raw!);

  const t = (await store.put(heldFor(tampered!.userUlid))).raw!.split(".");
  const ct = Buffer.from(t[4]!, "base64url");
  ct[ct.length - 1] = ct[ct.length - 1]! ^ 0x01;
  await plant(tampered!.userUlid, [...t.slice(0, 4), ct.toString("base64url"), t[5]].join("."));
  await plant(garbage!.userUlid, `{"v":1,"expectedVersion":1,"nextRefreshAt":4102444800000}`);
  await plant(foreign!.userUlid, encodeHeldPair(cipher, heldFor(ulid())));
  const plain = cipher.decrypt(encodeHeldPair(cipher, heldFor(parked!.userUlid)), parked!.userUlid, "held_pair");
  await plant(parked!.userUlid, cipher.encrypt(plain.replace(/"nra":\d+/, '"nra":4102444800000'), parked!.userUlid, "held_pair"));
  // Authentic and valid, but not in the index: listing does not find it (only a get for that user would).
  await store.put(heldFor(unindexed!.userUlid));
  await redis.zrem(keys.index, unindexed!.userUlid);
  const good = heldFor(valid!.userUlid);
  await store.put(good);

  expect(await flush()).toBe(1);

  // The valid record is written (audited RECOVERED) and gone from Redis.
  expect(await row(valid!.userUlid)).toMatchObject({ version: 2, status: "ACTIVE" });
  expect(await tokens.get(valid!.userUlid)).toMatchObject({ accessToken: good.pair.accessToken, refreshToken: good.pair.refreshToken });
  const audits = await h.db.calTokenAudit.findMany({ where: { userUlid: valid!.userUlid } });
  expect(audits.map((a) => a.outcome)).toContain("RECOVERED");
  expect(await redis.exists(keys.record(valid!.userUlid))).toBe(0);

  // The replayed record lost the compare-and-swap: dropped, the row exactly as the first flush left it.
  expect(await row(replayed!.userUlid)).toEqual(afterFirst);
  expect(await redis.exists(keys.record(replayed!.userUlid))).toBe(0);

  // The bad ones: rows untouched, records moved aside and counted, none left in the index.
  for (const u of [tampered, garbage, foreign, parked]) {
    expect(await row(u!.userUlid)).toMatchObject({ version: 1 });
    expect(await tokens.get(u!.userUlid)).toMatchObject({ accessToken: u!.accessToken, refreshToken: u!.refreshToken });
    expect(await redis.exists(keys.record(u!.userUlid))).toBe(0);
  }
  expect((await row(parked!.userUlid)).nextRefreshAt?.getUTCFullYear()).toBeLessThan(2099);
  const quarantined = await redis.zrange(keys.quarantineIndex, "0", "-1");
  expect(quarantined.map((k) => k.split(":").at(-2)).sort()).toEqual([tampered, garbage, foreign, parked].map((u) => u!.userUlid).sort());
  expect(await countQuarantinedHeldPairs(redis, prefix, new Date())).toBe(4);
  expect(await redis.zrange(keys.index, "0", "-1")).toEqual([]);

  // Not indexed, not listed: still there, row untouched.
  expect(await row(unindexed!.userUlid)).toMatchObject({ version: 1 });
  expect(await redis.exists(keys.record(unindexed!.userUlid))).toBe(1);

  // A later sweep finds nothing more to do.
  expect(await flush()).toBe(0);
  expect(await countQuarantinedHeldPairs(redis, prefix, new Date())).toBe(4);
});
