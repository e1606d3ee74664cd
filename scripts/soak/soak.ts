/**
 * One chaos soak: its own Postgres database (reached through a TCP proxy), its own redis-server, the
 * fake Cal.com in-process (which reports every token call and what became of its answer), N users of
 * both kinds with short tokens, two real worker processes, request-path traffic through
 * createCalTokenClient, and the fault schedule of plan.ts. Returns everything it observed (analyse.ts
 * judges it, report.ts prints it).
 *
 * Everything it starts is stopped in `finally`, whatever happened: the workers (SIGTERM, then
 * SIGKILL), the redis-server, the proxy and the fake; the database is dropped and the Redis keys go
 * with the redis-server (no persistence). A process `exit` hook SIGKILLs any child still alive.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, type WriteStream } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { ulid } from "ulid";
import { loadConfig } from "../../src/config/config.js";
import { createLogger, type Logger } from "../../src/log/logger.js";
import { webConnection } from "../../src/queue/connection.js";
import { QUEUES } from "../../src/queue/names.js";
import { createPrisma, type PrismaClient } from "../../src/store/prisma.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";
import { createTokenStore } from "../../src/store/token-store.js";
import { createCalTokenClient, type CalTokenClient } from "../../src/wiring/cal-token-client.js";
import { startFakeCalcom, type FakeCalcom, type FakeStats, type TokenCallRecord } from "../../test/fakes/calcom/index.js";
import { startTcpProxy, viaProxy, type TcpProxy } from "../../test/support/tcp-proxy.js";
import { ADMIN_URL, createTestDatabase, dropTestDatabase } from "../../test/support/test-db.js";
import { startInjector, type Injector } from "./faults.js";
import { createFleet, type Fleet, type UnexpectedExit, type WorkerKill } from "./fleet.js";
import type { SoakOptions } from "./options.js";
import { buildPlan, type FaultPlan, type ScheduledFault } from "./plan.js";
import { startOwnRedis, type OwnRedis } from "./redis-server.js";
import { startTraffic, type SoakUser, type Traffic, type TrafficResult } from "./traffic.js";

export const SOAK_ENCRYPTION_KEYS = `soak1:${Buffer.alloc(32, 9).toString("base64")}`;
const QUEUE_PREFIX = "ctwsoak";

/** A fault as it really happened (milliseconds from the start of traffic). */
export interface ExecutedFault {
  kind: ScheduledFault["kind"];
  start: number;
  /** When the fault itself was over (restored, restarted). */
  faultEnd: number;
  detail: string;
  /** For a worker kill: the users whose refresh job was running when it was killed (undefined: unknown). */
  users?: string[];
  /** For a worker kill: the killed process's connections to Cal.com (their local ports). */
  calcomPorts?: number[];
  /** For a worker kill: its last log lines, as [ms from the start of traffic, message, user] (no secrets: log lines carry none). */
  lastLines?: [number, string, string][];
}

/** A token call as the fake saw it, with its times made relative to the start of traffic. */
export interface CallSeen {
  route: TokenCallRecord["route"];
  /** The caller's port (which process made the call). */
  port?: number;
  outcome: TokenCallRecord["outcome"];
  delivery: TokenCallRecord["delivery"];
  fault?: string;
  /** Our user, when the fake could name the Cal.com user and it is one of ours. */
  userUlid?: string;
  arrived: number;
  answered: number;
  closed?: number;
}

export interface FinalRow {
  userUlid: string;
  kind: "managed" | "oauth2";
  status: "ACTIVE" | "RECONNECT_REQUIRED";
  version: number;
  rotationUncertain: boolean;
  failureCount: number;
  lastFailureCode: string | null;
  /** The stored refresh token is the one Cal.com holds live for the user. */
  refreshTokenLive: boolean;
}

export interface AuditRow {
  userUlid: string;
  outcome: string;
  trigger: string;
  errorCode: string | null;
  /** Milliseconds from the start of traffic. */
  t: number;
}

export interface SoakResult {
  options: SoakOptions;
  plan: FaultPlan;
  /** The settings every process ran with (no secrets). */
  settings: Record<string, string>;
  startedAt: Date;
  /** Date.now() at the start of traffic; every `t` is relative to it. */
  t0: number;
  setupMs: number;
  trafficMs: number;
  totalMs: number;
  machine: { cores: number; cpu: string; node: string; postgres: string; loadStart: number; loadEnd: number };
  users: SoakUser[];
  faults: ExecutedFault[];
  kills: WorkerKill[];
  unexpectedExits: UnexpectedExit[];
  workerStartMs: number[];
  /** Every token call the fake answered (or found its caller gone). */
  calls: CallSeen[];
  traffic: TrafficResult;
  injected: Injector["injected"];
  rows: FinalRow[];
  audits: AuditRow[];
  fake: FakeStats;
  heldPairsAtEnd: number | null;
  queueAtEnd: Record<string, number> | null;
  /** The refresh queue's job counts, read every second during the traffic (a missing second: Redis did not answer). */
  queueSamples?: { t: number; active: number; waiting: number; prioritized: number; delayed: number }[];
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Times this process's event loop was blocked for more than 150 ms (t from the start of traffic). */
  stalls: { t: number; ms: number }[];
  /** Standalone runs only (under Jest the suite's own scan covers the logs). */
  secretScan?: { tokens: number; logBytes: number; leaked: number };
  /**
   * Source files (src/, jobs/) changed while the run was going: a worker restarted after such a change
   * ran other code than the first ones did (workers run the sources through tsx).
   */
  sourcesChanged?: string[];
  logDir: string;
  /** What the run created, so a caller can check it is all gone. */
  resources: { database: string; redisUrl: string; pids: number[] };
}

export interface SoakIo {
  /** Logger of the soak's own client (default: JSON lines to client.ndjson in the run's directory). */
  logger?: Logger;
  progress?: (line: string) => void;
  /** Scan the run's logs for every token the fake issued (standalone runs). */
  secretScan?: boolean;
  keepArtifacts?: boolean;
  signal?: AbortSignal;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

async function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((r) => (timer = setTimeout(() => r(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runSoak(options: SoakOptions, io: SoakIo = {}): Promise<SoakResult> {
  const progress = io.progress ?? (() => undefined);
  const startedAt = new Date();
  const began = Date.now();
  const plan = buildPlan(options);
  const dir = mkdtempSync(path.join(tmpdir(), "ctw-soak-"));
  const children = new Set<ChildProcess>();
  const everyChild: ChildProcess[] = [];
  const pids: number[] = [];
  const track = (c: ChildProcess) => {
    if (c.pid !== undefined) pids.push(c.pid);
    everyChild.push(c);
    children.add(c);
    c.once("exit", () => children.delete(c));
  };
  const killChildren = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  process.on("exit", killChildren);

  // Under Jest, spawnWorker copies worker logs into the suite's TEST_LOG_FILE (for its secret scan).
  // Standalone, they go to workers.ndjson through a stream: spawnWorker's synchronous appends would
  // block this process (and so the request path it measures) whenever the disk is slow.
  const suiteLogFile = process.env.TEST_LOG_FILE;
  const workerLogPath = suiteLogFile ?? path.join(dir, "workers.ndjson");
  const workerLog = suiteLogFile ? undefined : createWriteStream(workerLogPath);
  const issuedTokensFile = process.env.TEST_ISSUED_TOKENS_FILE ?? path.join(dir, "issued-tokens.txt");
  let clientLog: WriteStream | undefined;
  let logger: Logger;
  if (io.logger) logger = io.logger;
  else {
    clientLog = createWriteStream(path.join(dir, "client.ndjson"));
    logger = createLogger({ level: options.env.LOG_LEVEL as "info", destination: clientLog });
  }

  const dbName = `ctw_soak_${process.pid}_${randomBytes(3).toString("hex")}`;
  let dbCreated = false;
  let redis: OwnRedis | undefined;
  let pgProxy: TcpProxy | undefined;
  let fake: FakeCalcom | undefined;
  let client: CalTokenClient | undefined;
  let observer: PrismaClient | undefined;
  let fleet: Fleet | undefined;
  let traffic: Traffic | undefined;
  let injector: Injector | undefined;
  let queue: Queue | undefined;
  let probe: Redis | undefined;
  let ticker: NodeJS.Timeout | undefined;
  let sampler: NodeJS.Timeout | undefined;
  const faultTimers: NodeJS.Timeout[] = [];
  const LOOP_RESOLUTION_MS = 10;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  // Stalls of this process (the web app of the soak), so that a slow request path can be told from a
  // stalled host in the report.
  const stalls: { t: number; ms: number }[] = [];
  let stallTimer: NodeJS.Timeout | undefined;
  let finished: SoakResult | undefined;

  try {
    progress(`run directory ${dir}`);
    redis = await startOwnRedis(dir, track);
    progress(`redis-server of its own at ${redis.url}`);
    const databaseUrl = await createTestDatabase(dbName);
    dbCreated = true;
    progress(`database ${dbName} created (dropped at the end)`);
    const admin = new URL(ADMIN_URL);
    pgProxy = await startTcpProxy(admin.hostname, Number(admin.port || 5432));
    const calls: CallSeen[] = [];
    let t0 = Number.POSITIVE_INFINITY;
    const calUserToUlid = new Map<number, string>();
    fake = await startFakeCalcom({
      // Cal.com's per-client limit (500/min) is far below what minute-long tokens need; the limiter stays
      // on only so that the 429 storm answers with the reset this run asks for.
      rateLimit: { limit: 1_000_000_000, windowMs: 60_000, blockMs: options.rateLimitResetSeconds * 1000 },
      issuedTokensFile,
      onTokenCall: (c) => {
        const userUlid = c.calUserId === undefined ? undefined : calUserToUlid.get(c.calUserId);
        calls.push({
          route: c.route,
          outcome: c.outcome,
          delivery: c.delivery,
          arrived: c.arrivedAt - t0,
          answered: c.answeredAt - t0,
          ...(c.closedAt !== undefined ? { closed: c.closedAt - t0 } : {}),
          ...(c.remotePort !== undefined ? { port: c.remotePort } : {}),
          ...(c.fault !== undefined ? { fault: c.fault } : {}),
          ...(userUlid ? { userUlid } : {}),
        });
      },
    });
    fake.faults.latencyMs = options.calcomLatencyMs;
    const calcomUrl = fake.url;
    const env: Record<string, string> = {
      DATABASE_URL: viaProxy(databaseUrl, pgProxy),
      REDIS_URL: redis.url,
      CAL_API_URL: calcomUrl,
      CAL_CLIENT_ID: "fake-client",
      CAL_CLIENT_SECRET: "fake-secret",
      CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
      CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
      TOKEN_ENCRYPTION_KEYS: SOAK_ENCRYPTION_KEYS,
      QUEUE_PREFIX,
      ...options.env,
    };
    const config = loadConfig(env);
    client = createCalTokenClient({ config, logger, databasePoolSize: 10 });
    observer = createPrisma(databaseUrl, { max: 4 });
    const store = createTokenStore({ prisma: observer, cipher: createTokenCipher(config.encryptionKeys) });
    queue = new Queue(QUEUES.refresh, { connection: webConnection(redis.url), prefix: QUEUE_PREFIX });
    queue.on("error", () => undefined);
    probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    probe.on("error", () => undefined);

    // Users: both kinds, each with its own lifetime, stored through the public API as the connect flow does.
    const users: SoakUser[] = [];
    const [ttlMin, ttlMax] = options.ttlSeconds;
    const oauth2Count = Math.round(options.users * options.oauth2Share);
    const theClient = client;
    const theFake = fake;
    const seedOne = async (i: number) => {
      const ttlMs = Math.round((ttlMin + Math.random() * (ttlMax - ttlMin)) * 1000);
      const userUlid = ulid();
      if (i < oauth2Count) {
        const g = theFake.createOAuth2Grant({ accessTokenTtlMs: ttlMs });
        await theClient.saveCalTokens({
          userUlid,
          accessToken: g.accessToken,
          refreshToken: g.refreshToken,
          accessTokenExpiresAt: g.accessTokenExpiresAt,
          kind: "oauth2",
        });
        users.push({ userUlid, kind: "oauth2", calUserId: g.calUserId, ttlMs });
        calUserToUlid.set(g.calUserId, userUlid);
      } else {
        const m = theFake.createManagedUser({ accessTokenTtlMs: ttlMs });
        await theClient.saveCalTokens({
          userUlid,
          accessToken: m.accessToken,
          refreshToken: m.refreshToken,
          accessTokenExpiresAt: m.accessTokenExpiresAt,
          refreshTokenExpiresAt: m.refreshTokenExpiresAt,
          kind: "managed",
          calUserId: m.calUserId,
        });
        users.push({ userUlid, kind: "managed", calUserId: m.calUserId, ttlMs });
        calUserToUlid.set(m.calUserId, userUlid);
      }
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < options.users) await seedOne(next++);
      }),
    );
    progress(
      `seeded ${users.length} users (${oauth2Count} OAuth2, ${users.length - oauth2Count} managed), tokens of ${ttlMin}–${ttlMax} s`,
    );
    // Every user uses the app right after connecting (one request path each), so the grant policy sees
    // them all as active users to keep fresh. Idle users, whom the policy leaves to refresh inline on their
    // next request, are the capacity simulation's subject, not this soak's.
    let warmed = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (warmed < users.length) await theClient.ensureValidCalToken((users[warmed++] as SoakUser).userUlid);
      }),
    );
    await sleep(1_000); // last_used_at is written in the background

    fleet = createFleet(env, track, progress, Number(new URL(fake.url).port), workerLog);
    await fleet.start();
    progress("two worker processes started");
    if (io.signal?.aborted) throw new Error("aborted");

    // Traffic and faults.
    t0 = Date.now();
    const setupMs = t0 - began;
    const sourcesAtStart = sourceTimes();
    const loadStart = loadavg()[0] ?? 0;
    loopDelay.enable();
    let tick = Date.now();
    stallTimer = setInterval(() => {
      const now = Date.now();
      const late = now - tick - 25;
      if (late > 150) stalls.push({ t: tick + 25 - t0, ms: late });
      tick = now;
    }, 25);
    traffic = startTraffic({ client, users, calcomUrl, requestsPerSecond: options.requestsPerSecond, slowMs: options.slowMs, t0 });
    const executed: ExecutedFault[] = [];
    const running: Promise<void>[] = [];
    const theFleet = fleet;
    const theRedis = redis;
    const thePg = pgProxy;
    const theQueue = queue;
    const rel = () => Date.now() - t0;

    const activeJobUsers = async (): Promise<string[] | undefined> => {
      const jobs = await within(
        theQueue.getActive().catch(() => null),
        750,
        null,
      );
      return jobs?.map((j) => String((j.data as { userUlid?: unknown }).userUlid ?? ""));
    };

    const execute = async (f: ScheduledFault): Promise<void> => {
      const start = rel();
      switch (f.kind) {
        case "worker-kill": {
          const kill = await theFleet.killOne();
          if (!kill) return;
          // Read after the kill: the dead process's jobs stay in the active list until they are found stalled.
          const active = await activeJobUsers();
          await kill.restarted;
          executed.push({
            kind: f.kind,
            start: kill.killedAt - t0,
            faultEnd: (kill.restartedAt ?? Date.now()) - t0,
            detail:
              `kill -9 worker ${kill.slot} (pid ${kill.pid}); ${active ? `${active.length} refresh jobs running in either worker` : "running jobs unknown (Redis did not answer)"}` +
              `${kill.calcomPorts ? `, ${kill.calcomPorts.length} connections to Cal.com` : ""}`,
            ...(active ? { users: active } : {}),
            ...(kill.calcomPorts ? { calcomPorts: kill.calcomPorts } : {}),
            lastLines: (kill.lastLines ?? []).flatMap((l): [number, string, string][] => {
              try {
                const j = JSON.parse(l) as { time?: string; msg?: string; userUlid?: string; op?: string };
                return [[Date.parse(j.time ?? "") - t0, `${j.msg ?? ""}${j.op ? ` (${j.op})` : ""}`, j.userUlid ?? ""]];
              } catch {
                return [];
              }
            }),
          });
          return;
        }
        case "redis-restart":
          await theRedis.stop();
          await sleep(f.downMs);
          await theRedis.start();
          executed.push({ kind: f.kind, start, faultEnd: rel(), detail: `redis-server killed, back after ${f.downMs / 1000} s, empty` });
          return;
        case "postgres-cut":
          thePg.cut();
          await sleep(f.durationMs);
          thePg.restore();
          executed.push({ kind: f.kind, start, faultEnd: rel(), detail: "every Postgres connection cut and new ones refused (TCP proxy)" });
          return;
        case "calcom-unreachable":
          theFake.setReachable(false);
          await sleep(f.durationMs);
          theFake.setReachable(true);
          executed.push({
            kind: f.kind,
            start,
            faultEnd: rel(),
            detail: "Cal.com closes every connection, calls in flight included, and every new one as it is accepted",
          });
          return;
        case "rate-limit-storm":
          theFake.faults.always("rateLimit");
          await sleep(f.durationMs);
          theFake.faults.always(null);
          executed.push({
            kind: f.kind,
            start,
            faultEnd: rel(),
            detail: `every token call answered 429 with X-RateLimit-Reset-Default: ${f.resetMs / 1000}`,
          });
          return;
      }
    };
    for (const f of plan.faults) {
      faultTimers.push(
        setTimeout(() => running.push(execute(f).catch((err: unknown) => progress(`fault ${f.kind} failed: ${String(err)}`))), f.at),
      );
    }
    faultTimers.push(
      setTimeout(() => {
        injector = startInjector(theFake, plan.continuous);
      }, plan.continuous.from),
    );
    const stopInjector = () => {
      injector?.stop();
      // Faults queued but not yet taken must not spill into the quiet tail.
      theFake.faults.clear();
      theFake.faults.latencyMs = options.calcomLatencyMs;
    };
    faultTimers.push(setTimeout(stopInjector, plan.continuous.until));
    const queueSamples: NonNullable<SoakResult["queueSamples"]> = [];
    sampler = setInterval(() => {
      const t = rel();
      void within(
        theQueue.getJobCounts("active", "waiting", "prioritized", "delayed").catch(() => null),
        500,
        null,
      ).then((c) => {
        if (c)
          queueSamples.push({
            t,
            active: c.active ?? 0,
            waiting: c.waiting ?? 0,
            prioritized: c.prioritized ?? 0,
            delayed: c.delayed ?? 0,
          });
      });
    }, 1_000);
    ticker = setInterval(() => {
      const s = theFake.stats();
      const q = traffic?.live();
      progress(
        `t=${Math.round(rel() / 1000)} s  faults ${executed.length} (kills ${theFleet.kills.length})  requests ${q?.requests ?? 0} (ok ${q?.ok ?? 0}, notable ${q?.notable ?? 0})` +
          `  Cal.com: rotations ${s.refreshes + s.oauth2Refreshes + s.forceRefreshes} (forced ${s.forceRefreshes}), lost ${s.rotationsDroppedByFault + s.rotationsUndeliverable}, dead refresh tokens ${s.deadRefreshTokenUses}`,
      );
    }, 15_000);

    await sleep(plan.trafficMs, io.signal);
    const trafficResult = await traffic.stop();
    traffic = undefined;
    const trafficMs = Date.now() - t0;
    clearInterval(ticker);
    clearInterval(sampler);
    stopInjector();
    await within(Promise.allSettled(running), 30_000, []);
    loopDelay.disable();
    if (io.signal?.aborted) throw new Error("aborted");
    progress(`traffic stopped after ${Math.round(trafficMs / 1000)} s: ${trafficResult.requests} requests; stopping the workers`);
    // Freeze the world before looking at it: no refresh may land between reading the rows and reading
    // Cal.com's counters, and the fake reports a delivered call a second after answering it.
    await theFleet.stop(20_000);
    await sleep(1_500);
    progress("collecting the final state");

    // The final state: every row, whether its refresh token is the live one at Cal.com, every audit row.
    const rows: FinalRow[] = [];
    const dbRows = await observer.calToken.findMany({
      select: {
        userUlid: true,
        kind: true,
        status: true,
        version: true,
        rotationUncertain: true,
        failureCount: true,
        lastFailureCode: true,
      },
    });
    for (const r of dbRows) {
      const rec = await store.get(r.userUlid);
      rows.push({ ...r, refreshTokenLive: rec !== null && theFake.isRefreshTokenLive(rec.refreshToken) });
    }
    const audits: AuditRow[] = (
      await observer.calTokenAudit.findMany({ select: { userUlid: true, outcome: true, trigger: true, errorCode: true, createdAt: true } })
    ).map((a) => ({ userUlid: a.userUlid, outcome: a.outcome, trigger: a.trigger, errorCode: a.errorCode, t: a.createdAt.getTime() - t0 }));
    const theProbe = probe;
    const heldPairsAtEnd = await within(
      theProbe
        .connect()
        .then(() => theProbe.zcard(`${QUEUE_PREFIX}:recovery-index`))
        .catch(() => null),
      2_000,
      null,
    );
    const queueAtEnd = await within(
      theQueue.getJobCounts("active", "waiting", "delayed", "prioritized", "failed").catch(() => null),
      2_000,
      null,
    );
    const pgVersion = await observer.$queryRawUnsafe<{ v: string }[]>("SELECT current_setting('server_version') AS v").then(
      (r) => `PostgreSQL ${r[0]?.v ?? "?"}`,
      () => "PostgreSQL ?",
    );
    const fakeStats = theFake.stats();
    const sourcesAtEnd = sourceTimes();
    const sourcesChanged = [...sourcesAtEnd.entries()].filter(([f, m]) => sourcesAtStart.get(f) !== m).map(([f]) => f);
    const ms = (ns: number) => ns / 1e6;
    const loopMs = (ns: number) => Math.round(Math.max(0, ms(ns) - LOOP_RESOLUTION_MS) * 10) / 10;

    const result: SoakResult = {
      options,
      plan,
      settings: Object.fromEntries(
        Object.entries(env).filter(([k]) => !/SECRET|KEYS|PASSWORD|TOKEN/.test(k) && k !== "DATABASE_URL" && k !== "REDIS_URL"),
      ),
      startedAt,
      t0,
      setupMs,
      trafficMs,
      totalMs: 0,
      machine: {
        cores: cpus().length,
        cpu: cpus()[0]?.model ?? "?",
        node: process.version,
        postgres: pgVersion,
        loadStart,
        loadEnd: loadavg()[0] ?? 0,
      },
      users,
      faults: executed.sort((a, b) => a.start - b.start),
      kills: theFleet.kills,
      unexpectedExits: theFleet.unexpectedExits,
      workerStartMs: theFleet.startTimesMs,
      calls: calls.sort((a, b) => a.arrived - b.arrived),
      traffic: trafficResult,
      injected: injector?.injected ?? { fiveXx: 0, drops: 0 },
      rows,
      audits,
      fake: fakeStats,
      heldPairsAtEnd,
      queueAtEnd: queueAtEnd as Record<string, number> | null,
      queueSamples: queueSamples.sort((a, b) => a.t - b.t),
      // The histogram includes its own sampling interval.
      eventLoopDelayMs: { p50: loopMs(loopDelay.percentile(50)), p99: loopMs(loopDelay.percentile(99)), max: loopMs(loopDelay.max) },
      stalls,
      logDir: dir,
      resources: { database: dbName, redisUrl: redis.url, pids },
      ...(sourcesChanged.length > 0 ? { sourcesChanged } : {}),
    };
    finished = result;
    return result;
  } finally {
    const step = async (name: string, fn: () => Promise<unknown> | unknown, ms = 15_000) => {
      try {
        await within(Promise.resolve().then(fn), ms, undefined);
      } catch (err) {
        progress(`cleanup: ${name} failed: ${String(err)}`);
      }
    };
    clearInterval(ticker);
    clearInterval(sampler);
    clearInterval(stallTimer);
    for (const t of faultTimers) clearTimeout(t);
    injector?.stop();
    loopDelay.disable();
    await step("traffic", () => traffic?.stop());
    pgProxy?.restore();
    fake?.setReachable(true);
    await step("workers", () => fleet?.stop(8_000), 20_000);
    await step("client", () => client?.close());
    await step("observer", () => observer?.$disconnect());
    await step("queue", () => queue?.close());
    probe?.disconnect();
    await step("fake Cal.com", () => fake?.close());
    await step("proxy", () => pgProxy?.close());
    await step("redis-server", () => redis?.stop());
    killChildren();
    // Their pipes would keep this process (or Jest) alive a little after they are gone.
    for (const c of everyChild) {
      c.stdout?.destroy();
      c.stderr?.destroy();
    }
    if (dbCreated) await step("database", () => dropTestDatabase(dbName));
    await step("client log", () => new Promise<void>((r) => (clientLog ? clientLog.end(() => r()) : r())));
    process.off("exit", killChildren);
    // After every log is closed and flushed.
    await step("worker log", () => new Promise<void>((r) => (workerLog ? workerLog.end(() => r()) : r())));
    if (finished && io.secretScan) finished.secretScan = scanForTokens(dir, issuedTokensFile, workerLogPath);
    if (finished) finished.totalMs = Date.now() - began;
    // Everything observed, for a post-mortem (the database is gone by now).
    if (finished && io.keepArtifacts) writeFileSync(path.join(dir, "result.json"), JSON.stringify(finished));
    if (!io.keepArtifacts) rmSync(dir, { recursive: true, force: true });
    progress(io.keepArtifacts ? `kept ${dir}` : "cleaned up: workers, redis-server, proxy, fake, database, run directory");
  }
}

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Modification times of the worker's sources (src/, jobs/), by path. */
function sourceTimes(): Map<string, number> {
  const times = new Map<string, number>();
  const walk = (dir: string) => {
    for (const entry of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "generated") walk(rel);
      } else if (entry.name.endsWith(".ts")) times.set(rel, statSync(path.join(ROOT, rel)).mtimeMs);
    }
  };
  walk("src");
  walk("jobs");
  return times;
}

/** Every token the fake issued, searched for in every log line the run wrote. */
function scanForTokens(
  dir: string,
  issuedFile: string,
  workerLog: string | undefined,
): { tokens: number; logBytes: number; leaked: number } {
  const read = (f: string | undefined) => {
    if (!f) return "";
    try {
      return readFileSync(f, "utf8");
    } catch {
      return "";
    }
  };
  const issued = new Set(
    read(issuedFile)
      .split("\n")
      .filter((t) => t.length >= 16),
  );
  const logs = read(path.join(dir, "client.ndjson")) + read(workerLog);
  let leaked = 0;
  for (const m of logs.matchAll(/fake_o?(?:at|rt)_[A-Za-z0-9_-]{20,}/g)) if (issued.has(m[0])) leaked += 1;
  return { tokens: issued.size, logBytes: logs.length, leaked };
}
