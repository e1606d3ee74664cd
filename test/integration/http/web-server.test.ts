/**
 * The web process's HTTP surface against a real Redis: probes, metrics, and Bull Board behind basic
 * auth, with job data redacted by the board's formatters (docs/architecture.md#invariant-6-no-secret-leaves-the-row).
 */
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { Queue, Worker } from "bullmq";
import type { FastifyInstance } from "fastify";
import { ulid } from "ulid";
import type { WebServerDeps } from "../../../src/http/web-server.js";
import { createMetrics, type Metrics } from "../../../src/metrics/metrics.js";
import { producerConnection, workerConnection } from "../../../src/queue/connection.js";
import { JOB_NAMES, QUEUES } from "../../../src/queue/names.js";
import { testLogger } from "../../support/log-sink.js";

// Jest 30 on Node 20 cannot require() an ES module, and @bull-board/fastify → @fastify/static requires the
// ESM-only content-disposition. Hand the CommonJS loader the module jest's ESM loader can import, then
// load the web server (node itself needs no help: Node >= 20.19 has require(esm)). For the same reason
// Fastify's inject() (light-my-request → ESM-only cookie) fails under jest, so requests go over real HTTP.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../../src/http/web-server.js");

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}http${randomBytes(3).toString("hex")}`;
const BASE = "/admin/queues";
const CREDS = { username: "ops", password: "correct horse battery staple" };
const SECRET = "SECRET_SHOULD_NOT_RENDER_123";
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;

let queues: WebServerDeps["queues"];
let metrics: Metrics;
const log = testLogger();
const servers: FastifyInstance[] = [];
const userUlid = ulid();

interface Res {
  statusCode: number;
  headers: Headers;
  body: string;
  json(): unknown;
}
type Get = (path: string, init?: { method?: string; headers?: Record<string, string> }) => Promise<Res>;

/** Starts a server on a random port and returns a fetch-based client for it. */
async function server(overrides: Partial<WebServerDeps> = {}): Promise<Get> {
  const app = createWebServer({
    queues,
    metrics,
    logger: log.logger,
    bullBoard: CREDS,
    readiness: async () => ({ ok: true, checks: { postgres: "ok", redis: "ok" } }),
    ...overrides,
  });
  servers.push(app);
  const address = await app.listen({ port: 0, host: "127.0.0.1" });
  return async (path, init = {}) => {
    const res = await fetch(`${address}${path}`, { method: init.method ?? "GET", headers: init.headers ?? {} });
    const body = await res.text();
    return { statusCode: res.status, headers: res.headers, body, json: () => JSON.parse(body) as unknown };
  };
}

beforeAll(async () => {
  const make = (name: string) => new Queue(name, { connection: producerConnection(REDIS_URL), prefix: PREFIX });
  queues = { refresh: make(QUEUES.refresh), sweep: make(QUEUES.sweep), events: make(QUEUES.events) };
  await Promise.all(Object.values(queues).map((q) => q.waitUntilReady()));
  metrics = createMetrics({ queues: Object.values(queues) });
  // A job someone wrongly filled with a token: the board must still show only the ULID.
  await queues.refresh.add(JOB_NAMES.refresh, { userUlid, accessToken: SECRET }, { delay: 0 });
});

afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.close()));
  for (const q of Object.values(queues ?? {})) {
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
  }
});

describe("probes", () => {
  it("GET /healthz is 200 without auth or I/O", async () => {
    const res = await (await server())("/healthz");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz is 200 with the checks when ready", async () => {
    const res = await (await server())("/readyz");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: "ok", checks: { postgres: "ok", redis: "ok" } });
  });

  it("GET /readyz is 503 when a dependency fails, or the check itself throws", async () => {
    const failing = await server({ readiness: async () => ({ ok: false, checks: { postgres: "ok", redis: "fail" } }) });
    const res = await failing("/readyz");
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ status: "fail", checks: { postgres: "ok", redis: "fail" } });

    const throwing = await server({ readiness: () => Promise.reject(new Error("boom")) });
    const res2 = await throwing("/readyz");
    expect(res2.statusCode).toBe(503);
    expect(res2.json()).toEqual({ status: "fail", checks: { readiness: "fail" } });
  });

  it("GET /readyz is 503 within 2 s when a check hangs", async () => {
    const hanging = await server({ readiness: () => new Promise<never>(() => undefined) });
    const started = Date.now();
    const res = await hanging("/readyz");
    expect({ status: res.statusCode, inTime: Date.now() - started < 2_500 }).toEqual({ status: 503, inTime: true });
  });
});

describe("timeouts", () => {
  it("every route has one: 1.9 s, except the board's static files (streamed to slow browsers)", async () => {
    const app = createWebServer({
      queues,
      metrics,
      logger: log.logger,
      bullBoard: CREDS,
      readiness: async () => ({ ok: true, checks: {} }),
    });
    servers.push(app);
    const seen: Record<string, number | undefined> = {};
    app.addHook("onRequest", async (request) => {
      seen[request.routeOptions.url ?? request.url] = request.routeOptions.handlerTimeout;
    });
    const address = await app.listen({ port: 0, host: "127.0.0.1" });
    const headers = { authorization: basic(CREDS.username, CREDS.password) };
    for (const path of ["/healthz", "/readyz", "/metrics", BASE, `${BASE}/api/queues`, `${BASE}/static/images/logo.svg`]) {
      await (await fetch(`${address}${path}`, { headers })).text();
    }
    expect(seen).toEqual({
      "/healthz": 1_900,
      "/readyz": 1_900,
      "/metrics": 1_900,
      [BASE]: 1_900,
      [`${BASE}/api/queues`]: 1_900,
      [`${BASE}/static/*`]: 60_000,
    });
  });
});

describe("GET /metrics", () => {
  it("serves Prometheus text with outcomes, durations and queue gauges, and no user ids", async () => {
    metrics.recordOutcome({ userUlid, outcome: "REFRESHED", trigger: "worker", errorCode: null, durationMs: 120 });
    metrics.recordOutcome({ userUlid, outcome: "FAILED_TRANSIENT", trigger: "on_demand", errorCode: "calcom.timeout", durationMs: 5000 });
    const res = await (await server())("/metrics", { headers: { authorization: basic(CREDS.username, CREDS.password) } });
    expect(res.statusCode).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toContain('cal_token_refresh_outcomes_total{outcome="REFRESHED",trigger="worker"} 1');
    expect(text).toContain('cal_token_refresh_outcomes_total{outcome="FAILED_TRANSIENT",trigger="on_demand"} 1');
    expect(text).toContain('cal_token_refresh_outcomes_total{outcome="RECOVERED",trigger="cli"} 0');
    expect(text).toContain('cal_token_refresh_duration_seconds_bucket{le="0.25",outcome="REFRESHED"} 1');
    expect(text).toContain(`cal_token_queue_jobs{queue="${QUEUES.refresh}",state="waiting"} 1`);
    expect(text).toContain(`cal_token_queue_jobs{queue="${QUEUES.events}",state="failed"} 0`);
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).not.toContain(userUlid);
    expect(text).not.toContain("calcom.timeout");
  });
});

describe("Bull Board", () => {
  const auth = { authorization: basic(CREDS.username, CREDS.password) };

  it("requires basic auth for the board, its assets, its API and /metrics, but not for the probes", async () => {
    const get = await server();
    for (const url of [BASE, `${BASE}/`, `${BASE}/api/queues`, `${BASE}/queue/${QUEUES.refresh}`, `${BASE}/static/images/logo.svg`]) {
      const res = await get(url);
      expect({ url, status: res.statusCode }).toEqual({ url, status: 401 });
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="cal-token-worker"/);
    }
    expect((await get(`${BASE}/api/queues`, { headers: { authorization: basic("ops", "nope") } })).statusCode).toBe(401);
    expect((await get(`${BASE}/api/queues`, { headers: { authorization: basic("root", CREDS.password) } })).statusCode).toBe(401);
    expect((await get("/healthz")).statusCode).toBe(200);
    expect((await get("/readyz")).statusCode).toBe(200);
    expect((await get("/metrics")).statusCode).toBe(401);
  });

  it("serves the UI and lists the three queues with the right write modes", async () => {
    const get = await server();
    const page = await get(BASE, { headers: auth });
    expect(page.statusCode).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    expect(page.body).toContain("cal-token-worker");

    const res = await get(`${BASE}/api/queues`, { headers: auth });
    expect(res.statusCode).toBe(200);
    const body = res.json() as { queues: { name: string; readOnlyMode: boolean }[] };
    const modes = Object.fromEntries(body.queues.map((q) => [q.name, q.readOnlyMode]));
    expect(modes).toEqual({ [QUEUES.refresh]: false, [QUEUES.sweep]: false, [QUEUES.events]: true });
  });

  it("shows only the user ULID of a job, even when its data holds a token", async () => {
    const get = await server();
    const res = await get(`${BASE}/api/queues?activeQueue=${QUEUES.refresh}&status=waiting&page=1&jobsPerPage=10`, { headers: auth });
    expect(res.statusCode).toBe(200);
    type Listed = { queues: { name: string; jobs: { id: string; data: unknown }[] }[] };
    const refresh = (res.json() as Listed).queues.find((q) => q.name === QUEUES.refresh);
    expect(refresh?.jobs.map((j) => j.data)).toEqual([{ userUlid }]);
    expect(res.body).not.toContain(SECRET);

    const one = await get(`${BASE}/api/queues/${QUEUES.refresh}/${refresh?.jobs[0]?.id}`, { headers: auth });
    expect(one.statusCode).toBe(200);
    expect(one.body).toContain(userUlid);
    expect(one.body).not.toContain(SECRET);
  });

  it("redacts return values, scheduler templates and scheduled runs too", async () => {
    await queues.sweep.upsertJobScheduler("test-sweep", { every: 3_600_000 }, { name: JOB_NAMES.sweep, data: { accessToken: SECRET } });
    const worker = new Worker(QUEUES.events, async () => ({ delivered: true, statusCode: 200, echo: SECRET }), {
      connection: workerConnection(REDIS_URL),
      prefix: PREFIX,
    });
    const completed = new Promise((resolve) => worker.once("completed", resolve));
    await queues.events.add(JOB_NAMES.deliver, { eventId: "evt_1", body: SECRET });
    await completed;
    await worker.close();

    const get = await server();
    const schedulers = await get(`${BASE}/api/job-schedulers`, { headers: auth });
    expect(schedulers.statusCode).toBe(200);
    expect(schedulers.body).toContain("test-sweep");
    expect(schedulers.body).not.toContain(SECRET);

    const sweep = await get(`${BASE}/api/queues?activeQueue=${QUEUES.sweep}&status=waiting&page=1`, { headers: auth });
    expect(sweep.body).toContain('"data":{}');
    expect(sweep.body).not.toContain(SECRET);

    const events = await get(`${BASE}/api/queues?activeQueue=${QUEUES.events}&status=completed`, { headers: auth });
    type Listed = { queues: { name: string; jobs: { data: unknown; returnValue: unknown }[] }[] };
    const jobs = (events.json() as Listed).queues.find((q) => q.name === QUEUES.events)?.jobs;
    // The delivery job returns nothing, so nothing of a return value is allowed on this queue.
    expect(jobs?.map((j) => [j.data, j.returnValue])).toEqual([[{ eventId: "evt_1" }, {}]]);
    expect(events.body).not.toContain(SECRET);
  });

  it("refuses writes on the read-only events queue", async () => {
    const get = await server();
    const res = await get(`${BASE}/api/queues/${QUEUES.events}/retry/failed`, { method: "PUT", headers: auth });
    expect(res.statusCode).toBe(405);
  });

  it("is not mounted at all without credentials (404), unless explicitly allowed", async () => {
    const closed = await server({ bullBoard: null });
    expect((await closed(BASE)).statusCode).toBe(404);
    expect((await closed(`${BASE}/api/queues`)).statusCode).toBe(404);
    expect((await closed("/healthz")).statusCode).toBe(200);

    const demo = await server({ bullBoard: null, allowUnauthenticatedBoard: true });
    expect((await demo(`${BASE}/api/queues`)).statusCode).toBe(200);
  });

  it("never logs the Authorization header", async () => {
    const get = await server();
    await get(`${BASE}/api/queues`, { headers: auth });
    await get(`${BASE}/api/queues`, { headers: { authorization: basic("ops", "wrong-password") } });
    const text = JSON.stringify(log.lines());
    expect(text).toContain(`${BASE}/api/queues`);
    expect(text).not.toContain(auth.authorization.slice("Basic ".length));
    expect(text).not.toContain(CREDS.password);
    expect(text).not.toContain("wrong-password");
    expect(text).not.toContain(SECRET);
  });
});
