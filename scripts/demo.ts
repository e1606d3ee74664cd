/**
 * `npm run demo`: the whole service on this machine, against a fake Cal.com, as a tour.
 *
 * Starts the fake Cal.com (short-lived tokens, strict rotation), a fresh database, the worker and the
 * web process (Bull Board behind basic auth, with credentials generated and printed), seeds users
 * whose access tokens expire within a minute or two, and runs a request-path loop
 * (ensureValidCalToken → GET /v2/me → handleCalApiResponse) while printing a live progress line.
 * It prints the environment that points the CLI at its database and queues, and how to cause a
 * Cal.com outage to watch in Bull Board. Logs (JSON) go to a file, so the progress line stays whole.
 * Every user signs in at the start (one request path each) and the loop keeps them all in use, so the
 * worker keeps everyone fresh (the refresh policy keeps fresh the users seen within
 * KEEP_FRESH_WINDOW_SECONDS, docs/architecture.md#scheduling): requests should never see a 498 or
 * wait on a refresh. Ctrl-C (or DEMO_SECONDS) stops it and cleans up (the log file stays).
 *
 * Knobs (environment): DEMO_USERS (300), DEMO_SECONDS (180, 0 = until Ctrl-C), DEMO_PORT (3000, 0 =
 * any free port), DEMO_TTL_SECONDS (60–120 by default: "a,b"), DEMO_REDIS_URL, DEMO_LOG_FILE.
 */
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { loadConfig } from "../src/config/config.js";
import { createLogger } from "../src/log/logger.js";
import { createPrisma } from "../src/store/prisma.js";
import { createCalTokenClient } from "../src/wiring/cal-token-client.js";
import { startWebApp } from "../src/wiring/web-app.js";
import { startWorkerApp } from "../src/wiring/worker-app.js";
import { startFakeCalcom } from "../test/fakes/calcom/index.js";
import { deleteRedisKeys } from "../test/support/redis-keys.js";
import { seedManagedUser } from "../test/support/seed.js";
import { createTestDatabase, dropTestDatabase } from "../test/support/test-db.js";

const USERS = Number(process.env.DEMO_USERS ?? 300);
const SECONDS = Number(process.env.DEMO_SECONDS ?? 180);
const PORT = Number(process.env.DEMO_PORT ?? 3000);
const [TTL_MIN, TTL_MAX] = (process.env.DEMO_TTL_SECONDS ?? "60,120").split(",").map(Number) as [number, number];
const REDIS_URL = process.env.DEMO_REDIS_URL ?? "redis://127.0.0.1:6379";
const DB_NAME = `cal_token_demo_${process.pid}`;
const PREFIX = `ctwdemo${process.pid}`;
const LOG_FILE = process.env.DEMO_LOG_FILE ?? path.join(tmpdir(), `cal-token-demo-${process.pid}.log`);

const say = (line: string) => process.stdout.write(`${line}\n`);

/** What the CLI needs to see the demo's users and queues (printed as an `export` block). */
const CLI_KEYS = [
  "DATABASE_URL",
  "REDIS_URL",
  "QUEUE_PREFIX",
  "TOKEN_ENCRYPTION_KEYS",
  "CAL_API_URL",
  "CAL_CLIENT_ID",
  "CAL_CLIENT_SECRET",
  "CAL_OAUTH_CLIENT_ID",
  "CAL_OAUTH_CLIENT_SECRET",
] as const;

async function start() {
  const fake = await startFakeCalcom(); // Cal.com's own rate limits stay on
  const databaseUrl = await createTestDatabase(DB_NAME);
  const board = { username: "demo", password: randomBytes(12).toString("base64url") };
  const env: Record<string, string> = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: PREFIX,
    // A key for this run only: the tokens it protects are the fake's and die with the database.
    TOKEN_ENCRYPTION_KEYS: `demo:${randomBytes(32).toString("base64")}`,
    CAL_API_URL: fake.url,
    CAL_CLIENT_ID: "fake-client",
    CAL_CLIENT_SECRET: "fake-secret",
    CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
    CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
    SWEEP_INTERVAL_SECONDS: "5",
    ON_DEMAND_BUFFER_SECONDS: "5",
    WORKER_CONCURRENCY: "10",
    BULL_BOARD_USERNAME: board.username,
    BULL_BOARD_PASSWORD: board.password,
    PORT: String(PORT),
    LOG_LEVEL: "info",
  };
  const config = loadConfig(env);
  const logger = createLogger({ level: "info", destination: pino.destination({ dest: LOG_FILE, sync: true }) });
  const client = createCalTokenClient({ config, logger });
  const prisma = createPrisma(databaseUrl, { max: 2 });

  say(`fake Cal.com      ${fake.url}`);
  say(`database          ${DB_NAME} (dropped at exit)`);
  say(`logs (JSON)       ${LOG_FILE}   (kept at exit; tail -f it in another terminal)`);
  say(`seeding           ${USERS} managed users, access tokens expiring in ${TTL_MIN}–${TTL_MAX} s`);
  const users: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const ttlMs = (TTL_MIN + Math.random() * (TTL_MAX - TTL_MIN)) * 1000;
    users.push((await seedManagedUser(client, fake, { ttlMs })).userUlid);
  }
  // Each user signs in: a request path uses the token, which marks the user active.
  for (const userUlid of users) await client.ensureValidCalToken(userUlid);
  const worker = await startWorkerApp(config, { logger });
  const web = await startWebApp(config, { logger, host: "127.0.0.1", port: PORT }).catch(() =>
    startWebApp(config, { logger, host: "127.0.0.1", port: 0 }),
  );
  return { fake, env, config, logger, client, prisma, users, worker, web, board };
}

type Demo = Awaited<ReturnType<typeof start>>;

function printTour(d: Demo): void {
  say(`worker            running (concurrency ${d.config.workerConcurrency}, sweep every ${d.config.sweepIntervalMs / 1000} s)`);
  say(`Bull Board        ${d.web.boardUrl}   user ${d.board.username}   password ${d.board.password}`);
  say(`health, metrics   ${d.web.url}/healthz  ${d.web.url}/readyz  ${d.web.url}/metrics (board credentials)`);
  say("\nThe CLI against this demo (another terminal, while it runs):\n");
  for (const key of CLI_KEYS) say(`  export ${key}='${d.env[key]}'`);
  say("  npm run cli -- list --status ACTIVE");
  say("\nA Cal.com outage to watch in Bull Board (Failed fills after 8 failed attempts in a row, about 11 min):\n");
  say(`  curl -s -X POST ${d.fake.url}/__fake/faults -H 'content-type: application/json' -d '{"storm":{"durationMs":900000}}'`);
  say(`  curl -s -X POST ${d.fake.url}/__fake/faults -H 'content-type: application/json' -d '{"clear":true}'   # ends it`);
  say(`\nrunning           ${SECONDS > 0 ? `${SECONDS} s` : "until Ctrl-C"}\n`);
}

interface Counters {
  requests: number;
  ok: number;
  got498: number;
  waitedOnRefresh: number;
  errors: number;
}

/** The web app's request path, five users at a time, until `stopped()`. */
async function requestLoop(d: Demo, counters: Counters, stopped: () => boolean): Promise<void> {
  const me = (t: string) => fetch(`${d.fake.url}/v2/me`, { headers: { authorization: `Bearer ${t}` } });
  while (!stopped()) {
    const batch = Array.from({ length: 5 }, () => d.users[Math.floor(Math.random() * d.users.length)] as string);
    await Promise.all(
      batch.map(async (userUlid) => {
        const tok = await d.client.ensureValidCalToken(userUlid);
        counters.requests += 1;
        if (!tok.success || !tok.tokenInfo) {
          counters.errors += 1;
          return;
        }
        if (tok.refreshed) counters.waitedOnRefresh += 1;
        const first = await me(tok.tokenInfo.accessToken);
        if (first.status === 498) counters.got498 += 1;
        const res = await d.client.handleCalApiResponse(first, me, userUlid, { accessToken: tok.tokenInfo.accessToken });
        if (res.status === 200) counters.ok += 1;
        else counters.errors += 1;
      }),
    );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Refresh outcomes so far: users with at least one failed attempt are counted apart from the attempts. */
async function outcomes(d: Demo) {
  const failed = { outcome: "FAILED_TRANSIENT" } as const;
  const [refreshed, failedAttempts, failingUsers, reconnect, dueSoon] = await Promise.all([
    d.prisma.calTokenAudit.count({ where: { outcome: { in: ["REFRESHED", "FORCE_REFRESHED"] } } }),
    d.prisma.calTokenAudit.count({ where: failed }),
    d.prisma.calTokenAudit.findMany({ where: failed, distinct: ["userUlid"], select: { userUlid: true } }),
    d.prisma.calToken.count({ where: { status: "RECONNECT_REQUIRED" } }),
    d.prisma.calToken.count({ where: { nextRefreshAt: { lte: new Date(Date.now() + 30_000) } } }),
  ]);
  return { refreshed, failedAttempts, usersWithFailures: failingUsers.length, reconnect, dueSoon };
}

async function progress(d: Demo, counters: Counters, started: number): Promise<void> {
  const o = await outcomes(d);
  const t = Math.round((Date.now() - started) / 1000);
  const line =
    `t=${String(t).padStart(4)}s  users ${USERS}  refreshed ${o.refreshed}  due in 30 s ${o.dueSoon}  ` +
    `users with failures ${o.usersWithFailures} (failed attempts ${o.failedAttempts})  reconnect-required ${o.reconnect}  | ` +
    `requests ${counters.requests}  ok ${counters.ok}  498s ${counters.got498}  waited on refresh ${counters.waitedOnRefresh}`;
  process.stdout.write(process.stdout.isTTY ? `\r${line}   ` : `${line}\n`);
}

function untilStopped(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
    if (SECONDS > 0) setTimeout(resolve, SECONDS * 1000).unref();
  });
}

async function main(): Promise<void> {
  say("cal-token-worker demo — a fake Cal.com with strict rotation and short-lived tokens\n");
  const d = await start();
  printTour(d);
  const counters: Counters = { requests: 0, ok: 0, got498: 0, waitedOnRefresh: 0, errors: 0 };
  let stopping = false;
  const loop = requestLoop(d, counters, () => stopping);
  const started = Date.now();
  const ticker = setInterval(() => void progress(d, counters, started).catch(() => undefined), process.stdout.isTTY ? 1_000 : 10_000);
  await untilStopped();
  stopping = true;
  clearInterval(ticker);
  await loop;
  await progress(d, counters, started);
  const final = await outcomes(d);
  say("\n\nstopping…");
  const stats = d.fake.stats();
  await d.worker.close();
  await d.web.close();
  await d.client.close();
  await d.prisma.$disconnect();
  await d.fake.close();
  await dropTestDatabase(DB_NAME);
  await deleteRedisKeys(REDIS_URL, PREFIX);
  say(
    `Cal.com saw ${stats.refreshes} refreshes, ${stats.forceRefreshes} force-refreshes, ` +
      `${stats.deadRefreshTokenUses} uses of a dead refresh token, ${stats.status498} × 498, ${stats.status429} × 429.`,
  );
  say(`Refresh failures: ${final.usersWithFailures} users affected, ${final.failedAttempts} failed attempts in all.`);
  say(
    counters.got498 === 0 && counters.waitedOnRefresh === 0
      ? "No request met an expired token or waited on a refresh."
      : "Some requests met an expired token or waited on a refresh (see above).",
  );
  say(`Logs: ${LOG_FILE}`);
  process.exit(0);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  await dropTestDatabase(DB_NAME).catch(() => undefined);
  await deleteRedisKeys(REDIS_URL, PREFIX).catch(() => undefined);
  process.exit(1);
});
