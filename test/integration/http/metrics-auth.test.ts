/**
 * /metrics is not an open door: it needs the Bull Board pair (basic) or METRICS_BEARER_TOKEN (bearer),
 * answers 404 when neither is configured, and reads the fleet gauges from Postgres at most once per
 * cache window whatever the scrape rate (concurrent scrapes share one query).
 */
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { WebServerDeps } from "../../../src/http/web-server.js";
import { createMetrics, type Metrics } from "../../../src/metrics/metrics.js";
import { producerConnection } from "../../../src/queue/connection.js";
import { QUEUES } from "../../../src/queue/names.js";
import { createPrisma, type PrismaClient } from "../../../src/store/prisma.js";
import { readTokenStats } from "../../../src/store/token-stats.js";
import { testDatabaseUrl } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { basic, httpClient, type Call } from "./http-client.js";

// See web-server.test.ts: jest's CommonJS loader needs the ESM-only content-disposition handed over.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../../src/http/web-server.js");

const CREDS = { username: "ops", password: "correct horse battery staple" };
const BEARER = `mt_${randomBytes(24).toString("hex")}`;
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}ma${randomBytes(3).toString("hex")}`;
const servers: FastifyInstance[] = [];
let prisma: PrismaClient;
let queues: WebServerDeps["queues"];

beforeAll(() => {
  prisma = createPrisma(testDatabaseUrl(), { max: 2 });
  const make = (name: string) => new Queue(name, { connection: producerConnection(REDIS_URL), prefix: PREFIX });
  queues = { refresh: make(QUEUES.refresh), sweep: make(QUEUES.sweep), events: make(QUEUES.events) };
});
afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.close()));
  await Promise.allSettled(Object.values(queues).map((q) => q.close()));
  await prisma.$disconnect();
});

async function server(overrides: Partial<WebServerDeps>, metrics: Metrics = createMetrics({ defaultMetrics: false })) {
  const log = testLogger();
  const app = createWebServer({
    queues,
    metrics,
    logger: log.logger,
    bullBoard: null,
    readiness: async () => ({ ok: true, checks: {} }),
    ...overrides,
  });
  servers.push(app);
  return { get: httpClient(await app.listen({ port: 0, host: "127.0.0.1" })), logs: log.lines };
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("credentials", () => {
  let get: Call;
  beforeAll(async () => {
    // The board's pair also opens /metrics; the board itself is not under test here.
    ({ get } = await server({ metricsBearerToken: BEARER, bullBoard: CREDS, allowUnauthenticatedBoard: false }));
  });

  it("without credentials: 401 with a challenge for each configured scheme", async () => {
    const res = await get("/metrics");
    expect(res.statusCode).toBe(401);
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toContain('Basic realm="cal-token-worker metrics"');
    expect(challenge).toContain('Bearer realm="cal-token-worker metrics"');
    expect(res.body).not.toContain("cal_token");
  });

  it("wrong credentials of either kind: 401", async () => {
    for (const authorization of [
      `Bearer ${BEARER}x`,
      `Bearer ${BEARER.slice(0, -1)}`,
      "Bearer ",
      basic(CREDS.username, "wrong"),
      basic("root", CREDS.password),
      `Basic ${Buffer.from(BEARER).toString("base64")}`,
      `Token ${BEARER}`,
      BEARER,
    ]) {
      expect({ authorization, status: (await get("/metrics", { headers: { authorization } })).statusCode }).toEqual({
        authorization,
        status: 401,
      });
    }
  });

  it("the bearer token: 200 with Prometheus text", async () => {
    const res = await get("/metrics", { headers: bearer(BEARER) });
    expect(res.statusCode).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    expect(res.body).toContain("cal_token_refresh_outcomes_total");
    expect((await get("/metrics", { headers: { authorization: `bearer ${BEARER}` } })).statusCode).toBe(200);
  });

  it("the Bull Board pair over basic auth: 200", async () => {
    const res = await get("/metrics", { headers: { authorization: basic(CREDS.username, CREDS.password) } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain("cal_token_refresh_outcomes_total");
  });
});

describe("configuration", () => {
  it("only a bearer token configured: basic is refused, the token works", async () => {
    const { get } = await server({ metricsBearerToken: BEARER });
    const refused = await get("/metrics", { headers: { authorization: basic(CREDS.username, CREDS.password) } });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers.get("www-authenticate")).toBe('Bearer realm="cal-token-worker metrics"');
    expect((await get("/metrics", { headers: bearer(BEARER) })).statusCode).toBe(200);
  });

  it("nothing configured: 404, and the log says how to enable it", async () => {
    const { get, logs } = await server({ metricsBearerToken: null, bullBoard: null });
    expect((await get("/metrics")).statusCode).toBe(404);
    expect((await get("/metrics", { headers: bearer(BEARER) })).statusCode).toBe(404);
    expect((await get("/healthz")).statusCode).toBe(200);
    const line = logs().find((l) => String(l.msg).includes("/metrics disabled"));
    expect(line?.msg).toContain("METRICS_BEARER_TOKEN");
  });

  it("the token never reaches the logs", async () => {
    const { get, logs } = await server({ metricsBearerToken: BEARER });
    await get("/metrics", { headers: bearer(BEARER) });
    await get("/metrics", { headers: bearer(`${BEARER}-wrong`) });
    expect(JSON.stringify(logs())).not.toContain(BEARER);
  });
});

describe("fleet gauges from Postgres", () => {
  it("are read once per cache window, however many scrapes, concurrent or not", async () => {
    let queries = 0;
    let clock = 1_000_000;
    const metrics = createMetrics({
      defaultMetrics: false,
      tokenStats: async () => {
        queries += 1;
        await new Promise((r) => setTimeout(r, 100)); // concurrent scrapes arrive while this one runs
        return readTokenStats(prisma, new Date());
      },
      tokenStatsTtlMs: 20_000,
      now: () => clock,
    });
    const { get } = await server({ metricsBearerToken: BEARER }, metrics);
    const scrape = async () => {
      const res = await get("/metrics", { headers: bearer(BEARER) });
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/cal_token_refresh_overdue \d+/);
    };

    await Promise.all([scrape(), scrape(), scrape(), scrape()]);
    for (let i = 0; i < 4; i++) {
      clock += 4_000;
      await scrape();
    }
    expect(queries).toBe(1); // 8 scrapes in 16 s

    clock += 4_001; // 20 s after the first query started
    await Promise.all([scrape(), scrape()]);
    expect(queries).toBe(2);
  });

  it("the default window is between 15 and 30 s", async () => {
    const { TOKEN_STATS_TTL_MS } = await import("../../../src/metrics/metrics.js");
    expect(TOKEN_STATS_TTL_MS).toBeGreaterThanOrEqual(15_000);
    expect(TOKEN_STATS_TTL_MS).toBeLessThanOrEqual(30_000);
  });
});
