/**
 * hot-path, the arms: the baseline findUnique, three ensureValidCalToken clients with the token cache
 * off (as-is, touch disabled, touch writing every call) and one with it on (the hot path from memory),
 * each timed in sequential blocks. The section is in hot-path.ts.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Config } from "../../src/config/config.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { PrismaClient } from "../../src/store/prisma.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { createTokenStore } from "../../src/store/token-store.js";
import type { BenchContext } from "../lib/types.js";
import { POOL_SIZE } from "./shared.js";

export const HOT = { users: 50, warmup: 500, rounds: 20, perRound: 200 };
/** TOKEN_CACHE_SECONDS of the cached arm (the default); every other arm runs with 0 (cache off). */
export const CACHE_SECONDS = 30;
export const DAY_MS = 24 * 60 * 60_000;

export interface Arm {
  key: "prisma" | "ensure" | "noTouch" | "touchWrites" | "cached";
  label: string;
  users: string[];
  call(userUlid: string): Promise<void>;
  all: number[];
  roundMedians: number[];
  bad: number;
  /** Node process CPU (user + system) spent during the arm's measured blocks, µs. */
  cpuUs: number;
}

function arm(key: Arm["key"], label: string, users: string[], call: (u: string) => Promise<boolean>): Arm {
  const a: Arm = {
    key,
    label,
    users,
    all: [],
    roundMedians: [],
    bad: 0,
    cpuUs: 0,
    async call(u) {
      if (!(await call(u))) a.bad++;
    },
  };
  return a;
}

/** `n` sequential calls over the arm's users starting at `offset`; returns each call's latency (ms). */
export async function block(a: Arm, n: number, offset: number): Promise<number[]> {
  const out: number[] = new Array<number>(n);
  const users = a.users;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    const u = users[(offset + i) % users.length] as string;
    const t0 = performance.now();
    await a.call(u);
    out[i] = performance.now() - t0;
  }
  const cpu = process.cpuUsage(cpu0);
  a.cpuUs += cpu.user + cpu.system;
  return out;
}

export interface HotPathRig {
  /** prisma, as-is, touch disabled, touch writes, cache on: in this order. */
  arms: Arm[];
  /** Calls that reached the as-is client's store.touchLastUsed. */
  touches: { calls: number };
  /** Calls that reached the cached client's store.get (a read of the row: cache miss). */
  cachedReads: { calls: number };
  writeUsers: string[];
  prisma: PrismaClient;
}

/** A fresh token's call: a success that did not refresh. */
const ensureOk = (client: CalTokenClient) => async (u: string) => {
  const r = await client.ensureValidCalToken(u);
  return r.success && !r.refreshed;
};

/**
 * Seeds the users and builds the five arms. `config` has the token cache off (TOKEN_CACHE_SECONDS=0),
 * `cachedConfig` has it on.
 */
export async function buildArms(ctx: BenchContext, config: Config, cachedConfig: Config): Promise<HotPathRig> {
  // The same composition createCalTokenClient builds on its own (its own pool, createTokenStore),
  // except that calls reaching store.touchLastUsed are counted: the in-memory throttle in
  // src/ondemand/user-memory.ts decides how many do.
  const touches = { calls: 0 };
  const asIsPrisma = ctx.createPrisma(POOL_SIZE);
  const asIsStore = createTokenStore({ prisma: asIsPrisma, cipher: createTokenCipher(config.encryptionKeys) });
  const asIs = ctx.createClient({
    config,
    prisma: asIsPrisma,
    store: {
      ...asIsStore,
      touchLastUsed: (u, now) => {
        touches.calls++;
        return asIsStore.touchLastUsed(u, now);
      },
    },
  });
  ctx.progress(`seeding ${HOT.users * 2} users`);
  const users = await ctx.seedManagedUsers(asIs, HOT.users);
  // Own users for the always-writing arm, so its row updates do not bloat the rows the others read.
  const writeUsers = await ctx.seedManagedUsers(asIs, HOT.users, { accessTokenTtlMs: 60 * DAY_MS });

  const prisma = ctx.createPrisma(POOL_SIZE);

  // Same code path, but touchLastUsed is a no-op: isolates the cost of the non-awaited UPDATE.
  const realStore = createTokenStore({ prisma: ctx.createPrisma(POOL_SIZE), cipher: createTokenCipher(config.encryptionKeys) });
  const noTouch = ctx.createClient({ config, store: { ...realStore, touchLastUsed: async () => undefined } });

  // A clock that jumps 61 s per reading: the 60 s throttle never applies, so every call's touch
  // really writes last_used_at (the first call of a user in a minute). Tokens live 60 days.
  let skew = 0;
  const touchWrites = ctx.createClient({
    config,
    databasePoolSize: POOL_SIZE,
    clock: () => {
      skew += 61_000;
      return new Date(Date.now() + skew);
    },
  });

  const { cached, cachedReads } = await cachedClient(ctx, cachedConfig, users[0] as string);

  const arms: Arm[] = [
    arm(
      "prisma",
      "prisma.calToken.findUnique",
      users,
      async (u) => (await prisma.calToken.findUnique({ where: { userUlid: u } })) !== null,
    ),
    arm("ensure", "ensureValidCalToken, cache off (as-is otherwise)", users, ensureOk(asIs)),
    arm("noTouch", "ensureValidCalToken, touch disabled", users, ensureOk(noTouch)),
    arm("touchWrites", "ensureValidCalToken, touch writes every call", writeUsers, ensureOk(touchWrites)),
    arm("cached", "ensureValidCalToken, cache on", users, ensureOk(cached)),
  ];
  return { arms, touches, cachedReads, writeUsers, prisma };
}

/** The hot path from memory: the same composition with the cache on; reads of the row are counted. */
async function cachedClient(ctx: BenchContext, cachedConfig: Config, probeUser: string) {
  const cachedReads = { calls: 0 };
  const store = createTokenStore({ prisma: ctx.createPrisma(POOL_SIZE), cipher: createTokenCipher(cachedConfig.encryptionKeys) });
  const cached = ctx.createClient({
    config: cachedConfig,
    store: {
      ...store,
      get: (u) => {
        cachedReads.calls++;
        return store.get(u);
      },
    },
  });
  await untilServedFromMemory(ctx, cached, cachedReads, probeUser);
  return { cached, cachedReads };
}

/**
 * The cache serves only while its invalidation feed (Redis pub/sub) is subscribed; wait until a second
 * call for a user is answered without reading the row, so no measured call bypasses it for that reason.
 */
async function untilServedFromMemory(ctx: BenchContext, client: CalTokenClient, reads: { calls: number }, user: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    await client.ensureValidCalToken(user);
    const before = reads.calls;
    await client.ensureValidCalToken(user);
    if (reads.calls === before) return;
    await sleep(20);
  }
  ctx.note("WARNING: the cached client never served from memory (pair-change feed not live); its figures are reads of the row.");
}
