/**
 * `npm run demo`: the whole service on this machine, against a fake Cal.com.
 *
 * Starts the fake Cal.com (short-lived tokens, strict rotation), a fresh database, the worker and the
 * web process (Bull Board), seeds users whose access tokens expire within a minute or two, and runs a
 * request-path loop (ensureValidCalToken → GET /v2/me → handleCalApiResponse) while printing a live
 * progress line. The worker keeps everyone fresh: requests should never see a 498 or wait on a
 * refresh. Ctrl-C (or DEMO_SECONDS) stops it and cleans up.
 *
 * Knobs (environment): DEMO_USERS (300), DEMO_SECONDS (180, 0 = until Ctrl-C), DEMO_PORT (3000),
 * DEMO_TTL_SECONDS (60–120 by default: "a,b").
 */
import { randomBytes } from "node:crypto";
import { loadConfig } from "../src/config/config.js";
import { createLogger } from "../src/log/logger.js";
import { startWebApp } from "../src/wiring/web-app.js";
import { startWorkerApp } from "../src/wiring/worker-app.js";
import { createCalTokenClient } from "../src/wiring/cal-token-client.js";
import { createPrisma } from "../src/store/prisma.js";
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

const say = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<void> {
  say("cal-token-worker demo — a fake Cal.com with strict rotation and short-lived tokens\n");
  const fake = await startFakeCalcom(); // Cal.com's own rate limits stay on
  const databaseUrl = await createTestDatabase(DB_NAME);
  const env = {
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    CAL_API_URL: fake.url,
    CAL_CLIENT_ID: "fake-client",
    CAL_CLIENT_SECRET: "fake-secret",
    CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
    CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
    TOKEN_ENCRYPTION_KEYS: `demo:${randomBytes(32).toString("base64")}`,
    QUEUE_PREFIX: PREFIX,
    SWEEP_INTERVAL_SECONDS: "5",
    ON_DEMAND_BUFFER_SECONDS: "5",
    WORKER_CONCURRENCY: "10",
    PORT: String(PORT),
    LOG_LEVEL: "warn",
  };
  const config = loadConfig(env);
  // Logs go to stderr at warn level so the progress line stays readable; nothing here prints tokens.
  const logger = createLogger({
    level: "warn",
    destination: process.stderr as unknown as NodeJS.WritableStream & { write: (s: string) => boolean },
  });
  const client = createCalTokenClient({ config, logger });
  const prisma = createPrisma(databaseUrl, { max: 2 });

  say(`fake Cal.com      ${fake.url}`);
  say(`database          ${DB_NAME} (dropped at exit)`);
  say(`seeding           ${USERS} managed users, access tokens expiring in ${TTL_MIN}–${TTL_MAX} s`);
  const users: string[] = [];
  for (let i = 0; i < USERS; i++) {
    const ttlMs = (TTL_MIN + Math.random() * (TTL_MAX - TTL_MIN)) * 1000;
    users.push((await seedManagedUser(client, fake, { ttlMs })).userUlid);
  }

  const worker = await startWorkerApp(config, { logger });
  let web: Awaited<ReturnType<typeof startWebApp>>;
  try {
    web = await startWebApp(config, { logger, host: "127.0.0.1", port: PORT, allowUnauthenticatedBoard: true });
  } catch {
    web = await startWebApp(config, { logger, host: "127.0.0.1", port: 0, allowUnauthenticatedBoard: true });
  }
  say(`worker            running (concurrency ${config.workerConcurrency}, sweep every ${config.sweepIntervalMs / 1000} s)`);
  say(`Bull Board        ${web.boardUrl}   (queue "token-refresh")`);
  say(`health, metrics   ${web.url}/healthz  ${web.url}/readyz  ${web.url}/metrics`);
  say(`running           ${SECONDS > 0 ? `${SECONDS} s` : "until Ctrl-C"}\n`);

  const counters = { requests: 0, ok: 0, got498: 0, waitedOnRefresh: 0, errors: 0 };
  let stopping = false;
  const me = (t: string) => fetch(`${fake.url}/v2/me`, { headers: { authorization: `Bearer ${t}` } });
  const requestLoop = (async () => {
    while (!stopping) {
      const batch = Array.from({ length: 5 }, () => users[Math.floor(Math.random() * users.length)] as string);
      await Promise.all(
        batch.map(async (userUlid) => {
          const tok = await client.ensureValidCalToken(userUlid);
          counters.requests += 1;
          if (!tok.success || !tok.tokenInfo) {
            counters.errors += 1;
            return;
          }
          if (tok.refreshed) counters.waitedOnRefresh += 1;
          const first = await me(tok.tokenInfo.accessToken);
          if (first.status === 498) counters.got498 += 1;
          const res = await client.handleCalApiResponse(first, me, userUlid, { accessToken: tok.tokenInfo.accessToken });
          if (res.status === 200) counters.ok += 1;
          else counters.errors += 1;
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const started = Date.now();
  const progress = async () => {
    const [refreshed, failures, reconnect, dueSoon] = await Promise.all([
      prisma.calTokenAudit.count({ where: { outcome: { in: ["REFRESHED", "FORCE_REFRESHED"] } } }),
      prisma.calTokenAudit.count({ where: { outcome: "FAILED_TRANSIENT" } }),
      prisma.calToken.count({ where: { status: "RECONNECT_REQUIRED" } }),
      prisma.calToken.count({ where: { nextRefreshAt: { lte: new Date(Date.now() + 30_000) } } }),
    ]);
    const t = Math.round((Date.now() - started) / 1000);
    const line =
      `t=${String(t).padStart(4)}s  users ${USERS}  refreshed ${refreshed}  due in 30 s ${dueSoon}  failures ${failures}  ` +
      `reconnect-required ${reconnect}  | requests ${counters.requests}  ok ${counters.ok}  498s ${counters.got498}  ` +
      `waited on refresh ${counters.waitedOnRefresh}`;
    process.stdout.write(process.stdout.isTTY ? `\r${line}   ` : `${line}\n`);
  };
  const ticker = setInterval(() => void progress(), process.stdout.isTTY ? 1_000 : 10_000);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    if (SECONDS > 0) setTimeout(stop, SECONDS * 1000).unref();
  });
  stopping = true;
  clearInterval(ticker);
  await requestLoop;
  await progress();
  say("\n\nstopping…");
  const stats = fake.stats();
  await worker.close();
  await web.close();
  await client.close();
  await prisma.$disconnect();
  await fake.close();
  await dropTestDatabase(DB_NAME);
  await deleteRedisKeys(REDIS_URL, PREFIX);
  say(
    `Cal.com saw ${stats.refreshes} refreshes, ${stats.forceRefreshes} force-refreshes, ` +
      `${stats.deadRefreshTokenUses} uses of a dead refresh token, ${stats.status498} × 498, ${stats.status429} × 429.`,
  );
  say(
    counters.got498 === 0 && counters.waitedOnRefresh === 0
      ? "No request met an expired token or waited on a refresh."
      : "Some requests met an expired token or waited on a refresh (see above).",
  );
  process.exit(0);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  await dropTestDatabase(DB_NAME).catch(() => undefined);
  process.exit(1);
});
