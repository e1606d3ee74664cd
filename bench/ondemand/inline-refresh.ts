/**
 * inline-refresh: ensureValidCalToken with an expired token (inline refresh) vs a raw fetch of the
 * fake's refresh endpoint, paired per iteration; the traced per-step breakdown is in
 * inline-refresh-breakdown.ts.
 */
import { performance } from "node:perf_hooks";
import { calcomTokenApiFromConfig } from "../../src/wiring/calcom-from-config.js";
import { loadConfig } from "../../src/config/config.js";
import type { CalTokenClient } from "../../src/wiring/cal-token-client.js";
import type { PrismaClient } from "../../src/store/prisma.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { createTokenStore } from "../../src/store/token-store.js";
import { fmtMs } from "../lib/format.js";
import { pairedDiff, summarize } from "../lib/stats.js";
import { Tracer, type Trace } from "../lib/trace.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import { breakdownNotes, breakdownRows, type TracedSample } from "./inline-refresh-breakdown.js";
import { POOL_SIZE, orderFor } from "./shared.js";

const REFRESH = { iterations: 300, warmup: 20 };

/** The measured iterations: raw fetch (baseline), as-is refresh, bare commit, traced refreshes. */
interface Measured {
  base: number[];
  e2e: number[];
  commits: number[];
  tr: TracedSample[];
}

/** The timed calls one iteration makes. */
interface Calls {
  rawRefresh(): Promise<number>;
  asIs(): Promise<number>;
  bareCommit(): Promise<number>;
  traced(): Promise<number>;
}

async function inlineRefresh(ctx: BenchContext): Promise<Row[]> {
  const config = loadConfig(ctx.env());
  const platform = config.calcom.platform;
  if (!platform) throw new Error("the bench seeds managed users: it needs CAL_CLIENT_ID and CAL_CLIENT_SECRET");
  const fake = ctx.fake;
  const client = ctx.createClient({ databasePoolSize: POOL_SIZE });
  const prisma = ctx.createPrisma(POOL_SIZE);

  // Breakdown client: the same composition, with the store, the Cal.com client and the cipher timed.
  const tracer = new Tracer();
  const cipher = tracer.wrap(createTokenCipher(config.encryptionKeys), "cipher");
  const store = tracer.wrap(createTokenStore({ prisma: ctx.createPrisma(POOL_SIZE), cipher }), "store");
  const calcomClient = calcomTokenApiFromConfig(config, ctx.logger);
  ctx.defer(() => calcomClient.close());
  const traced = ctx.createClient({ config, store, calcom: tracer.wrap(calcomClient, "calcom") });

  const { iterations, warmup } = REFRESH;
  const tracedCount = Math.ceil(iterations / 2) + Math.ceil(warmup / 2);
  const total = iterations + warmup + tracedCount + 1;
  ctx.progress(`seeding ${total} users and expiring their access tokens`);
  const seeded = await ctx.seedManagedUsers(client, total);
  const probeUser = seeded.pop() as string;
  await expire(prisma, seeded);
  const asIsUsers = seeded.slice(0, iterations + warmup);
  const tracedUsers = seeded.slice(iterations + warmup);

  /** The fake's own response time: a raw fetch of the same endpoint with a fresh refresh token. */
  const refreshUrl = `${fake.url}/v2/oauth/${encodeURIComponent(platform.clientId)}/refresh`;
  const rawRefresh = async (): Promise<number> => {
    const { refreshToken } = fake.createManagedUser();
    const t0 = performance.now();
    const res = await fetch(refreshUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-cal-secret-key": platform.clientSecret,
        "x-cal-client-id": platform.clientId,
      },
      body: JSON.stringify({ refreshToken }),
    });
    const body = (await res.json()) as { status?: string };
    const ms = performance.now() - t0;
    if (res.status !== 200 || body.status !== "success") throw new Error(`raw refresh answered ${res.status}`);
    return ms;
  };
  let nextAsIs = 0;
  let nextTraced = 0;
  const calls: Calls = {
    rawRefresh,
    asIs: () => ensure(client, asIsUsers[nextAsIs++] as string),
    bareCommit: () => bareCommit(prisma, probeUser),
    traced: () => ensure(traced, tracedUsers[nextTraced++] as string),
  };
  const m = await measure(ctx, tracer, calls);

  const rows = headlineRows(m);
  rows.push(...breakdownRows(tracer, m.tr));
  breakdownNotes(ctx, tracer, m.tr, m.commits, iterations);
  return rows;
}

async function ensure(c: CalTokenClient, u: string): Promise<number> {
  const t0 = performance.now();
  const r = await c.ensureValidCalToken(u);
  const ms = performance.now() - t0;
  if (!r.success || !r.refreshed) {
    throw new Error(
      `expected an inline refresh, got ${JSON.stringify({ success: r.success, refreshed: r.refreshed, code: r.error?.code })}`,
    );
  }
  return ms;
}

/** Reference for "one committed write": a single-row UPDATE by primary key on the same table. */
async function bareCommit(prisma: PrismaClient, probeUser: string): Promise<number> {
  const t0 = performance.now();
  const n = await prisma.$executeRaw`UPDATE cal_token SET updated_at = ${new Date()}::timestamptz WHERE user_ulid = ${probeUser}`;
  const ms = performance.now() - t0;
  if (n !== 1) throw new Error("commit probe updated no row");
  return ms;
}

/** Warm-up, then REFRESH.iterations recorded iterations. */
async function measure(ctx: BenchContext, tracer: Tracer, calls: Calls): Promise<Measured> {
  const { iterations, warmup } = REFRESH;
  const base: number[] = [];
  const e2e: number[] = [];
  const commits: number[] = [];
  const tr: TracedSample[] = [];
  /**
   * One iteration: a raw fetch (baseline), an as-is inline refresh, a bare commit and, every other
   * iteration, a traced inline refresh; the order rotates every iteration.
   */
  const iteration = async (i: number, record: boolean) => {
    const got: { base?: number; e2e?: number; commit?: number; traced?: number } = {};
    let trace: Trace | undefined;
    const tasks: (() => Promise<void>)[] = [
      async () => {
        got.base = await calls.rawRefresh();
      },
      async () => {
        got.e2e = await calls.asIs();
      },
      async () => {
        got.commit = await calls.bareCommit();
      },
    ];
    if (i % 2 === 0) {
      tasks.push(async () => {
        trace = tracer.begin();
        try {
          got.traced = await calls.traced();
        } finally {
          tracer.end();
        }
      });
    }
    for (const t of orderFor(tasks, i)) await t();
    if (!record) return;
    base.push(got.base as number);
    e2e.push(got.e2e as number);
    commits.push(got.commit as number);
    if (trace && got.traced !== undefined) tr.push({ e2e: got.traced, base: got.base as number, trace });
  };

  ctx.progress(`warm-up: ${warmup} iterations`);
  for (let i = 0; i < warmup; i++) await iteration(i, false);
  ctx.progress(`measuring: ${iterations} iterations (raw fetch, inline refresh, bare commit, traced refresh every other), rotating order`);
  for (let i = 0; i < iterations; i++) await iteration(i, true);
  // Let the non-awaited touches of the last calls land in their traces.
  await new Promise((r) => setTimeout(r, 200));
  return { base, e2e, commits, tr };
}

function headlineRows({ base, e2e, commits }: Measured): Row[] {
  const { iterations } = REFRESH;
  const overhead = pairedDiff(e2e, base);
  const sb = summarize(base);
  const se = summarize(e2e);
  const so = summarize(overhead);
  const sc = summarize(commits);
  const how = `${iterations} refreshes, each paired with the raw fetch of its iteration`;
  return [
    {
      metric: "fake refresh via raw fetch p50 (baseline)",
      value: sb.p50,
      unit: "ms",
      detail: "POST /v2/oauth/fake-client/refresh, fresh refresh token, JSON parsed",
    },
    { metric: "fake refresh via raw fetch p99 (baseline)", value: sb.p99, unit: "ms", detail: "" },
    {
      metric: "ensureValidCalToken (inline refresh) p50",
      value: se.p50,
      unit: "ms",
      detail: "access token expired in the DB; end to end, as-is client",
    },
    { metric: "ensureValidCalToken (inline refresh) p99", value: se.p99, unit: "ms", detail: "" },
    {
      metric: "overhead p50 (paired)",
      value: so.p50,
      unit: "ms",
      goal: { op: "<=", target: 3 },
      detail: `p50 of (end-to-end − paired baseline); ${how}`,
    },
    {
      metric: "overhead p99 (paired)",
      value: so.p99,
      unit: "ms",
      goal: { op: "<=", target: 15 },
      detail: "p99 of (end-to-end − paired baseline)",
    },
    { metric: "overhead p50 (difference of p50s)", value: se.p50 - sb.p50, unit: "ms", detail: "cross-check" },
    { metric: "overhead p99 (difference of p99s)", value: se.p99 - sb.p99, unit: "ms", detail: "cross-check" },
    { metric: "ratio of medians (end-to-end / baseline)", value: se.p50 / sb.p50, unit: "×", detail: "informational" },
    {
      metric: "bare commit p50 (reference)",
      value: sc.p50,
      unit: "ms",
      detail: `single-row UPDATE by primary key, autocommit, interleaved; p99 ${fmtMs(sc.p99)}`,
    },
    { metric: "overhead p50 in bare commits", value: so.p50 / sc.p50, unit: "×", detail: "overhead p50 / bare commit p50" },
  ];
}

async function expire(prisma: PrismaClient, userUlids: string[]): Promise<void> {
  const past = new Date(Date.now() - 60_000);
  const { count } = await prisma.calToken.updateMany({ where: { userUlid: { in: userUlids } }, data: { accessTokenExpiresAt: past } });
  if (count !== userUlids.length) throw new Error(`expired ${count} of ${userUlids.length} rows`);
}

export const inlineRefreshSection: Section = {
  name: "inline-refresh",
  title: "ensureValidCalToken with an expired token (inline refresh) vs the fake's own refresh time",
  goal: "overhead (end-to-end − fake's own response time) p50 ≤ 3 ms, p99 ≤ 15 ms",
  run: inlineRefresh,
};
