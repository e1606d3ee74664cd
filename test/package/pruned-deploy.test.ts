/**
 * A Heroku-style deploy of a copy of the repository (docs/deploy-heroku.md): `npm ci` (which builds,
 * through `prepare`), `npm run build`, `npm prune --omit=dev`, then everything the runtime runs, from
 * the pruned copy and without tsx, TypeScript or the prisma CLI: the Procfile's release phase against
 * a fresh database, the CLI through its npm scripts, `npm start` (web answers /healthz) and the
 * Procfile's worker (starts, and exits 0 on SIGTERM).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { Queue } from "bullmq";
import pg from "pg";
import { envSchema } from "../../src/config/schema.js";
import { QUEUES, SWEEP_SCHEDULER_ID } from "../../src/queue/names.js";
import { TEST_ENCRYPTION_KEYS } from "../support/harness.js";
import { deleteRedisKeys } from "../support/redis-keys.js";
import { dropTestDatabase } from "../support/test-db.js";
import { childEnv, copyRepo, createEmptyDatabase, expectOk, freePort, killStarted, run, start } from "./support.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const dbName = `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_prune`;
const prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}prune`;
let dir: string;
let app: string;
let env: Record<string, string>;
let databaseUrl: string;

/** Procfile lines as argv: each is a plain command, so Heroku's shell adds nothing to it. */
function procfile(): Record<string, string[]> {
  const entries = readFileSync(path.join(app, "Procfile"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [name, command] = [l.slice(0, l.indexOf(":")).trim(), l.slice(l.indexOf(":") + 1).trim()];
      expect(command).toMatch(/^[\w./ -]+$/);
      return [name, command.split(/\s+/)] as const;
    });
  return Object.fromEntries(entries);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "ctw-prune-"));
  app = path.join(dir, "app");
  copyRepo(app);
  expectOk(await run("npm", ["ci"], { cwd: app, timeoutMs: 150_000 }), "npm ci");
  expectOk(await run("npm", ["run", "build"], { cwd: app }), "npm run build");
  expectOk(await run("npm", ["prune", "--omit=dev"], { cwd: app }), "npm prune --omit=dev");
  databaseUrl = await createEmptyDatabase(dbName);
  env = childEnv({
    DATABASE_URL: databaseUrl,
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    CAL_API_URL: "http://127.0.0.1:9",
    CAL_CLIENT_ID: "fake-client",
    CAL_CLIENT_SECRET: "fake-secret",
    CAL_OAUTH_CLIENT_ID: "fake-oauth-client",
    CAL_OAUTH_CLIENT_SECRET: "fake-oauth-secret",
    TOKEN_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
  });
}, 240_000);

afterAll(async () => {
  killStarted();
  await dropTestDatabase(dbName);
  await deleteRedisKeys(REDIS_URL, prefix);
  if (dir && !process.env.KEEP_TEST_ARTIFACTS) rmSync(dir, { recursive: true, force: true });
});

it("the pruned install has the build and none of the development tools", () => {
  // (typescript and prisma may stay: npm keeps them as optional peers of @prisma/client; nothing runs them.)
  for (const dev of ["tsx", "jest", "@biomejs/biome", "@swc/core", "dependency-cruiser"]) {
    expect([dev, existsSync(path.join(app, "node_modules", dev))]).toEqual([dev, false]);
  }
  expect(existsSync(path.join(app, "dist/src/generated/prisma/client.js"))).toBe(true);
  expect(Object.keys(procfile()).sort()).toEqual(["release", "web", "worker"]);
});

it("app.json runs the Procfile's processes, on the pinned Node, and sets only variables the service reads", () => {
  const manifest = JSON.parse(readFileSync(path.join(app, "app.json"), "utf8"));
  expect(Object.keys(manifest.formation).sort()).toEqual(["web", "worker"]);
  expect(manifest.addons.map((a: { plan: string }) => a.plan.split(":")[0]).sort()).toEqual(["heroku-postgresql", "heroku-redis"]);
  expect(Object.keys(manifest.env).filter((k) => !(k in envSchema.shape))).toEqual([]);
  const pkg = JSON.parse(readFileSync(path.join(app, "package.json"), "utf8"));
  expect(pkg.engines.node).toMatch(/^(22|24)\.x$/);
  expect(pkg.scripts.start).toBe(procfile().web!.join(" "));
});

it("release migrates a fresh database and creates the sweep's scheduler; running it again changes nothing", async () => {
  const [cmd, ...args] = procfile().release!;
  expectOk(await run(cmd!, args, { cwd: app, env }), "release");
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const rows = await db.query(`SELECT count(*)::int AS n FROM "_prisma_migrations" WHERE finished_at IS NOT NULL`);
    expect(rows.rows[0].n).toBeGreaterThanOrEqual(4);
  } finally {
    await db.end();
  }
  const sweep = new Queue(QUEUES.sweep, { connection: { url: REDIS_URL }, prefix });
  try {
    expect(await sweep.getJobScheduler(SWEEP_SCHEDULER_ID)).toBeTruthy();
  } finally {
    await sweep.close();
  }
  expectOk(await run(cmd!, args, { cwd: app, env }), "release, again");
});

it("the CLI and the migration script run from the pruned install through their npm scripts", async () => {
  const help = await run("npm", ["run", "--silent", "cli", "--", "--help"], { cwd: app, env });
  expectOk(help, "npm run cli -- --help");
  expect(help.stdout).toMatch(/cal-tokens/);
  const list = await run("npm", ["run", "--silent", "cli", "--", "list", "--json"], { cwd: app, env });
  expectOk(list, "npm run cli -- list --json");
  expect(JSON.parse(list.stdout)).toMatchObject({ rows: [] });
  expectOk(await run("npm", ["run", "--silent", "migrate"], { cwd: app, env }), "npm run migrate");
  // What `heroku run npx cal-tokens …` does: npx finds the project's own bin.
  const npx = await run("npx", ["--no-install", "cal-tokens", "--help"], { cwd: app, env });
  expectOk(npx, "npx cal-tokens --help");
  expect(npx.stdout).toMatch(/cal-tokens/);
  expect(`${help.stderr}${list.stderr}`).not.toMatch(/tsx|not found/);
});

it("npm start serves /healthz; web and worker from the Procfile exit 0 on SIGTERM", async () => {
  const healthz = async (port: number) => (await fetch(`http://127.0.0.1:${port}/healthz`)).status;
  let port = await freePort();
  const npmStart = start("npm", ["start"], { cwd: app, env: { ...env, PORT: String(port) }, label: "npm start" });
  await npmStart.waitFor("web started", 20_000);
  expect(await healthz(port)).toBe(200);
  npmStart.signal("SIGTERM");
  expect(await npmStart.groupGone(15_000)).toBe(true);

  const procs = procfile();
  port = await freePort();
  const [webCmd, ...webArgs] = procs.web!;
  const web = start(webCmd!, webArgs, { cwd: app, env: { ...env, PORT: String(port) }, label: "web" });
  await web.waitFor("web started", 20_000);
  expect(await healthz(port)).toBe(200);
  web.signal("SIGTERM");
  expect(await web.exited).toEqual({ code: 0, signal: null });

  const [workerCmd, ...workerArgs] = procs.worker!;
  const worker = start(workerCmd!, workerArgs, { cwd: app, env, label: "worker" });
  await worker.waitFor("worker started", 20_000);
  worker.signal("SIGTERM");
  expect(await worker.exited).toEqual({ code: 0, signal: null });
}, 90_000);
