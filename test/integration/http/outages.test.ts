/**
 * Every route of the web process has a timeout: with Redis down, Postgres hanging or Redis restarting,
 * the real composition root (startWebApp) answers /readyz, /metrics and the board's API with 503 in
 * under 2.5 s instead of hanging, and the board works again by itself once Redis is back.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { jest } from "@jest/globals";
import { loadConfig } from "../../../src/config/config.js";
import type { WebApp } from "../../../src/wiring/web-app.js";
import { testDatabaseUrl, testEnv } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { basic, httpClient, type Call, type Res } from "./http-client.js";
import { startStallProxy, type StallProxy } from "./stall-proxy.js";

// See web-server.test.ts: jest's CommonJS loader needs the ESM-only content-disposition handed over.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { startWebApp } = await import("../../../src/wiring/web-app.js");

const LIMIT_MS = 2_500;
const BOARD_API = "/admin/queues/api/queues";
const CREDS = { username: "ops", password: "correct horse battery staple" };
const TOKEN = `mt_${randomBytes(24).toString("hex")}`;
const PREFIX = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}out${randomBytes(3).toString("hex")}`;
const apps: WebApp[] = [];
const proxies: StallProxy[] = [];
let redis: ChildProcess | undefined;

afterAll(async () => {
  for (const p of proxies) await p.close(); // first: a stalled connection would hold the pool's shutdown
  for (const a of apps) await a.close();
  redis?.kill("SIGKILL");
});

async function web(overrides: Record<string, string>): Promise<Call & { app: WebApp }> {
  const env = testEnv("http://127.0.0.1:1", {
    BULL_BOARD_USERNAME: CREDS.username,
    BULL_BOARD_PASSWORD: CREDS.password,
    METRICS_BEARER_TOKEN: TOKEN,
    QUEUE_PREFIX: PREFIX,
    ...overrides,
  });
  const app = await startWebApp(loadConfig(env), { logger: testLogger().logger, host: "127.0.0.1", port: 0 });
  apps.push(app);
  return Object.assign(httpClient(app.url), { app });
}

/** The three routes that read a dependency, each timed. */
async function probe(get: Call): Promise<{ readyz: Res; metrics: Res; board: Res }> {
  const [readyz, metrics, board] = await Promise.all([
    get("/readyz"),
    get("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } }),
    get(BOARD_API, { headers: { authorization: basic(CREDS.username, CREDS.password) } }),
  ]);
  return { readyz, metrics, board };
}

const summary = (r: { readyz: Res; metrics: Res; board: Res }) =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, { status: v.statusCode, inTime: v.ms < LIMIT_MS }]));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const p = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

/** A throwaway redis-server without persistence; resolves once it accepts connections. */
async function startRedis(port: number): Promise<ChildProcess> {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out.slice(-500)}`)), 10_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return child;
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return check();
}

it("Redis at a dead port: /readyz, /metrics and the board's API answer 503 in time; /healthz 200", async () => {
  const get = await web({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
  const r = await probe(get);
  const down = { status: 503, inTime: true };
  expect(summary(r)).toEqual({ readyz: down, metrics: down, board: down });
  expect(r.readyz.json()).toEqual({ status: "fail", checks: { postgres: "ok", redis: "fail" } });
  expect((await get("/healthz")).statusCode).toBe(200);
  // Closed now, not in afterAll: ioredis keeps a never-connected socket's 2 s disconnect timer, which
  // should run out while the other tests run rather than hold up the jest worker's exit.
  await get.app.close();
});

it("Postgres stalls: /readyz and /metrics answer 503 in time; the board (Redis only) still works", async () => {
  const proxy = await startStallProxy("127.0.0.1", Number(new URL(testDatabaseUrl()).port || 5432));
  proxies.push(proxy);
  const db = new URL(testDatabaseUrl());
  db.hostname = "127.0.0.1";
  db.port = String(proxy.port);
  const get = await web({ DATABASE_URL: db.toString() });
  expect((await get("/readyz")).statusCode).toBe(200); // through the proxy, before it stalls

  proxy.stall();
  const r = await probe(get);
  const down = { status: 503, inTime: true };
  expect(summary(r)).toEqual({ readyz: down, metrics: down, board: { status: 200, inTime: true } });
  expect(r.readyz.json()).toEqual({ status: "fail", checks: { postgres: "fail", redis: "ok" } });
});

it("Redis goes away and comes back: 503 in time while it is away, the board works again without a restart", async () => {
  const port = await freePort();
  redis = await startRedis(port);
  const get = await web({ REDIS_URL: `redis://127.0.0.1:${port}` });
  expect(summary(await probe(get))).toEqual({
    readyz: { status: 200, inTime: true },
    metrics: { status: 200, inTime: true },
    board: { status: 200, inTime: true },
  });

  const exited = new Promise((resolve) => redis!.once("exit", resolve));
  redis.kill("SIGKILL");
  await exited;
  const down = { status: 503, inTime: true };
  expect(summary(await probe(get))).toEqual({ readyz: down, metrics: down, board: down });

  redis = await startRedis(port);
  const back = await eventually(async () => {
    const r = await probe(get);
    return r.readyz.statusCode === 200 && r.metrics.statusCode === 200 && r.board.statusCode === 200;
  }, 20_000);
  expect(back).toBe(true);
});
