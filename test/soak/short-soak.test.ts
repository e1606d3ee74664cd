/**
 * The chaos soak's short variant (scripts/soak, `npm run soak -- --short`): 200 users of both kinds,
 * two real worker processes, ~85 s of request-path traffic and the same faults as the full soak,
 * compressed (kill -9 every ~10 s, a Redis restart, Postgres cut, Cal.com unreachable, 5 % 5xx, 1 %
 * drops after commit, a 429 storm). It asserts the pass rule, not timings; the report is written to
 * the run's artifacts directory (kept with KEEP_TEST_ARTIFACTS). Everything the soak starts is gone
 * afterwards, whatever happened: its processes, its database, its redis-server (and so its keys).
 */
import { writeFileSync } from "node:fs";
import { connect } from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { analyse } from "../../scripts/soak/analyse.js";
import { defaultOptions } from "../../scripts/soak/options.js";
import { renderReport } from "../../scripts/soak/report.js";
import { runSoak, type SoakResult } from "../../scripts/soak/soak.js";
import { testLogger } from "../support/log-sink.js";
import { ADMIN_URL } from "../support/test-db.js";

const TIMEOUT_MS = 200_000;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it(
  "short chaos soak: no managed user lost, OAuth2 users lost only to rotations that never reached us, no extra dead refresh token, no request-path wait outside a fault window",
  async () => {
    // Stop well before Jest's timeout, so the soak's own clean-up runs even then.
    const abort = new AbortController();
    const guard = setTimeout(() => abort.abort(), TIMEOUT_MS - 40_000);
    const t0 = Date.now();
    let result: SoakResult;
    try {
      result = await runSoak(defaultOptions(true), {
        logger: testLogger().logger,
        progress: (line) => process.stderr.write(`short soak: ${line}\n`),
        signal: abort.signal,
      });
    } finally {
      clearTimeout(guard);
    }
    const analysis = analyse(result);
    const report = renderReport(result, analysis);
    if (process.env.TEST_ARTIFACTS_DIR) writeFileSync(path.join(process.env.TEST_ARTIFACTS_DIR, "short-soak-report.md"), report);
    process.stderr.write(
      `short soak: ${Math.round((Date.now() - t0) / 1000)} s in all (setup ${Math.round(result.setupMs / 1000)} s, traffic ${Math.round(result.trafficMs / 1000)} s); ` +
        `${analysis.passed ? "PASS" : "FAIL"}\n`,
    );

    // It really was a chaos run.
    expect(result.kills.length).toBeGreaterThanOrEqual(3);
    expect(result.faults.map((f) => f.kind)).toEqual(
      expect.arrayContaining(["redis-restart", "postgres-cut", "calcom-unreachable", "rate-limit-storm", "worker-kill"]),
    );
    expect(result.traffic.requests).toBeGreaterThan(1_000);
    expect(result.fake.refreshes + result.fake.oauth2Refreshes).toBeGreaterThan(200);

    // Everything it started is gone: processes, database, redis-server; nothing under its prefix in the shared Redis.
    expect(result.resources.pids.filter(alive)).toEqual([]);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      const dbs = await admin.query("SELECT datname FROM pg_database WHERE datname = $1", [result.resources.database]);
      expect(dbs.rowCount).toBe(0);
    } finally {
      await admin.end();
    }
    const ownPort = Number(new URL(result.resources.redisUrl).port);
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(ownPort, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        resolve(false);
      });
      s.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
    const shared = new Redis(process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 1 });
    try {
      const keys: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await shared.scan(cursor, "MATCH", "ctwsoak*", "COUNT", 1_000);
        keys.push(...batch);
        cursor = next;
      } while (cursor !== "0");
      expect(keys).toEqual([]);
    } finally {
      await shared.quit();
    }

    // The pass rule (the report says why when it fails).
    const broken = analysis.rules.filter((r) => !r.ok).map((r) => `${r.rule}: ${r.detail}`);
    if (broken.length > 0) process.stderr.write(report);
    expect(broken).toEqual([]);
  },
  TIMEOUT_MS,
);
