/**
 * sweep-scaling: one sweep with 1,000 due rows in one table grown 10k → 100k → 1M rows, against an
 * interleaved enqueue-only arm and dry runs; the table and the EXPLAIN are in sweep-table.ts.
 */
import { performance } from "node:perf_hooks";
import type { Queue } from "bullmq";
import type pg from "pg";
import { createSweep } from "../../jobs/sweep.js";
import { grantPolicy, loadConfig } from "../../src/config/config.js";
import { type GrantPolicy, priorityForRow } from "../../src/core/grant-policy.js";
import type { DueRow } from "../../src/store/due-query.js";
import { workerConnection } from "../../src/queue/connection.js";
import type { RefreshJobData } from "../../src/queue/names.js";
import { createRefreshQueue, scheduleRefresh } from "../../src/queue/refresh-queue.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { fmtMs } from "../lib/format.js";
import { median } from "../lib/stats.js";
import type { BenchContext, Row, Section } from "../lib/types.js";
import { emptyTables, sectionPrefix, sqlClient } from "./shared.js";
import { DUE_SQL, SCATTER_A, SW, explainDue, fillRows, type PlanInfo } from "./sweep-table.js";

type Arm = "full" | "dry" | "enqueue";

/** Everything one size contributes to the report. */
interface Measured {
  results: Map<number, Record<Arm, number[]>>;
  plans: Map<number, PlanInfo>;
  fillSeconds: Map<number, number>;
  tableMb: Map<number, number>;
}

/** What a size's rounds run against. */
interface Rig {
  sql: pg.Client;
  prisma: ReturnType<BenchContext["createPrisma"]>;
  queue: Queue<RefreshJobData>;
  sweep: ReturnType<typeof createSweep>;
  clock: () => Date;
  policy: GrantPolicy;
}

async function sweepScaling(ctx: BenchContext): Promise<Row[]> {
  const sql = await sqlClient(ctx);
  await emptyTables(sql);
  // The next sections must not run against a 1M-row table.
  ctx.defer(async () => {
    await sql.query("TRUNCATE cal_token, cal_token_audit, cal_token_event");
  });
  const prefix = sectionPrefix(ctx, "sw");
  const config = loadConfig(ctx.env({ QUEUE_PREFIX: prefix }));
  const prisma = ctx.createPrisma(Math.max(4, config.workerConcurrency + 2));
  const queue = createRefreshQueue({ connection: workerConnection(ctx.redisUrl), prefix });
  queue.on("error", () => undefined);
  ctx.defer(() => queue.close());
  const clock = () => new Date();
  const policy = grantPolicy(config);
  const sweep = createSweep({ prisma, queue, logger: ctx.logger, clock, policy });

  // Envelopes of a real token's size; the sweep never decrypts them.
  const cipher = createTokenCipher(config.encryptionKeys);
  const seed = ctx.fake.createManagedUser();
  const accessEnc = cipher.encrypt(seed.accessToken, "00000000000000000000000000", "access_token");
  const refreshEnc = cipher.encrypt(seed.refreshToken, "00000000000000000000000000", "refresh_token");
  const base = new Date(Date.now() + 60 * 60_000);
  const fill = (from: number, to: number) => fillRows(sql, from, to, accessEnc, refreshEnc, base);

  const m: Measured = { results: new Map(), plans: new Map(), fillSeconds: new Map(), tableMb: new Map() };
  let filled = 0;
  for (const size of SW.sizes) {
    ctx.progress(`growing cal_token to ${size.toLocaleString("en")} rows`);
    const f0 = performance.now();
    await fill(filled, size);
    m.fillSeconds.set(size, (performance.now() - f0) / 1000);
    filled = size;
    const mb = await sql.query<{ mb: string }>("SELECT pg_total_relation_size('cal_token') / 1048576.0 AS mb");
    m.tableMb.set(size, Number(mb.rows[0]?.mb ?? Number.NaN));
    m.results.set(size, await measureSize({ sql, prisma, queue, sweep, clock, policy }, size, m.plans));
  }
  await queue.obliterate({ force: true });

  const rows = sweepRows(m);
  sweepNotes(ctx, m);
  return rows;
}

/** At the table's current size: the EXPLAIN, then one warm-up and SW.runs rotating rounds of the arms. */
async function measureSize(rig: Rig, size: number, plans: Map<number, PlanInfo>): Promise<Record<Arm, number[]>> {
  const { sql, prisma, queue } = rig;
  // The horizon that makes exactly SW.due ACTIVE rows due at this size.
  const nth = await sql.query<{ at: Date }>(
    `SELECT next_refresh_at AS at FROM cal_token WHERE status = 'ACTIVE' ORDER BY next_refresh_at, user_ulid OFFSET ${SW.due - 1} LIMIT 1`,
  );
  const dueUntil = nth.rows[0]?.at;
  if (!dueUntil) throw new Error("no due rows");

  // ---- plan ----
  plans.set(size, await explainDue(sql, dueUntil));

  // ---- the due rows, for the enqueue-only arm (same adds as the sweep, no database) ----
  const dueRows = await prisma.$queryRawUnsafe<DueRow[]>(DUE_SQL, new Date(0), "", dueUntil, SW.due + 1);
  if (dueRows.length !== SW.due) throw new Error(`expected ${SW.due} due rows, found ${dueRows.length}`);

  const arms = sweepArms(rig, dueUntil, dueRows);
  const order: Arm[] = ["full", "dry", "enqueue"];
  const rec: Record<Arm, number[]> = { full: [], dry: [], enqueue: [] };
  for (const a of order) await arms[a](); // warm-up, not recorded
  for (let r = 0; r < SW.runs; r++) {
    const k = r % order.length;
    const rotated = [...order.slice(k), ...order.slice(0, k)];
    for (const a of r % 2 === 1 ? rotated.reverse() : rotated) rec[a].push(await arms[a]());
  }
  const delayed = await queue.getJobCountByTypes("delayed");
  if (delayed !== SW.due) throw new Error(`expected ${SW.due} delayed jobs after a sweep, found ${delayed}`);
  return rec;
}

/** Full sweep, dry run (database only) and enqueue only (the same adds, no database); each returns ms. */
function sweepArms({ queue, sweep, clock, policy }: Rig, dueUntil: Date, dueRows: DueRow[]): Record<Arm, () => Promise<number>> {
  const horizonMs = () => dueUntil.getTime() - Date.now();
  return {
    full: async () => {
      await queue.obliterate({ force: true });
      const t0 = performance.now();
      const r = await sweep({ horizonMs: horizonMs(), pageSize: SW.pageSize, budgetMs: 60_000 }, false);
      const ms = performance.now() - t0;
      if (r.visited !== SW.due || !r.complete) throw new Error(`sweep visited ${r.visited} (complete ${r.complete})`);
      return ms;
    },
    dry: async () => {
      const t0 = performance.now();
      const r = await sweep({ horizonMs: horizonMs(), pageSize: SW.pageSize, budgetMs: 60_000 }, true);
      const ms = performance.now() - t0;
      if (r.visited !== SW.due) throw new Error(`dry sweep visited ${r.visited}`);
      return ms;
    },
    enqueue: async () => {
      await queue.obliterate({ force: true });
      const t0 = performance.now();
      for (let i = 0; i < dueRows.length; i += SW.pageSize) {
        await Promise.allSettled(
          dueRows
            .slice(i, i + SW.pageSize)
            .map((r) => scheduleRefresh(queue, r.userUlid, r.nextRefreshAt, priorityForRow(r, clock(), policy), clock)),
        );
      }
      return performance.now() - t0;
    },
  };
}

const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`);

function sweepRows({ results, plans }: Measured): Row[] {
  const med = (size: number, arm: Arm) => median(results.get(size)?.[arm] ?? []);
  const [s0, s1, s2] = SW.sizes as [number, number, number];
  const rows: Row[] = [];
  for (const size of SW.sizes) {
    const p = plans.get(size);
    rows.push({
      metric: `sweep, ${label(size)} rows: median`,
      value: med(size, "full"),
      unit: "ms",
      detail: `${SW.runs} runs (${(results.get(size)?.full ?? []).map((x) => x.toFixed(0)).join(", ")} ms); dry run ${fmtMs(med(size, "dry"))}, enqueue only ${fmtMs(med(size, "enqueue"))}; first page (EXPLAIN ANALYZE right after VACUUM) ${p?.buffers ?? "?"} buffers (${p?.reads ?? "?"} read), ${fmtMs(p?.execMs ?? Number.NaN)}`,
    });
  }
  const norm = (size: number) => med(size, "full") / med(size, "enqueue");
  rows.push(
    {
      metric: `sweep ratio ${label(s1)} / ${label(s0)}`,
      value: med(s1, "full") / med(s0, "full"),
      unit: "×",
      detail: `normalised by the interleaved enqueue-only time: ${(norm(s1) / norm(s0)).toFixed(2)}×`,
    },
    {
      metric: `sweep ratio ${label(s2)} / ${label(s0)}`,
      value: med(s2, "full") / med(s0, "full"),
      unit: "×",
      goal: { op: "<=", target: 1.5 },
      detail: `normalised by the interleaved enqueue-only time: ${(norm(s2) / norm(s0)).toFixed(2)}×`,
    },
    {
      metric: `dry run (database only) ratio ${label(s1)} / ${label(s0)}`,
      value: med(s1, "dry") / med(s0, "dry"),
      unit: "×",
      detail: SW.sizes.map((s) => `${label(s)} ${fmtMs(med(s, "dry"))}`).join(", "),
    },
    {
      metric: `dry run (database only) ratio ${label(s2)} / ${label(s0)}`,
      value: med(s2, "dry") / med(s0, "dry"),
      unit: "×",
      detail: "informational",
    },
    {
      metric: `database share of a sweep, ${label(s2)}`,
      value: (100 * med(s2, "dry")) / med(s2, "full"),
      unit: "%",
      detail: `dry run / full sweep (${label(s0)}: ${((100 * med(s0, "dry")) / med(s0, "full")).toFixed(1)} %)`,
    },
  );
  return rows;
}

function sweepNotes(ctx: BenchContext, { plans, fillSeconds, tableMb }: Measured): void {
  const s2 = SW.sizes[2] as number;
  const p2 = plans.get(s2);
  ctx.note(
    `One table grown ${SW.sizes.map(label).join(" → ")} with INSERT … SELECT generate_series (dummy envelopes of a real token's length, 26-char hex ids, 1 % RECONNECT_REQUIRED), VACUUM ANALYZE after each step ` +
      `(${SW.sizes.map((s) => `${label(s)}: ${(fillSeconds.get(s) ?? 0).toFixed(1)} s, ${(tableMb.get(s) ?? 0).toFixed(0)} MB with indexes`).join("; ")}). ` +
      `next_refresh_at is a pseudo-random permutation (i·${SCATTER_A} mod 2³¹−1 ms after a base an hour ahead), so the ${SW.due} due rows — the ${SW.due} earliest ACTIVE ones; the horizon is set to the ${SW.due}th — are scattered over the whole heap at every size.`,
  );
  ctx.note(
    `Per size: one warm-up of each arm, then ${SW.runs} rounds of {full sweep (queue obliterated first, so all ${SW.due} adds are real delayed jobs), dry run (database only), enqueue only (the same ${SW.due} scheduleRefresh calls in pages of ${SW.pageSize}, no database)} in rotating order; pageSize ${SW.pageSize}. ` +
      `The sizes cannot be interleaved (the table only grows), so the enqueue-only arm is the drift control: "normalised" divides each size's sweep by its own enqueue-only median.`,
  );
  ctx.note(
    `EXPLAIN of the first page (same SQL as src/store/due-query.ts): ${SW.sizes.map((s) => `${label(s)}: ${plans.get(s)?.custom ?? "?"}`).join("; ")}. ` +
      `Generic plan (plan_cache_mode = force_generic_plan, what a reused prepared statement gets): ${p2?.generic ?? "?"}. ` +
      `cal_token_due_idx used at every size, both plans: ${[...plans.values()].every((p) => p.indexOk) ? "yes" : "NO"}. Buffers per first page: ${SW.sizes.map((s) => `${label(s)} ${plans.get(s)?.buffers ?? "?"}`).join(", ")}.`,
  );
  ctx.note("The table is emptied at the end of the section, so later sections do not run against 1M rows.");
}

export const sweepScalingSection: Section = {
  name: "sweep-scaling",
  title: "one sweep with 1,000 due rows in tables of 10k, 100k and 1M rows",
  goal: "sweep time at 1M rows ≤ 1.5 × sweep time at 10k rows",
  run: sweepScaling,
};
