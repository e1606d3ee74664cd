/**
 * cache-staleness, process B: a stock on-demand client with the token cache on (its own Prisma pool,
 * its own Redis connections, its own pair-change subscription), driven by the parent over IPC. Reads of
 * the row are counted (store.get), so the parent knows whether a call was served from memory. A second
 * Redis subscriber of its own timestamps when the pair-change message and the parent's baseline probes
 * reach this process. Times are `process.hrtime.bigint()` (CLOCK_MONOTONIC on Linux: one clock for
 * every process on the host), sent as decimal strings. Only hashes of tokens cross the IPC channel.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { loadConfig } from "../../src/config/config.js";
import { pairChangeChannel } from "../../src/fleet/pair-changes.js";
import { createLogger } from "../../src/log/logger.js";
import { createPrisma } from "../../src/store/prisma.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { createTokenStore } from "../../src/store/token-store.js";
import { createCalTokenClient } from "../../src/wiring/cal-token-client.js";

/** Parent → B. */
export type ToChild =
  | { type: "clock" }
  | { type: "warm"; users: string[] }
  | { type: "watch"; user: string; pollMs: number; capMs: number; afterPolls: number }
  | { type: "final"; expected: [string, string][] }
  | { type: "close" };

/** B → parent. */
export type FromChild =
  | { type: "ready" }
  | { type: "clock"; tNs: string }
  | { type: "warmed"; cached: number; attempts: number }
  | { type: "watching"; user: string; fromMemory: boolean }
  | {
      type: "seen";
      user: string;
      tSeenNs: string | null;
      tMsgNs: string | null;
      hash: string;
      polls: number;
      reads: number;
      readsAfter: number;
      oldAfterNew: number;
    }
  | { type: "probe"; id: string; tNs: string }
  | { type: "final"; mismatches: number }
  | { type: "error"; message: string };

const send = (m: FromChild) => process.send?.(m);
const now = () => process.hrtime.bigint();
const hash = (token: string | undefined) => (token ? createHash("sha256").update(token).digest("hex").slice(0, 16) : "none");

const config = loadConfig(JSON.parse(process.env.BENCH_CHILD_ENV ?? "{}") as Record<string, string>);
const probeChannel = process.env.BENCH_CHILD_PROBE_CHANNEL ?? "";
const prisma = createPrisma(config.databaseUrl, { max: 10 });
const realStore = createTokenStore({ prisma, cipher: createTokenCipher(config.encryptionKeys) });
const reads = { calls: 0 };
const store = {
  ...realStore,
  get: (u: string) => {
    reads.calls++;
    return realStore.get(u);
  },
};
const client = createCalTokenClient({ config, prisma, store, logger: createLogger({ level: "silent" }) });

/** First pair-change message per watched user, and the user being watched. */
const messageAt = new Map<string, bigint>();
let watched: string | null = null;
const sub = new Redis(config.redisUrl, { maxRetriesPerRequest: 1 });
sub.on("message", (channel: string, message: string) => {
  const t = now();
  if (channel === probeChannel) send({ type: "probe", id: message, tNs: String(t) });
  else if (message === watched && !messageAt.has(message)) messageAt.set(message, t);
});
await sub.subscribe(pairChangeChannel(config.queuePrefix), probeChannel);

const tokenHash = async (user: string) => hash((await client.ensureValidCalToken(user)).tokenInfo?.accessToken);

/** Calls each user twice until every second call is served from memory (the feed is live), ≤ 5 s. */
async function warm(users: string[]): Promise<FromChild> {
  let cached = 0;
  let attempts = 0;
  while (attempts < 100) {
    attempts++;
    cached = 0;
    for (const u of users) {
      await client.ensureValidCalToken(u);
      const before = reads.calls;
      await client.ensureValidCalToken(u);
      if (reads.calls === before) cached++;
    }
    if (cached === users.length) break;
    await sleep(50);
  }
  return { type: "warmed", cached, attempts };
}

/**
 * Polls `user` every `pollMs` (never bypassing the cache) until the token differs from the one it
 * started with, then `afterPolls` more times counting any return of the old token.
 */
async function watch(m: Extract<ToChild, { type: "watch" }>): Promise<FromChild> {
  watched = m.user;
  messageAt.delete(m.user);
  const before = reads.calls;
  // The first call caches the token if its entry had aged out; the second must come from memory.
  const old = await tokenHash(m.user);
  const cachedReads = reads.calls;
  const fromMemory = (await tokenHash(m.user)) === old && reads.calls === cachedReads;
  send({ type: "watching", user: m.user, fromMemory });
  const deadline = now() + BigInt(m.capMs) * 1_000_000n;
  let polls = 0;
  let seen = old;
  let tSeen: bigint | null = null;
  while (now() < deadline) {
    await sleep(m.pollMs);
    polls++;
    seen = await tokenHash(m.user);
    if (seen !== old) {
      tSeen = now();
      break;
    }
  }
  const readsToNew = reads.calls - before;
  let oldAfterNew = 0;
  for (let i = 0; tSeen !== null && i < m.afterPolls; i++) {
    await sleep(m.pollMs);
    if ((await tokenHash(m.user)) === old) oldAfterNew++;
  }
  watched = null;
  const tMsg = messageAt.get(m.user);
  return {
    type: "seen",
    user: m.user,
    tSeenNs: tSeen === null ? null : String(tSeen),
    tMsgNs: tMsg === undefined ? null : String(tMsg),
    hash: seen,
    polls,
    reads: readsToNew,
    readsAfter: reads.calls - before - readsToNew,
    oldAfterNew,
  };
}

async function final(expected: [string, string][]): Promise<FromChild> {
  let mismatches = 0;
  for (const [user, h] of expected) if ((await tokenHash(user)) !== h) mismatches++;
  return { type: "final", mismatches };
}

/** Closes everything and exits; also when the parent goes away (the IPC channel closes), so B never outlives it. */
let closing: Promise<void> | undefined;
function close(): Promise<void> {
  closing ??= (async () => {
    await client.close();
    await prisma.$disconnect();
    sub.disconnect();
  })().finally(() => process.exit(0));
  return closing;
}
process.on("disconnect", () => void close());

process.on("message", (m: ToChild) => {
  const reply = async (): Promise<FromChild | null> => {
    if (m.type === "clock") return { type: "clock", tNs: String(now()) };
    if (m.type === "warm") return warm(m.users);
    if (m.type === "watch") return watch(m);
    if (m.type === "final") return final(m.expected);
    await close();
    return null;
  };
  reply().then(
    (r) => r && send(r),
    (err: unknown) => send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
send({ type: "ready" });
