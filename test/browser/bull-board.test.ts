/**
 * Bull Board as ops see it: a real Chromium renders the board (behind basic auth) for a refresh job whose
 * data wrongly holds a token. The user ULID must be on screen; the token must be nowhere in the page or
 * in any response the page received (docs/architecture.md#invariant-6-no-secret-leaves-the-row). Leaves a screenshot for humans.
 */
import { copyFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { Browser } from "playwright-core";
import { ulid } from "ulid";
import { createMetrics } from "../../src/metrics/metrics.js";
import { producerConnection } from "../../src/queue/connection.js";
import { JOB_NAMES, QUEUES } from "../../src/queue/names.js";
import { testLogger } from "../support/log-sink.js";
import { BROWSER_TIMEOUT_MS, boardPage, launchChromium, saveScreenshot } from "./board-browser.js";

// Jest 30 on Node 20 cannot require() ESM; @fastify/static (under @bull-board/fastify) requires the ESM-only
// content-disposition. Give jest's CommonJS loader the ES module, then load the server.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../src/http/web-server.js");

const TIMEOUT_MS = BROWSER_TIMEOUT_MS;
const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const PREFIX = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}browser${randomBytes(3).toString("hex")}`;
const BOARD = "/admin/queues";
const CREDS = { username: "ops", password: `pw-${randomBytes(8).toString("hex")}` };
const SECRET = "SECRET_SHOULD_NOT_RENDER_123";

jest.setTimeout(TIMEOUT_MS);

const userUlid = ulid();
let queues: Queue[] = [];
let app: FastifyInstance | undefined;
let browser: Browser | undefined;
let origin = "";

beforeAll(async () => {
  const make = (name: string) => new Queue(name, { connection: producerConnection(REDIS_URL), prefix: PREFIX });
  const [refresh, sweep, events] = [make(QUEUES.refresh), make(QUEUES.sweep), make(QUEUES.events)];
  queues = [refresh, sweep, events];
  await Promise.all(queues.map((q) => q.waitUntilReady()));
  await refresh.add(JOB_NAMES.refresh, { userUlid, accessToken: SECRET });

  app = createWebServer({
    queues: { refresh, sweep, events },
    metrics: createMetrics({ queues, defaultMetrics: false }),
    logger: testLogger().logger,
    bullBoard: CREDS,
    readiness: async () => ({ ok: true, checks: {} }),
  });
  origin = await app.listen({ port: 0, host: "127.0.0.1" });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  for (const q of queues) {
    await q.obliterate({ force: true }).catch(() => undefined);
    await q.close();
  }
});

test("the board lists the queues and shows a refresh job's ULID but never its token", async () => {
  const received: string[] = [];
  const page = await boardPage(browser!, origin, CREDS, received);

  await page.goto(`${origin}${BOARD}`, { waitUntil: "domcontentloaded" });
  for (const name of [QUEUES.refresh, QUEUES.sweep, QUEUES.events]) {
    await page.getByText(name, { exact: true }).first().waitFor({ timeout: TIMEOUT_MS });
  }
  expect(await page.title()).toContain("cal-token-worker");

  await page.goto(`${origin}${BOARD}/queue/${QUEUES.refresh}?status=waiting`, { waitUntil: "domcontentloaded" });
  await page.getByText(userUlid).first().waitFor({ timeout: TIMEOUT_MS });

  const html = await page.content();
  const text = await page.evaluate(() => document.body.textContent);
  expect(html).toContain(userUlid);
  expect(html).not.toContain(SECRET);
  expect(text).not.toContain(SECRET);
  expect(received.length).toBeGreaterThan(0);
  expect(received.filter((body) => body.includes(SECRET))).toEqual([]);

  const file = await saveScreenshot(page, "bull-board.png");
  if (file !== "/tmp/bull-board.png") copyFileSync(file, "/tmp/bull-board.png");
});
