/**
 * cache-staleness: how long a client with the token cache on keeps serving a token another process has
 * just replaced. Process B (cache-staleness-child.ts, its own pool and Redis connections) caches each
 * user's token and polls ensureValidCalToken every millisecond; this process (client A, cache on too)
 * force-refreshes the user. Measured: A's call returning → B returning the new token, against a bare
 * PUBLISH → B's subscriber and a PING measured in the same loop (order alternating per user).
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { loadConfig } from "../../src/config/config.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import { fmtMs } from "../lib/format.js";
import { summarize } from "../lib/stats.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import type { FromChild, ToChild } from "./cache-staleness-child.js";
import { POOL_SIZE } from "./shared.js";
import { STALE, type Sample, stalenessNotes, stalenessRows } from "./cache-staleness-report.js";

const CHILD = path.join(import.meta.dirname, "cache-staleness-child.ts");
const now = () => process.hrtime.bigint();
const msSince = (from: bigint, to: bigint) => Number(to - from) / 1e6;
const hash = (token: string | undefined) => (token ? createHash("sha256").update(token).digest("hex").slice(0, 16) : "none");

interface ProcessB {
  send(m: ToChild): void;
  next<T extends FromChild["type"]>(
    type: T,
    match?: (m: Extract<FromChild, { type: T }>) => boolean,
  ): Promise<Extract<FromChild, { type: T }>>;
}

/** Forks process B and collects its messages; killed at the end of the section if still running. */
async function startB(ctx: BenchContext, env: Record<string, string>, probeChannel: string): Promise<ProcessB> {
  const child: ChildProcess = fork(CHILD, [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, NODE_OPTIONS: "", BENCH_CHILD_ENV: JSON.stringify(env), BENCH_CHILD_PROBE_CHANNEL: probeChannel },
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const inbox: FromChild[] = [];
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  child.on("message", (m: FromChild) => {
    inbox.push(m);
    wake();
  });
  child.on("exit", wake);
  ctx.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (child.connected) child.send({ type: "close" } satisfies ToChild);
    const exited = new Promise((r) => child.once("exit", r));
    if ((await Promise.race([exited, sleep(5_000, "timeout")])) === "timeout") child.kill("SIGKILL");
  });
  const b: ProcessB = {
    send: (m) => void child.send(m),
    async next(type, match = () => true) {
      const deadline = Date.now() + STALE.capMs + 30_000;
      for (;;) {
        const failed = inbox.find((m) => m.type === "error");
        if (failed?.type === "error") throw new Error(`process B: ${failed.message}`);
        const i = inbox.findIndex((m) => m.type === type && match(m as Extract<FromChild, { type: typeof type }>));
        if (i >= 0) return inbox.splice(i, 1)[0] as Extract<FromChild, { type: typeof type }>;
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process B exited (${child.exitCode}): ${stderr}`);
        if (Date.now() > deadline) throw new Error(`process B sent no "${type}" in time: ${stderr}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    },
  };
  await b.next("ready");
  return b;
}

/** hrtime must be one clock for both processes (CLOCK_MONOTONIC); B's stamp must fall inside our round trip. */
async function checkClock(b: ProcessB): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 5; i++) {
    const t0 = now();
    b.send({ type: "clock" });
    const tB = BigInt((await b.next("clock")).tNs);
    const t1 = now();
    if (tB < t0 || tB > t1) throw new Error("process.hrtime is not one clock across processes here; the staleness figures would be wrong");
    best = Math.min(best, msSince(t0, t1));
  }
  return best;
}

/** One user: B watches (its token cached), A force-refreshes, B reports when it returned the new token. */
async function refreshOne(a: CalTokenClient, b: ProcessB, user: string): Promise<Sample> {
  const { pollMs, afterPolls, capMs } = STALE;
  b.send({ type: "watch", user, pollMs, capMs, afterPolls });
  const { fromMemory } = await b.next("watching", (m) => m.user === user);
  const t0 = now();
  const r = await a.ensureValidCalToken(user, true);
  const tA = now();
  const seen = await b.next("seen", (m) => m.user === user);
  return {
    fromMemory,
    refreshed: r.success && r.refreshed,
    refreshMs: msSince(t0, tA),
    staleMs: seen.tSeenNs === null ? Number.POSITIVE_INFINITY : msSince(tA, BigInt(seen.tSeenNs)),
    messageMs: seen.tMsgNs === null ? Number.NaN : msSince(tA, BigInt(seen.tMsgNs)),
    sameAsA: seen.hash === hash(r.tokenInfo?.accessToken),
    newHash: hash(r.tokenInfo?.accessToken),
    oldAfterNew: seen.oldAfterNew,
    reads: seen.reads,
    readsAfter: seen.readsAfter,
    polls: seen.polls,
  };
}

/** Baselines: PUBLISH here → B's subscriber, and a PING round trip. */
async function probeOne(pub: Redis, b: ProcessB, channel: string, id: string): Promise<{ pubsubMs: number; pingMs: number }> {
  const t0 = now();
  await pub.publish(channel, id);
  const arrived = await b.next("probe", (m) => m.id === id);
  const pubsubMs = msSince(t0, BigInt(arrived.tNs));
  const p0 = now();
  await pub.ping();
  return { pubsubMs, pingMs: msSince(p0, now()) };
}

async function cacheStaleness(ctx: BenchContext): Promise<Row[]> {
  const env = ctx.env({ TOKEN_CACHE_SECONDS: String(STALE.cacheSeconds) });
  const a = ctx.createClient({ config: loadConfig(env), databasePoolSize: POOL_SIZE });
  ctx.progress(`seeding ${STALE.users + STALE.warmup} users`);
  const users = await ctx.seedManagedUsers(a, STALE.users + STALE.warmup);
  const probeChannel = `${ctx.queuePrefix}:bench:probe`;
  const pub = new Redis(ctx.redisUrl, { maxRetriesPerRequest: 1 });
  ctx.defer(() => pub.quit());
  ctx.progress("starting process B");
  const b = await startB(ctx, env, probeChannel);
  const clockRttMs = await checkClock(b);
  b.send({ type: "warm", users });
  const warmed = await b.next("warmed");
  if (warmed.cached !== users.length)
    ctx.note(`WARNING: B served only ${warmed.cached} of ${users.length} users from memory after warming.`);

  ctx.progress(`measuring: ${STALE.users} users (+${STALE.warmup} warm-up), refresh and probe alternating`);
  const samples: Sample[] = [];
  const probes: { pubsubMs: number; pingMs: number }[] = [];
  for (const [i, user] of users.entries()) {
    const probe = () => probeOne(pub, b, probeChannel, `p${i}`);
    const before = i % 2 === 0 ? await probe() : null;
    const sample = await refreshOne(a, b, user);
    const probed = before ?? (await probe());
    if (i < STALE.warmup) continue;
    samples.push(sample);
    probes.push(probed);
  }
  b.send({ type: "final", expected: samples.map((s, i) => [users[i + STALE.warmup] as string, s.newHash]) });
  const { mismatches } = await b.next("final");

  stalenessNotes(ctx, samples, { clockRttMs, warmAttempts: warmed.attempts });
  if (samples.some((s) => !s.refreshed))
    ctx.note(`WARNING: ${samples.filter((s) => !s.refreshed).length} forced refreshes did not refresh.`);
  ctx.progress(`staleness p50 ${fmtMs(summarize(samples.map((s) => s.staleMs)).p50)}`);
  return stalenessRows(
    samples,
    probes.map((p) => p.pubsubMs),
    probes.map((p) => p.pingMs),
    mismatches,
  );
}

export const cacheStalenessSection: Section = {
  name: "cache-staleness",
  title: "a cached client after another process's forced refresh",
  goal: "process B returns A's new token within 100 ms of A's forced refresh returning (p95 and max; pub/sub invalidation); never the old token after the new one",
  run: cacheStaleness,
};
