/**
 * The boot check (docs/oauth2.md#the-boot-check): the worker and web processes refuse to start, exit 2
 * with one line per kind, when users of a kind are stored whose Cal.com client is not configured. Users
 * that must reconnect do not count, and a Platform-only deployment with only managed users runs as before.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { ConfigError } from "../../../src/core/errors.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { type Harness, startHarness } from "../../support/harness.js";
import { eventually, spawnWorker, startWorker, uniquePrefix, useTokens, workerEnv } from "../../support/worker-harness.js";

const WEB_MAIN = path.resolve(import.meta.dirname, "../../../src/main/web.ts");
const NO_PLATFORM = { CAL_CLIENT_ID: "", CAL_CLIENT_SECRET: "" };
const NO_OAUTH2 = { CAL_OAUTH_CLIENT_ID: "", CAL_OAUTH_CLIENT_SECRET: "" };
const MANAGED_LINE =
  "CAL_CLIENT_ID: required: 2 active managed users are stored, and only the Platform client (CAL_CLIENT_ID, CAL_CLIENT_SECRET) can refresh them (docs/oauth2.md#the-boot-check)";

const prefix = uniquePrefix();
let h: Harness;
let worker: WorkerApp | undefined;
let oauth2User: string;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  // Two managed users in use (the worker keeps them fresh once it may start).
  await useTokens(h, [await h.seedManaged({ ttlMs: 6_000 }), await h.seedManaged({ ttlMs: 6_000 })]);
  oauth2User = (await h.seedOAuth2()).userUlid;
});
afterAll(async () => {
  await worker?.close();
  await h.close();
});

it("a worker with managed users stored and no Platform client exits 2 with the line", async () => {
  const proc = spawnWorker(workerEnv(h, prefix, NO_PLATFORM));
  let stderr = "";
  proc.child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exit = await proc.exited;
  expect(exit.code).toBe(2);
  expect(stderr).toBe(`Invalid configuration:\n  - ${MANAGED_LINE}\n`);
  expect(proc.output()).not.toContain("worker started");
}, 30_000);

it("so does the web process", () => {
  const res = spawnSync(process.execPath, ["--import", "tsx", WEB_MAIN], {
    env: { PATH: process.env.PATH ?? "", ...workerEnv(h, prefix, { ...NO_PLATFORM, PORT: "0" }) },
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(res.status).toBe(2);
  expect(res.stderr).toBe(`Invalid configuration:\n  - ${MANAGED_LINE}\n`);
}, 30_000);

it("oauth2 users stored and no OAuth 2.0 app: the start is refused in-process too", async () => {
  const err = await startWorker(workerEnv(h, prefix, NO_OAUTH2)).then(
    () => new Error("the worker started"),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as ConfigError).problems).toEqual([
    expect.stringMatching(/^CAL_OAUTH_CLIENT_ID: required: 1 active oauth2 user is stored, /),
  ]);
});

it("users who must reconnect do not count: a Platform-only worker then starts and refreshes the managed users", async () => {
  await h.db.calToken.update({ where: { userUlid: oauth2User }, data: { status: "RECONNECT_REQUIRED" } });
  worker = await startWorker(workerEnv(h, prefix, NO_OAUTH2));
  const refreshedByWorker = async () =>
    (await h.db.calTokenAudit.groupBy({ by: ["userUlid"], where: { outcome: "REFRESHED", trigger: "worker" } })).length === 2;
  expect(await eventually(refreshedByWorker, 15_000)).toBe(true);
  expect(h.fake.stats().oauth2Refreshes).toBe(0);
}, 30_000);
