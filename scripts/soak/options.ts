/**
 * What one soak run does: its size, its traffic, its faults and the settings the processes run with.
 * `--short` is the compressed variant `npm test` runs (test/soak/short-soak.test.ts).
 */

export interface SoakOptions {
  /** Users seeded at Cal.com and through saveCalTokens. */
  users: number;
  /** Share of them that are OAuth2 users (the rest are managed users with a Cal.com user id). */
  oauth2Share: number;
  /** How long request-path traffic runs (faults happen in its first part, then a quiet tail). */
  trafficSeconds: number;
  /** The quiet tail at the end: no fault starts in it, and every user refreshes at least once in it. */
  tailSeconds: number;
  /** Access-token lifetimes, drawn uniformly per user (kept by the fake for every later rotation). */
  ttlSeconds: [number, number];
  /** Request-path calls per second (ensureValidCalToken → GET /v2/me → handleCalApiResponse). */
  requestsPerSecond: number;
  /** A request path that spends longer than this in the module is counted as a slow wait. */
  slowMs: number;
  /** Whether a slow wait outside every fault window fails the run (timings; off for the short variant). */
  slowCountsAsViolation: boolean;
  /** Added by the fake before it answers a token call (the rotation commits after it). */
  calcomLatencyMs: number;
  /** Share of token calls answered 5xx before anything is rotated. */
  errorRate: number;
  /** Share of token calls whose connection is dropped after the rotation committed. */
  dropRate: number;
  /** A worker process is killed (SIGKILL) about this often and restarted at once. */
  killEverySeconds: number;
  /** Postgres refuses connections this long. */
  postgresCutSeconds: number;
  /** Cal.com is unreachable this long. */
  calcomOutageSeconds: number;
  /** Seconds the Cal.com outage starts before the Postgres cut ends (the two overlap). */
  outageOverlapSeconds: number;
  /** Redis is down this long, then comes back empty. */
  redisDownSeconds: number;
  /** Every token call answered 429 this long… */
  rateLimitStormSeconds: number;
  /** …with this X-RateLimit-Reset-Default. */
  rateLimitResetSeconds: number;
  /** Worker and client settings (environment variables) for this run. */
  env: Record<string, string>;
  short: boolean;
}

const FULL_ENV: Record<string, string> = {
  SWEEP_INTERVAL_SECONDS: "5",
  ON_DEMAND_BUFFER_SECONDS: "5",
  ON_DEMAND_WAIT_MS: "2000",
  WORKER_CONCURRENCY: "10",
  // Tokens live 1–3 minutes here, not an hour: 2,000 users need ~1,700 token calls a minute, far above
  // Cal.com's 500/min per client (which the fake does not enforce in a soak) and the 450/min default.
  CAL_REFRESH_RATE_PER_MINUTE: "6000",
  CAL_HTTP_TIMEOUT_MS: "3000",
  REFRESH_LEASE_SECONDS: "3",
  MIN_REFRESH_INTERVAL_SECONDS: "20",
  LOG_LEVEL: "info",
};

export function defaultOptions(short: boolean): SoakOptions {
  if (short) {
    return {
      users: 200,
      oauth2Share: 0.5,
      trafficSeconds: 85,
      tailSeconds: 45,
      ttlSeconds: [30, 50],
      requestsPerSecond: 60,
      slowMs: 1_000,
      slowCountsAsViolation: false,
      calcomLatencyMs: 100,
      errorRate: 0.05,
      dropRate: 0.01,
      killEverySeconds: 10,
      postgresCutSeconds: 6,
      calcomOutageSeconds: 8,
      outageOverlapSeconds: 2,
      redisDownSeconds: 2,
      rateLimitStormSeconds: 4,
      rateLimitResetSeconds: 5,
      env: { ...FULL_ENV, CAL_HTTP_TIMEOUT_MS: "2000", MIN_REFRESH_INTERVAL_SECONDS: "10", CAL_REFRESH_RATE_PER_MINUTE: "3000" },
      short: true,
    };
  }
  return {
    users: 2_000,
    oauth2Share: 0.5,
    trafficSeconds: 600,
    tailSeconds: 140,
    ttlSeconds: [60, 180],
    requestsPerSecond: 200,
    slowMs: 1_000,
    slowCountsAsViolation: true,
    calcomLatencyMs: 150,
    errorRate: 0.05,
    dropRate: 0.01,
    killEverySeconds: 20,
    postgresCutSeconds: 10,
    calcomOutageSeconds: 15,
    outageOverlapSeconds: 5,
    redisDownSeconds: 3,
    rateLimitStormSeconds: 8,
    rateLimitResetSeconds: 10,
    env: { ...FULL_ENV },
    short: false,
  };
}

export interface CliArgs {
  options: SoakOptions;
  /** Also write the report to docs/soak-report.md. */
  write: boolean;
  /** Where the report file goes (always written; default a file in the run's directory). */
  out: string | undefined;
  keepArtifacts: boolean;
  /** Judge a kept run's result.json again instead of running. */
  from: string | undefined;
}

export const USAGE = [
  "usage: npx tsx scripts/soak/run.ts [--users N] [--minutes M] [--short] [--rps R] [--write] [--out FILE] [--keep]",
  "  --users N     users to seed (default 2000; --short: 200)",
  "  --minutes M   minutes of traffic (default 10; faults in the first part, then a quiet tail)",
  "  --short       the compressed variant npm test runs (≈ 85 s of traffic, 200 users)",
  "  --rps R       request-path calls per second (default 200; --short: 60)",
  "  --write       also write the report to docs/soak-report.md",
  "  --out FILE    write the report to FILE (default: the run's directory under the system temp dir)",
  "  --keep        keep the run's directory (logs, result.json) after the run",
  "  --from FILE   print the report of a kept run's result.json again (no run)",
].join("\n");

function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (raw === undefined || !Number.isFinite(n) || n <= 0) throw new Error(`${name} needs a positive number`);
  return n;
}

export function parseArgs(argv: string[]): CliArgs {
  const short = argv.includes("--short");
  const options = defaultOptions(short);
  let write = false;
  let out: string | undefined;
  let keepArtifacts = false;
  let from: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.includes("=") ? (arg.split("=", 2) as [string, string]) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--short":
        break;
      case "--users":
        options.users = Math.round(positive("--users", value()));
        break;
      case "--minutes":
        options.trafficSeconds = Math.round(positive("--minutes", value()) * 60);
        break;
      case "--rps":
        options.requestsPerSecond = positive("--rps", value());
        break;
      case "--write":
        write = true;
        break;
      case "--out":
        out = value();
        if (!out) throw new Error("--out needs a file name");
        break;
      case "--keep":
        keepArtifacts = true;
        break;
      case "--from":
        from = value();
        if (!from) throw new Error("--from needs a file name");
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  // The tail must let every user refresh once after the last fault (refreshes happen at 50–70 % of a
  // lifetime), so a lost rotation of a managed user is repaired before the final check.
  options.tailSeconds = Math.max(options.tailSeconds, Math.ceil(0.7 * options.ttlSeconds[1]) + 10);
  if (options.trafficSeconds < options.tailSeconds + 40) {
    throw new Error(
      `--minutes too small: traffic must last at least ${options.tailSeconds + 40} s (faults, then a ${options.tailSeconds} s tail)`,
    );
  }
  return { options, write, out, keepArtifacts, from };
}
