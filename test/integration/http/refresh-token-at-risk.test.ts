/**
 * `cal_token_refresh_token_at_risk` on the web process's /metrics (the real composition root): ACTIVE
 * OAuth2 users whose refresh token expires within REFRESH_TOKEN_AT_RISK_SECONDS, or has expired
 * already, are counted; managed users, users who must reconnect and refresh tokens further out are not
 * (docs/operations.md#refresh-tokens-at-risk).
 */
import { randomBytes } from "node:crypto";
import { jest } from "@jest/globals";
import { loadConfig } from "../../../src/config/config.js";
import type { WebApp } from "../../../src/wiring/web-app.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { testLogger } from "../../support/log-sink.js";
import { httpClient } from "./http-client.js";

// See web-server.test.ts: jest's CommonJS loader needs the ESM-only content-disposition handed over.
const contentDisposition = await import("content-disposition");
jest.mock("content-disposition", () => contentDisposition);
const { startWebApp } = await import("../../../src/wiring/web-app.js");

const TOKEN = `mt_${randomBytes(24).toString("hex")}`;
const H = 3_600_000;
const D = 24 * H;
let h: Harness;
const apps: WebApp[] = [];

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true });
});
afterAll(async () => {
  for (const a of apps) await a.close();
  await h.close();
});

async function gauge(env: Record<string, string> = {}): Promise<number> {
  const app = await startWebApp(loadConfig(h.env({ METRICS_BEARER_TOKEN: TOKEN, ...env })), {
    logger: testLogger().logger,
    host: "127.0.0.1",
    port: 0,
  });
  apps.push(app);
  const res = await httpClient(app.url)("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.statusCode).toBe(200);
  const line = /^cal_token_refresh_token_at_risk (\d+)$/m.exec(res.body);
  expect(line).not.toBeNull();
  return Number(line![1]);
}

it("counts ACTIVE OAuth2 users whose refresh token expires within the window", async () => {
  // Every OAuth2 user saved now gets an expiry 30 days out: nothing at risk.
  const fresh = await h.seedOAuth2();
  expect((await h.db.calToken.findUniqueOrThrow({ where: { userUlid: fresh.userUlid } })).refreshTokenExpiresAt).not.toBeNull();
  expect(await gauge()).toBe(0);

  const set = async (userUlid: string, data: { refreshTokenExpiresAt: Date; status?: "ACTIVE" | "RECONNECT_REQUIRED" }) =>
    h.db.calToken.update({ where: { userUlid }, data });
  const now = Date.now();
  await set((await h.seedOAuth2()).userUlid, { refreshTokenExpiresAt: new Date(now + H) }); // at risk
  await set((await h.seedOAuth2()).userUlid, { refreshTokenExpiresAt: new Date(now - H) }); // expired, nobody has tried it: at risk
  await set((await h.seedOAuth2()).userUlid, { refreshTokenExpiresAt: new Date(now + 2 * D) }); // only in a 2.5-day window
  await set((await h.seedOAuth2()).userUlid, { refreshTokenExpiresAt: new Date(now + H), status: "RECONNECT_REQUIRED" }); // lost already
  await set((await h.seedManaged()).userUlid, { refreshTokenExpiresAt: new Date(now + H) }); // managed: Cal.com does not enforce it

  expect(await gauge()).toBe(2);
  expect(await gauge({ REFRESH_TOKEN_AT_RISK_SECONDS: String((2.5 * D) / 1000) })).toBe(3);
});
