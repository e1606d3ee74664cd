/**
 * Capacity simulation (issue 9, deliverable 3).
 *
 *   npx tsx bench/sim/run.ts [--users 100000[,1000000]] [--days 35] [--seed N] [--strategies a,b,c,d,dp]
 *                            [--windows] [--capacity] [--rate 450] [--plot docs/img/capacity.png | --no-plot] [--json FILE]
 *
 * Default: 100,000 and 1,000,000 users, 35 days, every strategy; prints Markdown on stdout (progress on
 * stderr) and writes the figure to docs/img/capacity.png. `--windows` adds the keep-fresh window
 * trade-off of d′ (at the first size); `--capacity` searches, per strategy, the largest
 * population one OAuth client serves (a grid, then bisection; about 20–30 minutes).
 */
import { writeFileSync } from "node:fs";
import { type RunResult, STRATEGIES, simulate, strategyById } from "./engine.js";
import { defaultParams, type SimParams } from "./params.js";
import { writePng, buildSvg } from "./plot.js";
import { buildPopulation } from "./population.js";
import {
  type CapacityRow,
  capacityTable,
  lostByWeek,
  measuredDays,
  parametersBlock,
  sizingTable,
  strategyTable,
  totalCalls,
  windowTable,
} from "./report.js";

interface Args {
  users: number[];
  days: number;
  seed: number | undefined;
  strategies: string[];
  windows: boolean;
  capacity: boolean;
  rate: number | undefined;
  plot: string | null;
  json: string | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    users: [100_000, 1_000_000],
    days: 35,
    seed: undefined,
    strategies: STRATEGIES.map((s) => s.id),
    windows: false,
    capacity: false,
    rate: undefined,
    plot: "docs/img/capacity.png",
    json: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = (argv[i] as string).split("=", 2) as [string, string | undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const num = (v: string) => {
      const x = Number(v.replace(/_/g, ""));
      if (!Number.isFinite(x) || x <= 0) throw new Error(`${flag}: not a positive number: ${v}`);
      return x;
    };
    if (flag === "--users") a.users = value().split(",").map(num).map(Math.round);
    else if (flag === "--days") a.days = Math.round(num(value()));
    else if (flag === "--seed") a.seed = Math.round(num(value()));
    else if (flag === "--strategies") a.strategies = value().split(",");
    else if (flag === "--windows") a.windows = true;
    else if (flag === "--capacity") a.capacity = true;
    else if (flag === "--rate") a.rate = Math.round(num(value()));
    else if (flag === "--plot") a.plot = value();
    else if (flag === "--no-plot") a.plot = null;
    else if (flag === "--json") a.json = value();
    else if (flag === "--help" || flag === "-h") {
      process.stdout.write(`${HELP}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${flag}`);
  }
  for (const s of a.strategies) strategyById(s);
  return a;
}

const HELP = `usage: npx tsx bench/sim/run.ts [--users 100000[,1000000]] [--days 35] [--seed N] [--strategies a,b,c,d,dp]
       [--windows] [--capacity] [--rate 450] [--plot docs/img/capacity.png | --no-plot] [--json FILE]`;

const progress = (s: string) => process.stderr.write(`sim: ${s}\n`);

function params(args: Args, users: number): SimParams {
  return defaultParams({
    users,
    days: args.days,
    ...(args.seed !== undefined ? { seed: args.seed } : {}),
    ...(args.rate !== undefined ? { ourPerMinute: args.rate, calcomPerMinute: Math.max(args.rate, 500) } : {}),
  });
}

function run(p: SimParams, id: string, pop = buildPopulation(p)): RunResult {
  const r = simulate(p, strategyById(id), pop);
  progress(
    `${id} @ ${p.users.toLocaleString("en-US")}: ${(r.wallMs / 1000).toFixed(1)} s, ${r.events.toLocaleString("en-US")} events, ` +
      `waited ${((100 * r.waited) / Math.max(1, r.requests)).toFixed(2)} %, lost ${r.lost}, calls/min ${r.perMinute.mean.toFixed(0)}`,
  );
  return r;
}

/** The capacity criteria (see the report's notes). */
function verdict(r: RunResult): { grants: boolean; requests: boolean; onTime: boolean } {
  const proactive = r.calls.keepFresh;
  return {
    grants: r.lost === 0 && r.atRisk === 0,
    requests: r.failedBudget <= 0.0001 * r.requests,
    onTime: proactive === 0 || r.keepFreshLate <= 0.01 * proactive,
  };
}

const GRID = [2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

function capacitySearch(args: Args, id: string): CapacityRow {
  const spec = strategyById(id);
  const results = new Map<number, ReturnType<typeof verdict>>();
  let runs = 0;
  const check = (n: number) => {
    const cached = results.get(n);
    if (cached) return cached;
    const v = verdict(run(params(args, n), id));
    runs++;
    results.set(n, v);
    return v;
  };
  const ok = (v: ReturnType<typeof verdict>) => v.grants && v.requests && v.onTime;
  // Walk the grid until every criterion has failed once (so each column has its own boundary).
  const failed = { grants: false, requests: false, onTime: false };
  let lastPass = 0;
  let firstFail = 0;
  for (const n of GRID) {
    const v = check(n);
    if (ok(v) && !firstFail) lastPass = n;
    else if (!firstFail) firstFail = n;
    failed.grants ||= !v.grants;
    failed.requests ||= !v.requests;
    failed.onTime ||= !v.onTime;
    if (failed.grants && failed.requests && failed.onTime) break;
  }
  if (firstFail && lastPass) {
    // Two geometric bisection steps between the last size that passed and the first that failed.
    let lo = lastPass;
    let hi = firstFail;
    for (let k = 0; k < 2; k++) {
      const mid = Math.round(Math.sqrt(lo * hi) / 1000) * 1000;
      if (mid <= lo || mid >= hi) break;
      if (ok(check(mid))) lo = mid;
      else hi = mid;
    }
    lastPass = lo;
    firstFail = hi;
  }
  const sizes = [...results.keys()].sort((a, b) => a - b);
  const upTo = (key: keyof ReturnType<typeof verdict>) => {
    const failing = sizes.find((n) => !(results.get(n) as ReturnType<typeof verdict>)[key]);
    if (failing === undefined) return `≥ ${sizes.at(-1)?.toLocaleString("en-US")} (largest tried)`;
    const below = sizes.filter((n) => n < failing).at(-1);
    return below === undefined
      ? `fails at ${failing.toLocaleString("en-US")}`
      : `${below.toLocaleString("en-US")} (fails at ${failing.toLocaleString("en-US")})`;
  };
  const capacity =
    lastPass === 0
      ? `none (fails at ${(firstFail || (GRID[0] as number)).toLocaleString("en-US")})`
      : firstFail
        ? `${lastPass.toLocaleString("en-US")}–${firstFail.toLocaleString("en-US")}`
        : `≥ ${lastPass.toLocaleString("en-US")}`;
  return { label: spec.label, grants: upTo("grants"), requests: upTo("requests"), onTime: upTo("onTime"), capacity, runs };
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${HELP}\n`);
    return 2;
  }
  const started = performance.now();
  const bySize = new Map<number, RunResult[]>();
  const out: string[] = [];
  const p0 = params(args, args.users[0] as number);
  out.push("## Capacity simulation", "", parametersBlock(p0), "");
  for (const n of args.users) {
    const p = params(args, n);
    const pop = buildPopulation(p);
    const results = args.strategies.map((id) => run(p, id, pop));
    bySize.set(n, results);
    out.push(`### ${n.toLocaleString("en-US")} users`, "", strategyTable(results, p), "");
    const lost = results.filter((r) => r.lost > 0);
    if (lost.length > 0) {
      out.push(...lost.map((r) => `- ${r.strategy.label}: grants lost by week: ${lostByWeek(r)}.`), "");
    }
  }
  const adopted = [...bySize.values()].flat().filter((r) => r.strategy.id === "dp");
  if (adopted.length > 0) {
    out.push(
      "### Sizing inputs (d′, this project)",
      "",
      sizingTable(adopted, p0),
      "",
      `Measured over ${measuredDays(p0)} days after warm-up; "worker jobs/min" counts every job the worker takes, including wakes that make no call (BullMQ's limiter counts those too).`,
      "",
    );
  }
  if (args.windows) {
    const p = params(args, args.users[0] as number);
    const pop = buildPopulation(p);
    const ids = ["dp-0m", "dp-1m", "dp-5m", "dp-15m", "dp-1h", "dp-4h", "dp-24h"];
    const results = ids.map((id) => run(p, id, pop));
    out.push(`### d′ keep-fresh window, ${p.users.toLocaleString("en-US")} users`, "", windowTable(results, p), "");
  }
  if (args.capacity) {
    const rows = args.strategies.map((id) => capacitySearch(args, id));
    out.push(
      "### Users one OAuth client serves",
      "",
      capacityTable(rows),
      "",
      "A size passes when, over the run: no OAuth2 grant is lost and no refresh-token deadline alert fires (a grant came within 24 h of its refresh token's expiry); request paths refused for want of budget ≤ 0.01 %; proactive refreshes made after the token entered the on-demand buffer ≤ 1 % of them. Grid 2k…1M (walked until every criterion has failed once), then two geometric bisection steps on the first failure.",
      "",
    );
  }
  if (args.plot) {
    const svg = buildSvg(bySize, p0);
    await writePng(svg, args.plot);
    progress(`figure written to ${args.plot}`);
  }
  if (args.json) {
    const plain = [...bySize.entries()].map(([n, rs]) => ({
      users: n,
      results: rs.map(({ series, waitSeries, lostByDay, ...rest }) => ({
        ...rest,
        totalCalls: totalCalls(rest as RunResult),
        lostByDay: [...lostByDay],
      })),
    }));
    writeFileSync(args.json, JSON.stringify(plain, null, 2));
  }
  out.push(`_Simulated in ${((performance.now() - started) / 1000).toFixed(0)} s._`);
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
