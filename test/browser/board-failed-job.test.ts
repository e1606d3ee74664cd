/**
 * The 3 a.m. question in a real browser (docs/operations.md#bull-board): the real worker runs against
 * a fake Cal.com answering 503 to every token call until a few users' refresh jobs land in Failed;
 * then Cal.com recovers and everyone else refreshes. Chromium (behind basic auth) opens the board and
 * a failed job's page, which must show Cal.com's status and error code, the attempt number and the
 * next time, and no token anywhere in the page or in the API responses it received. Saves the two
 * screenshots the docs show (docs/img, with UPDATE_SCREENSHOTS=1).
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { jest } from "@jest/globals";
import type { Job, Queue } from "bullmq";
import type { FastifyInstance } from "fastify";
import type { Browser, Page } from "playwright-core";
import { createMetrics } from "../../src/metrics/metrics.js";
import { JOB_NAMES, QUEUES, refreshDedupId } from "../../src/queue/names.js";
import { REFRESH_JOB_DEFAULTS } from "../../src/queue/refresh-queue.js";
import type { WorkerApp } from "../../src/wiring/worker-app.js";
import { startHarness, type Harness, type SeededUser } from "../support/harness.js";
import { testLogger } from "../support/log-sink.js";
import { eventually, startWorker, uniquePrefix, useTokens, workerEnv } from "../support/worker-harness.js";
import { BROWSER_TIMEOUT_MS, boardPage, launchChromium, saveScreenshot } from "./board-browser.js";

// Jest 30 on Node 20 cannot require() ESM (@fastify/static → content-disposition); see bull-board.test.ts.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { createWebServer } = await import("../../src/http/web-server.js");

jest.setTimeout(120_000);

const BOARD = "/admin/queues";
const CREDS = { username: "ops", password: `pw-${randomBytes(8).toString("hex")}` };
const ATTEMPTS = 3;
const ISO = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/;
const prefix = uniquePrefix();

let h: Harness;
let worker: WorkerApp;
let app: FastifyInstance | undefined;
let browser: Browser | undefined;
let origin = "";
const seeded: SeededUser[] = [];
let failedJobId = "";

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  worker = await startWorker(workerEnv(h, prefix, { SWEEP_INTERVAL_SECONDS: "1" }));
  const queues = { refresh: worker.refreshQueue as Queue, sweep: worker.sweepQueue, events: worker.eventsQueue as Queue };
  app = createWebServer({
    queues,
    metrics: createMetrics({ queues: Object.values(queues), defaultMetrics: false }),
    logger: testLogger().logger,
    bullBoard: CREDS,
    readiness: async () => ({ ok: true, checks: {} }),
  });
  origin = await app.listen({ port: 0, host: "127.0.0.1" });
  browser = await launchChromium();
  await failSomeThenRecover();
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await worker?.close();
  await h?.close();
});

/** Two users fail for good during an outage (jobs of 3 attempts); then eight more refresh normally. */
async function failSomeThenRecover(): Promise<void> {
  h.fake.faults.always("status503");
  const failing = await Promise.all([h.seedManaged(), h.seedManaged()]);
  seeded.push(...failing);
  await useTokens(h, failing); // in use: the worker keeps them fresh (idle users' jobs make no call)
  const jobs: Job[] = [];
  for (const user of failing) {
    const id = await worker.refreshQueue.getDeduplicationJobId(refreshDedupId(user.userUlid));
    if (id) await (await worker.refreshQueue.getJob(id))?.remove();
    const opts = { ...REFRESH_JOB_DEFAULTS, attempts: ATTEMPTS, delay: 500, deduplication: { id: refreshDedupId(user.userUlid) } };
    jobs.push(await worker.refreshQueue.add(JOB_NAMES.refresh, { userUlid: user.userUlid }, opts));
    await h.db.calToken.update({ where: { userUlid: user.userUlid }, data: { nextRefreshAt: new Date(Date.now() - 1_000) } });
  }
  const allFailed = async () => (await Promise.all(jobs.map((j) => j.getState()))).every((s) => s === "failed");
  if (!(await eventually(allFailed, 60_000, 250))) throw new Error("the outage jobs did not reach Failed");
  failedJobId = jobs[0]!.id!;
  h.fake.faults.clear();
  // Short-lived tokens: each is refreshed within a few seconds, so the board shows completed jobs.
  const healthy = await Promise.all(Array.from({ length: 8 }, () => h.seedManaged({ ttlMs: 8_000 })));
  seeded.push(...healthy);
  await useTokens(h, healthy);
  const users = healthy.map((u) => u.userUlid);
  const refreshed = async () => (await h.db.calToken.count({ where: { userUlid: { in: users }, version: { gt: 1 } } })) === users.length;
  if (!(await eventually(refreshed, 30_000))) throw new Error("the healthy users were not refreshed");
}

/** Every token the fake Cal.com issued in this run (seeded and rotated), plus the seeded pairs. */
function issuedTokens(): string[] {
  const file = process.env.TEST_ISSUED_TOKENS_FILE;
  const issued = file
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((t) => t.length >= 16)
    : [];
  return [...issued, ...seeded.flatMap((u) => [u.accessToken, u.refreshToken])];
}

async function expectNoToken(page: Page, received: string[]): Promise<void> {
  const html = await page.content();
  const tokens = issuedTokens();
  expect(tokens.length).toBeGreaterThan(seeded.length * 2);
  expect(received.length).toBeGreaterThan(0);
  for (const token of tokens) {
    expect(html.includes(token)).toBe(false);
    expect(received.filter((body) => body.includes(token))).toEqual([]);
  }
}

test("the overview shows the failed, delayed and completed refresh jobs", async () => {
  const received: string[] = [];
  const page = await boardPage(browser!, origin, CREDS, received);
  await page.goto(`${origin}${BOARD}`, { waitUntil: "domcontentloaded" });
  for (const name of [QUEUES.refresh, QUEUES.sweep, QUEUES.events]) {
    await page.getByText(name, { exact: true }).first().waitFor({ timeout: BROWSER_TIMEOUT_MS });
  }
  const text = (await page.evaluate(() => document.body.textContent ?? "")).toLowerCase();
  expect(text).not.toContain("rate limited");
  await saveScreenshot(page, "board-overview.png", true);
  await expectNoToken(page, received);
});

test("a failed job's page shows Cal.com's status and code, the attempt and the next time, and no token", async () => {
  const received: string[] = [];
  const page = await boardPage(browser!, origin, CREDS, received);
  await page.goto(`${origin}${BOARD}/queue/${QUEUES.refresh}/${failedJobId}`, { waitUntil: "domcontentloaded" });
  await page.getByText("ServiceUnavailableException").first().waitFor({ timeout: BROWSER_TIMEOUT_MS });

  const text = await page.evaluate(() => document.body.textContent ?? "");
  expect(text).toContain(`calcom.transient: Cal.com 503 (ServiceUnavailableException) — attempt ${ATTEMPTS}/${ATTEMPTS}`);
  expect(text).toMatch(new RegExp(`the sweep queues the user again at ${ISO.source}`));
  expect(text).not.toMatch(/\bat (async )?\S+ \(|node_modules|\.ts:\d+/); // no stack trace
  await saveScreenshot(page, "board-failed-job.png", true);

  // The job's log has one line per attempt, each with its next try.
  await page.getByText("Logs", { exact: true }).first().click();
  await page.getByText(`attempt 1/${ATTEMPTS}, next try`, { exact: false }).first().waitFor({ timeout: BROWSER_TIMEOUT_MS });
  const logs = await page.evaluate(() => document.body.textContent ?? "");
  expect(logs).toContain(`calcom.transient: Cal.com 503 (ServiceUnavailableException) — attempt 2/${ATTEMPTS}, next try `);
  await saveScreenshot(page, "board-failed-job-logs.png");
  await expectNoToken(page, received);
});
