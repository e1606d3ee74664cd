/**
 * Events end to end through the worker: a failing refresh raises token.refresh_failing once, the
 * recovery raises token.recovered; both arrive signed, exactly once by idempotency key, even though
 * the receiver fails the first attempts.
 */
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startWebhookReceiver, type WebhookReceiver } from "../../fakes/webhook-receiver.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { eventually, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

const SECRET = "whsec_test_0123456789abcdef";
let h: Harness;
let worker: WorkerApp;
let receiver: WebhookReceiver;
const prefix = uniquePrefix();

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  receiver = await startWebhookReceiver({ secret: SECRET, failFirst: 2 });
});
afterAll(async () => {
  await worker?.close();
  await receiver.close();
  await h.close();
});

it("refresh_failing then recovered, each delivered once, verified", async () => {
  // Due now, token expires within the alert window, in use (so the worker keeps it fresh): the user is
  // affected by a failure.
  const u = await h.seedManaged();
  await useTokens(h, [u]);
  await h.db.calToken.update({
    where: { userUlid: u.userUlid },
    data: { accessTokenExpiresAt: new Date(Date.now() + 60_000), nextRefreshAt: new Date(Date.now() - 1_000) },
  });
  h.fake.faults.always("status503");
  worker = await startWorker(workerEnv(h, prefix, { EVENTS_WEBHOOK_URL: receiver.url, EVENTS_WEBHOOK_SECRET: SECRET }));
  const mine = () => receiver.uniqueEvents().filter((e) => e.userUlid === u.userUlid);

  expect(await eventually(() => mine().some((e) => e.type === "token.refresh_failing"), 30_000)).toBe(true);
  // Several failed attempts, one alert.
  expect(h.fake.stats().calls["managed.refresh"]).toBeGreaterThan(1);
  h.fake.faults.clear();
  expect(await eventually(() => mine().some((e) => e.type === "token.recovered"), 40_000)).toBe(true);

  expect(mine().map((e) => e.type)).toEqual(["token.refresh_failing", "token.recovered"]);
  const attempts = receiver.received.filter((r) => r.userUlid === u.userUlid);
  expect(attempts.every((r) => r.verified)).toBe(true);
  expect(attempts.length).toBeGreaterThan(2); // the receiver's failures were retried
  const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
  expect(row).toMatchObject({ status: "ACTIVE", failureCount: 0 });
  for (const r of attempts) {
    expect(r.body).not.toContain(u.accessToken);
    expect(r.body).not.toContain(u.refreshToken);
  }
}, 90_000);
