// @ts-check
/**
 * `npm test`: the example against the fake Cal.com of cal-token-worker's repository (`npm run fake-calcom`
 * there prints its URL) and a real Postgres and Redis. It applies the migrations and runs the worker from
 * the installed package, as a deployment would, then drives the app over HTTP:
 * OAuth 2.0 connect (PKCE) → a Cal.com call → the 498 replay → a Platform managed user checked through
 * the worker → a signed webhook from the worker for a revoked grant, and forged ones refused.
 *
 * Needs DATABASE_URL (an existing, possibly empty database) and CAL_API_URL (the fake). REDIS_URL
 * defaults to redis://127.0.0.1:6379; the client ids default to the fake's.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { closeCalTokenClient, ensureValidCalToken, requestCalTokenRefresh, saveCalTokens } from "cal-token-worker";
import { createApp, optionsFromEnv } from "../src/app.js";

const env = process.env;
for (const name of ["DATABASE_URL", "CAL_API_URL"]) if (!env[name]) throw new Error(`${name} is required (see the header of this file)`);
env.CAL_CLIENT_ID ??= "fake-client";
env.CAL_CLIENT_SECRET ??= "fake-secret";
env.CAL_OAUTH_CLIENT_ID ??= "fake-oauth-client";
env.CAL_OAUTH_CLIENT_SECRET ??= "fake-oauth-secret";
env.TOKEN_ENCRYPTION_KEYS ??= `example:${randomBytes(32).toString("base64")}`;
env.QUEUE_PREFIX ??= `example${randomBytes(4).toString("hex")}`;
env.EVENTS_WEBHOOK_SECRET ??= randomBytes(24).toString("hex");

const calApi = String(env.CAL_API_URL).replace(/\/+$/, "");
const packageDir = path.dirname(fileURLToPath(import.meta.resolve("cal-token-worker/package.json")));
/** @type {import("cal-token-worker").TokenEvent[]} */
const events = [];
const server = createApp({ ...optionsFromEnv(), onEvent: (e) => void events.push(e) });
/** @type {import("node:child_process").ChildProcess | undefined} */
let worker;
let app = "";

const B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
function newUlid() {
  let t = Date.now();
  let time = "";
  for (let i = 0; i < 10; i++, t = Math.floor(t / 32)) time = B32[t % 32] + time;
  return time + [...randomBytes(16)].map((b) => B32[b % 32]).join("");
}

/**
 * The fake's control routes (/__fake/…), which only the fake has.
 * @param {string} route @param {unknown} [body] @returns {Promise<any>}
 */
async function fake(route, body) {
  const res = await fetch(`${calApi}/__fake/${route}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  assert.ok(res.ok, `fake ${route}: ${res.status}`);
  return res.json();
}

/** @param {() => boolean} check @param {number} ms */
async function eventually(check, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (check()) return true;
  return check();
}

before(async () => {
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const address = /** @type {import("node:net").AddressInfo} */ (server.address());
  app = `http://127.0.0.1:${address.port}`;
  env.EVENTS_WEBHOOK_URL = `${app}/webhooks/cal-token-worker`;
  // The release phase (migrations + the sweep's scheduler) and the worker, from the installed package.
  const release = spawnSync(process.execPath, [path.join(packageDir, "dist/src/main/release.js")], { env, encoding: "utf8" });
  process.stderr.write(release.stdout + release.stderr);
  assert.equal(release.status, 0, "release failed");
  worker = spawn(process.execPath, [path.join(packageDir, "dist/src/main/worker.js")], { env, stdio: ["ignore", "pipe", "inherit"] });
  const child = worker;
  let output = "";
  await new Promise((resolve, reject) => {
    child.stdout?.on("data", (/** @type {Buffer} */ d) => {
      process.stderr.write(d);
      output += d.toString();
      if (output.includes("worker started")) resolve(undefined);
    });
    child.on("exit", (code) => reject(new Error(`worker exited (${code}) before it started`)));
  });
});

after(async () => {
  if (worker && worker.exitCode === null) {
    const exited = new Promise((resolve) => worker?.on("exit", resolve));
    worker.kill("SIGTERM");
    assert.equal(await exited, 0, "the worker stops with exit 0 on SIGTERM");
  }
  await closeCalTokenClient();
  server.close();
});

const oauthUser = newUlid();
const managedUser = newUlid();

test("OAuth 2.0 connect: /cal/connect sends the browser to Cal.com with PKCE; the callback stores the user", async () => {
  const start = await fetch(`${app}/cal/connect?user=${oauthUser}`, { redirect: "manual" });
  assert.equal(start.status, 302);
  const to = new URL(String(start.headers.get("location")));
  assert.equal(to.searchParams.get("code_challenge_method"), "S256");
  // What Cal.com does after the user consents: a code bound to the redirect URI and the challenge.
  const { code } = await fake("authorization-codes", {
    clientId: env.CAL_OAUTH_CLIENT_ID,
    redirectUri: to.searchParams.get("redirect_uri"),
    codeChallenge: to.searchParams.get("code_challenge"),
  });
  const back = await fetch(`${app}/cal/callback?code=${encodeURIComponent(code)}&state=${to.searchParams.get("state")}`);
  assert.equal(back.status, 200);
  const body = /** @type {any} */ (await back.json());
  assert.equal(body.connected, true);
  assert.equal(body.status, "ACTIVE");
  const replay = await fetch(`${app}/cal/callback?code=${encodeURIComponent(code)}&state=${to.searchParams.get("state")}`);
  assert.equal(replay.status, 400, "a state is used once");
});

test("a Cal.com call with ensureValidCalToken + handleCalApiResponse", async () => {
  const res = await fetch(`${app}/api/cal/me?user=${oauthUser}`);
  assert.equal(res.status, 200);
  assert.equal(typeof (/** @type {any} */ (await res.json()).data.id), "number");
});

test("a Platform managed user: saveCalTokens, then requestCalTokenRefresh proves it through the worker", async () => {
  const before = await fake("stats");
  const res = await fetch(`${app}/cal/managed-users`, {
    method: "POST",
    body: JSON.stringify({ userUlid: managedUser, email: `m${randomBytes(4).toString("hex")}@example.com` }),
  });
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { connected: true, refreshed: true });
  const stats = await fake("stats");
  assert.equal((stats.calls["managed.refresh"] ?? 0) - (before.calls["managed.refresh"] ?? 0), 1);
});

/**
 * Cal.com expires the user's current token early: the app's call meets 498 (managed users) or 401
 * "Invalid Access Token." (OAuth 2.0 tokens), refreshes once and replays once.
 * @param {string} userUlid @param {"status498" | "status401"} answer @param {string} tokenRoute
 */
async function expiredTokenIsReplayed(userUlid, answer, tokenRoute) {
  const token = await ensureValidCalToken(userUlid);
  assert.ok(token.success && token.tokenInfo);
  await fake("expire-access-token", { accessToken: token.tokenInfo.accessToken });
  const before = await fake("stats");
  const res = await fetch(`${app}/api/cal/me?user=${userUlid}`);
  assert.equal(res.status, 200);
  const stats = await fake("stats");
  assert.equal(stats[answer] - before[answer], 1, `Cal.com answered ${answer.slice(-3)} once`);
  assert.equal((stats.calls[tokenRoute] ?? 0) - (before.calls[tokenRoute] ?? 0), 1, "one refresh");
}

test("a token Cal.com has expired is refreshed once and the call replayed (498, and 401 for OAuth 2.0)", async () => {
  await expiredTokenIsReplayed(managedUser, "status498", "managed.refresh");
  await expiredTokenIsReplayed(oauthUser, "status401", "oauth2.token");
});

test("webhooks: forged ones are refused; the worker's signed token.reconnect_required arrives", async () => {
  const forged = JSON.stringify({ id: "x", type: "token.recovered", userUlid: oauthUser, occurredAt: new Date().toISOString(), data: {} });
  const hook = `${app}/webhooks/cal-token-worker`;
  assert.equal((await fetch(hook, { method: "POST", body: forged })).status, 401);
  const wrong = { "x-cal-token-signature": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}` };
  assert.equal((await fetch(hook, { method: "POST", body: forged, headers: wrong })).status, 401);

  // A grant revoked at Cal.com: the refresh token is unknown there, so the worker's refresh is refused.
  const revoked = newUlid();
  const dead = () => `revoked-${randomBytes(24).toString("hex")}`;
  await saveCalTokens({
    userUlid: revoked,
    kind: "oauth2",
    accessToken: dead(),
    refreshToken: dead(),
    accessTokenExpiresAt: Date.now() + 1_800_000,
  });
  const result = await requestCalTokenRefresh(revoked, { wait: true, timeoutMs: 10_000 });
  assert.equal(result.error?.code, "token.reconnect_required");
  const arrived = await eventually(() => events.some((e) => e.type === "token.reconnect_required" && e.userUlid === revoked), 20_000);
  assert.ok(arrived, "the signed webhook reached the app");
  const res = await fetch(`${app}/api/cal/me?user=${revoked}`);
  assert.equal(res.status, 409);
  assert.equal(/** @type {any} */ (await res.json()).reconnect, `/cal/connect?user=${revoked}`);
});
