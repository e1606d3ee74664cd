/**
 * hot-path, the arms: the baseline findUnique and three ensureValidCalToken clients (as-is, touch
 * disabled, touch writing every call), each timed in sequential blocks. The section is in hot-path.ts.
 */
import { performance } from "node:perf_hooks";
import type { Config } from "../../src/config/config.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { PrismaClient } from "../../src/store/prisma.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { createTokenStore } from "../../src/store/token-store.js";
import type { BenchContext } from "../lib/types.js";
import { POOL_SIZE } from "./shared.js";

export const HOT = { users: 50, warmup: 500, rounds: 20, perRound: 200 };
export const DAY_MS = 24 * 60 * 60_000;

export interface Arm {
  key: "prisma" | "ensure" | "noTouch" | "touchWrites";
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
  /** prisma, as-is, touch disabled, touch writes: in this order. */
  arms: Arm[];
  /** Calls that reached the as-is client's store.touchLastUsed. */
  touches: { calls: number };
  writeUsers: string[];
  prisma: PrismaClient;
}

/** Seeds the users and builds the four arms. */
export async function buildArms(ctx: BenchContext, config: Config): Promise<HotPathRig> {
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
    databasePoolSize: POOL_SIZE,
    clock: () => {
      skew += 61_000;
      return new Date(Date.now() + skew);
    },
  });

  const ensureOk = (client: CalTokenClient) => async (u: string) => {
    const r = await client.ensureValidCalToken(u);
    return r.success && !r.refreshed;
  };
  const arms: Arm[] = [
    arm(
      "prisma",
      "prisma.calToken.findUnique",
      users,
      async (u) => (await prisma.calToken.findUnique({ where: { userUlid: u } })) !== null,
    ),
    arm("ensure", "ensureValidCalToken (as-is)", users, ensureOk(asIs)),
    arm("noTouch", "ensureValidCalToken, touch disabled", users, ensureOk(noTouch)),
    arm("touchWrites", "ensureValidCalToken, touch writes every call", writeUsers, ensureOk(touchWrites)),
  ];
  return { arms, touches, writeUsers, prisma };
}
