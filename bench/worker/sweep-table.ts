/**
 * sweep-scaling, the table: its parameters, the bulk fill of cal_token and the EXPLAIN of the sweep's
 * due query. The section itself is in sweep-scaling.ts.
 */
import type pg from "pg";

export const SW = {
  sizes: [10_000, 100_000, 1_000_000],
  due: 1_000,
  runs: 5,
  pageSize: 500,
};

/** Lehmer-style scatter: i ↦ i·A mod (2^31 − 1) is a bijection, so every row gets its own time slot. */
export const SCATTER_A = 742_938_285;
const SCATTER_P = 2_147_483_647;

/** Same text as src/store/due-query.ts findDuePage (first page), for EXPLAIN. */
export const DUE_SQL = `SELECT user_ulid AS "userUlid", kind::text AS "kind", next_refresh_at AS "nextRefreshAt", last_used_at AS "lastUsedAt"
    FROM cal_token
    WHERE status = 'ACTIVE'::"CalTokenStatus"
      AND (next_refresh_at, user_ulid) > ($1::timestamptz, $2::char(26))
      AND next_refresh_at <= $3::timestamptz
    ORDER BY next_refresh_at, user_ulid
    LIMIT $4::int`;

interface PlanNode {
  "Node Type": string;
  "Index Name"?: string;
  "Shared Hit Blocks"?: number;
  "Shared Read Blocks"?: number;
  "Actual Rows"?: number;
  Plans?: PlanNode[];
}

export interface PlanInfo {
  reads: number;
  custom: string;
  generic: string;
  buffers: number;
  execMs: number;
  indexOk: boolean;
}

function planChain(node: PlanNode): string {
  const parts: string[] = [];
  for (let n: PlanNode | undefined = node; n; n = n.Plans?.[0])
    parts.push(n["Index Name"] ? `${n["Node Type"]} on ${n["Index Name"]}` : n["Node Type"]);
  return parts.join(" → ");
}

function usesIndex(node: PlanNode, name: string): boolean {
  return node["Index Name"] === name || (node.Plans ?? []).some((p) => usesIndex(p, name));
}

/**
 * Rows from+1..to. next_refresh_at = base + (i·A mod P) ms: a pseudo-random permutation, so the
 * earliest rows (the due ones) are scattered over the whole heap at every size, as in a real table.
 * 1 % RECONNECT_REQUIRED; a quarter never used, the rest used within the last 40 days.
 */
export async function fillRows(sql: pg.Client, from: number, to: number, accessEnc: string, refreshEnc: string, base: Date): Promise<void> {
  await sql.query(
    `INSERT INTO cal_token (user_ulid, kind, cal_user_id, access_token_enc, refresh_token_enc, access_token_expires_at,
         refresh_token_expires_at, status, last_refreshed_at, next_refresh_at, last_used_at)
       SELECT lpad(upper(to_hex(i)), 26, '0'), 'managed', i, $3, $4,
              $5::timestamptz + ((i::bigint * ${SCATTER_A}) % ${SCATTER_P}) * interval '1 millisecond' + interval '10 minutes',
              $5::timestamptz + interval '365 days',
              (CASE WHEN i % 100 = 42 THEN 'RECONNECT_REQUIRED' ELSE 'ACTIVE' END)::"CalTokenStatus",
              $5::timestamptz - interval '50 minutes',
              $5::timestamptz + ((i::bigint * ${SCATTER_A}) % ${SCATTER_P}) * interval '1 millisecond',
              CASE WHEN i % 4 = 0 THEN NULL ELSE $5::timestamptz - ((i::bigint * 7919) % 3456000000) * interval '1 millisecond' END
       FROM generate_series($1::int, $2::int) AS i`,
    [from + 1, to, accessEnc, refreshEnc, base.toISOString()],
  );
  await sql.query("VACUUM ANALYZE cal_token");
}

/** EXPLAIN ANALYZE of the first page (custom plan) and EXPLAIN of the generic plan a prepared statement gets. */
export async function explainDue(sql: pg.Client, dueUntil: Date): Promise<PlanInfo> {
  const params = [new Date(0).toISOString(), "", dueUntil.toISOString(), SW.pageSize];
  const custom = await sql.query<{ "QUERY PLAN": [{ Plan: PlanNode; "Execution Time": number }] }>(
    `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${DUE_SQL}`,
    params,
  );
  const cPlan = custom.rows[0]?.["QUERY PLAN"][0];
  if (!cPlan) throw new Error("no plan");
  const blocks = (n: PlanNode): number => (n["Shared Hit Blocks"] ?? 0) + (n["Shared Read Blocks"] ?? 0);
  await sql.query("SET plan_cache_mode = force_generic_plan");
  await sql.query(`PREPARE bench_due(timestamptz, char(26), timestamptz, int) AS ${DUE_SQL}`);
  const literals = params.map((p) => (typeof p === "number" ? String(p) : sql.escapeLiteral(p))).join(", ");
  const generic = await sql.query<{ "QUERY PLAN": [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) EXECUTE bench_due(${literals})`);
  await sql.query("DEALLOCATE bench_due");
  await sql.query("RESET plan_cache_mode");
  const gPlan = generic.rows[0]?.["QUERY PLAN"][0];
  return {
    reads: cPlan.Plan["Shared Read Blocks"] ?? 0,
    custom: planChain(cPlan.Plan),
    generic: gPlan ? planChain(gPlan.Plan) : "?",
    buffers: blocks(cPlan.Plan),
    execMs: cPlan["Execution Time"],
    indexOk: usesIndex(cPlan.Plan, "cal_token_due_idx") && (gPlan ? usesIndex(gPlan.Plan, "cal_token_due_idx") : false),
  };
}
