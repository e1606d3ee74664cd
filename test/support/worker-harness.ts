/**
 * Runs the real worker against the run's Postgres, Redis and a fake Cal.com: in-process (fast,
 * inspectable) or as a child process (for kill -9 / SIGTERM). Each test file uses its own queue prefix.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import path from "node:path";
import { loadConfig } from "../../src/config/config.js";
import { startWorkerApp, type WorkerApp, type WorkerAppOptions } from "../../src/wiring/worker-app.js";
import { testLogger } from "./log-sink.js";
import type { Harness } from "./harness.js";

export function uniquePrefix(): string {
  return `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}w${randomBytes(3).toString("hex")}`;
}

/**
 * Worker settings for tests: 1 s sweeps, short retries, a small on-demand buffer. Pass the harness
 * (its own database, see startHarness's ownDatabase) so the worker and the test share rows.
 */
export function workerEnv(h: Harness, prefix: string, overrides: Record<string, string> = {}): Record<string, string> {
  return h.env({
    QUEUE_PREFIX: prefix,
    SWEEP_INTERVAL_SECONDS: "1",
    ON_DEMAND_BUFFER_SECONDS: "3",
    WORKER_CONCURRENCY: "10",
    CAL_HTTP_TIMEOUT_MS: "2000",
    REFRESH_LEASE_SECONDS: "10",
    // Test tokens live seconds, not an hour: the 450/min default budget is below their refresh demand.
    CAL_REFRESH_RATE_PER_MINUTE: "3000",
    // …and they are refreshed every few seconds, below the 30 s default minimum interval.
    MIN_REFRESH_INTERVAL_SECONDS: "1",
    // The refresh policy (docs/architecture.md#scheduling) keeps fresh only users a request path used
    // within this window; a test makes its users active once (`useTokens`) and they stay so for the
    // whole test. Users never used are idle: parked (managed) or kept alive only near the 30-day
    // refresh-token expiry (OAuth2), so the worker makes no call for them.
    KEEP_FRESH_WINDOW_SECONDS: "600",
    ...overrides,
  });
}

/**
 * Makes users active the way the web app does: a request path uses each token (ensureValidCalToken),
 * which records last_used_at. Through a client with no on-demand buffer, so a seconds-long token is
 * used, not refreshed inline (that would be a refresh the test did not ask for). Waits until every
 * write landed (it is not awaited on the request path).
 */
export async function useTokens(h: Harness, users: readonly { userUlid: string }[]): Promise<void> {
  const client = h.newClient({ ON_DEMAND_BUFFER_SECONDS: "0" });
  for (const u of users) {
    const res = await client.ensureValidCalToken(u.userUlid);
    if (!res.success || res.refreshed) throw new Error(`useTokens: ${res.success ? "refreshed inline" : res.error?.code}`);
  }
  const ids = users.map((u) => u.userUlid);
  const recorded = () => h.db.calToken.count({ where: { userUlid: { in: ids }, lastUsedAt: { not: null } } });
  if (!(await eventually(async () => (await recorded()) === ids.length, 10_000, 50))) {
    throw new Error(`useTokens: last_used_at recorded for ${await recorded()} of ${ids.length} users`);
  }
}

export async function startWorker(env: Record<string, string>, opts: Partial<WorkerAppOptions> = {}): Promise<WorkerApp> {
  return startWorkerApp(loadConfig(env), { logger: testLogger().logger, retryBaseMs: 200, watchdogStallMs: 0, ...opts });
}

export interface WorkerProcess {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Resolves once the worker logged that it started. */
  started: Promise<void>;
  /** Everything the process printed on stdout so far (JSON log lines). */
  output(): string;
}

const WORKER_MAIN = path.resolve(import.meta.dirname, "../../src/main/worker.ts");

/** The real entry point (src/main/worker.ts) in its own process; its logs go to the run's log file. */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ["--import", "tsx", WORKER_MAIN], {
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logFile = process.env.TEST_LOG_FILE;
  let buffered = "";
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      const text = d.toString();
      if (logFile) appendFileSync(logFile, text);
      buffered += text;
      if (buffered.includes("worker started")) resolve();
    });
    child.on("exit", () => reject(new Error(`worker exited before starting: ${buffered.slice(-2000)}`)));
  });
  started.catch(() => undefined);
  child.stderr!.on("data", (d: Buffer) => {
    if (logFile) appendFileSync(logFile, d.toString());
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })),
  );
  return { child, exited, started, output: () => buffered };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or the timeout passes; returns whether it became true. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return check();
}
