/**
 * The Redis held-pair store against real Redis: the record is one authenticated envelope, bad records
 * are quarantined (kept aside, logged, counted) without stopping the others, listing reads the index
 * (never the keyspace), and remove deletes only the exact record.
 *
 * Real Redis rather than ioredis-mock: with ioredis 6 the mock's ZRANGE throws (reply transformer),
 * its Lua ignores SET … KEEPTTL and returns nothing for tables built by assignment.
 */
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { ulid } from "ulid";
import type { HeldPairStore } from "../../../src/core/ports.js";
import * as scripts from "../../../src/store/held-pair-keys.js";
import { heldPairKeys } from "../../../src/store/held-pair-keys.js";
import { encodeHeldPair } from "../../../src/store/held-pair-record.js";
import { countQuarantinedHeldPairs, createRedisHeldPairStore } from "../../../src/store/held-pair-store.js";
import { createTokenCipher, type TokenCipher } from "../../../src/store/token-cipher.js";
import { testLogger } from "../../support/log-sink.js";
import { heldPairFor } from "../../support/held-pair-fixture.js";
import { deleteRedisKeys } from "../../support/redis-keys.js";
import { encryptV1 } from "../../support/v1-envelope.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const redis = new Redis(REDIS_URL);
const KEY_A = { id: "A", key: randomBytes(32) };
const cipherA = createTokenCipher([KEY_A]);
const DAY_S = 24 * 3600;

let prefix: string;
let keys: ReturnType<typeof heldPairKeys>;
let log: ReturnType<typeof testLogger>;
let calls: string[];
let store: HeldPairStore;

/** The redis client as the store sees it, recording every command method it calls. */
function spied(r: Redis): Redis {
  return new Proxy(r, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== "function") return v;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function makeStore(cipher: TokenCipher = cipherA): HeldPairStore {
  return createRedisHeldPairStore({ redis: spied(redis), prefix, cipher, logger: log.logger });
}

beforeEach(() => {
  prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}hp${randomBytes(3).toString("hex")}`;
  keys = heldPairKeys(prefix);
  log = testLogger();
  calls = [];
  store = makeStore();
});
afterEach(async () => {
  await deleteRedisKeys(REDIS_URL, prefix);
});
afterAll(() => redis.disconnect());

const held = heldPairFor;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const indexed = () => redis.zrange(keys.index, "0", "-1");
const quarantineKeys = () => redis.zrange(keys.quarantineIndex, "0", "-1");

/** Writes `raw` at the user's record key and indexes it, as anyone who can write Redis could. */
async function plant(userUlid: string, raw: string): Promise<void> {
  await redis.set(keys.record(userUlid), raw, "EX", 3600);
  await redis.zadd(keys.index, Date.now(), userUlid);
}

async function expectQuarantined(userUlid: string, raw: string, reason: RegExp): Promise<void> {
  expect(await redis.exists(keys.record(userUlid))).toBe(0);
  expect(await indexed()).not.toContain(userUlid);
  const qkey = (await quarantineKeys()).find((k) => k.startsWith(`${prefix}:recovery-quarantine:${userUlid}:`));
  expect(qkey).toBeDefined();
  expect(await redis.get(qkey!)).toBe(raw); // kept exactly as found, for an operator to look at
  expect(await redis.ttl(qkey!)).toBeGreaterThan(29 * DAY_S);
  const line = log.lines().find((l) => l.userUlid === userUlid && String(l.msg).includes("quarantined"));
  expect(line).toMatchObject({ level: 40, quarantineKey: qkey });
  expect(String(line?.reason)).toMatch(reason);
  expect(JSON.stringify(line)).not.toContain(raw.slice(0, 40));
}

describe("records", () => {
  it("are one envelope under <prefix>:recovery:<ULID>, expiring in 7 days, indexed, readable by any casing of the ULID", async () => {
    const h = held();
    const stored = await store.put({ ...h, userUlid: h.userUlid.toLowerCase() });
    const raw = await redis.get(keys.record(h.userUlid));
    expect(raw).toBe(stored.raw);
    expect(raw).toMatch(/^v2\.A\.[A-Za-z0-9_.-]+$/);
    for (const s of [h.pair.accessToken, h.pair.refreshToken, "expectedVersion", "worker"]) expect(raw).not.toContain(s);
    expect(await redis.ttl(keys.record(h.userUlid))).toBeGreaterThan(7 * DAY_S - 60);
    expect(await indexed()).toEqual([h.userUlid]);
    expect(await store.get(h.userUlid.toLowerCase())).toEqual({ ...h, raw });
  });

  it("remove deletes only the exact record it read, and keeps the index in step", async () => {
    const h = held();
    const first = await store.put(h);
    const second = await store.put({ ...h, expectedVersion: 2 });
    await store.remove(first);
    expect(await store.get(h.userUlid)).toMatchObject({ expectedVersion: 2 });
    expect(await indexed()).toEqual([h.userUlid]);
    await store.remove(second);
    expect(await redis.exists(keys.record(h.userUlid))).toBe(0);
    expect(await indexed()).toEqual([]);
  });
});

describe("listing", () => {
  it("reads the index, oldest first, never the keyspace: a record outside the index is not listed", async () => {
    const a = await store.put(held());
    await sleep(3); // the index orders by put time (ms); equal times fall back to ULID order
    const b = await store.put(held());
    const outside = held();
    await store.put(outside);
    await redis.zrem(keys.index, outside.userUlid);
    calls = [];
    expect((await store.list(10)).map((p) => p.userUlid)).toEqual([a.userUlid, b.userUlid]);
    expect((await store.list(1)).map((p) => p.userUlid)).toEqual([a.userUlid]);
    expect(calls.filter((c) => /scan|keys/i.test(c))).toEqual([]);
    expect(calls).toContain("zrange");
    for (const s of Object.values(scripts)) if (typeof s === "string") expect(s).not.toMatch(/'(SCAN|KEYS)'/i);
    // get() still finds it by key: it is this user's record, just not indexed.
    expect(await store.get(outside.userUlid)).toMatchObject({ userUlid: outside.userUlid });
  });

  it("drops index entries whose record expired, and entries that are not canonical ULIDs", async () => {
    const gone = held();
    await store.put(gone);
    await redis.del(keys.record(gone.userUlid));
    await redis.zadd(keys.index, 1, "not-a-ulid", 2, ulid().toLowerCase());
    const live = await store.put(held());
    expect((await store.list(10)).map((p) => p.userUlid)).toEqual([live.userUlid]);
    expect(await indexed()).toEqual([live.userUlid]);
  });
});

describe("quarantine", () => {
  it("moves aside, logs and counts every record that does not authenticate or make sense; the valid ones are still listed", async () => {
    const tampered = held();
    const raw = (await store.put(tampered)).raw!;
    const parts = raw.split(".");
    const ct = Buffer.from(parts[4]!, "base64url");
    ct[0] = ct[0]! ^ 1;
    const flipped = [...parts.slice(0, 4), ct.toString("base64url"), parts[5]].join(".");
    await redis.set(keys.record(tampered.userUlid), flipped);

    const garbage = ulid();
    await plant(garbage, "not an envelope at all");
    const legacy = ulid(); // the previous release's plain-JSON record: its plain fields were never authenticated
    await plant(legacy, JSON.stringify({ v: 1, expectedVersion: 1, nextRefreshAt: 4102444800000, at: encryptV1(KEY_A, "x", legacy) }));
    const foreign = ulid(); // another user's authentic record copied under this user's key
    const foreignRaw = encodeHeldPair(cipherA, held());
    await plant(foreign, foreignRaw);
    const rowEnvelope = ulid(); // a token envelope taken from a row
    const rowRaw = cipherA.encrypt("cal_rt_from_row", rowEnvelope, "refresh_token");
    await plant(rowEnvelope, rowRaw);
    const parked = ulid(); // authentic, but would park the user's refresh until 2099
    const plain = cipherA.decrypt(encodeHeldPair(cipherA, held(parked)), parked, "held_pair");
    const parkedRaw = cipherA.encrypt(plain.replace(/"nra":\d+/, '"nra":4070908800000'), parked, "held_pair");
    await plant(parked, parkedRaw);
    const valid = await store.put(held());

    expect((await store.list(100)).map((p) => p.userUlid)).toEqual(expect.arrayContaining([valid.userUlid]));
    expect((await store.list(100)).map((p) => p.userUlid)).not.toEqual(expect.arrayContaining([tampered.userUlid]));
    await expectQuarantined(tampered.userUlid, flipped, /authentication failed/);
    await expectQuarantined(garbage, "not an envelope at all", /not an envelope/);
    await expectQuarantined(foreign, foreignRaw, /authentication failed/);
    await expectQuarantined(rowEnvelope, rowRaw, /authentication failed/);
    await expectQuarantined(parked, parkedRaw, /implausible: nextRefreshAt/);
    expect(log.lines().some((l) => l.userUlid === legacy && String(l.msg).includes("quarantined"))).toBe(true);
    expect(await countQuarantinedHeldPairs(redis, prefix, new Date())).toBe(6);
    expect(await indexed()).toEqual(expect.arrayContaining([valid.userUlid]));
  });

  it("never moves a record that changed since it was read (a valid record written meanwhile stays)", async () => {
    const h = held();
    await plant(h.userUlid, "garbage");
    const fresh = await store.put(h);
    const moved = await redis.eval(
      scripts.QUARANTINE,
      4,
      keys.record(h.userUlid),
      keys.index,
      keys.quarantine(h.userUlid, 1),
      keys.quarantineIndex,
      "garbage",
      h.userUlid,
      "60",
      String(Date.now()),
    );
    expect(moved).toBe(0);
    expect(await store.get(h.userUlid)).toEqual({ ...h, raw: fresh.raw });
    expect(await quarantineKeys()).toEqual([]);
  });

  it("get() quarantines too and returns nothing", async () => {
    const u = ulid();
    await plant(u, "garbage");
    expect(await store.get(u)).toBeNull();
    await expectQuarantined(u, "garbage", /not an envelope/);
    expect(await store.get(u)).toBeNull();
  });
});
