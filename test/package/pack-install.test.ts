/**
 * The module as a web app installs it (docs/integration.md): `npm pack` builds it (the `prepare`
 * script) and ships only what the runtime needs; the tarball installs into a fresh directory next to
 * the example app (examples/web-app), without the `prisma` CLI, with its types and its `cal-tokens`
 * bin; and the example's own check (`npm test` there) passes against the fake Cal.com, the run's
 * Postgres and Redis, with the release phase and the worker run from the installed package.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startFakeCalcom, type FakeCalcom } from "../fakes/calcom/index.js";
import { deleteRedisKeys } from "../support/redis-keys.js";
import { dropTestDatabase } from "../support/test-db.js";
import { childEnv, copyRepo, createEmptyDatabase, expectOk, REPO_ROOT, run } from "./support.js";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
const dbName = `${process.env.TEST_DATABASE_NAME ?? "ctw_test"}_pack`;
const prefix = `${process.env.TEST_QUEUE_PREFIX ?? "ctwtest"}pack`;
let dir: string;
let tarball: string;
let packed: string[];
let fake: FakeCalcom | undefined;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "ctw-pack-"));
  // A copy of the repository with the installed dependencies linked in: `npm pack` runs `prepare`
  // (prisma generate + tsc) there, never in the working tree other tests are reading.
  const repo = path.join(dir, "repo");
  copyRepo(repo);
  symlinkSync(path.join(REPO_ROOT, "node_modules"), path.join(repo, "node_modules"), "dir");
  const pack = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: repo });
  expectOk(pack, "npm pack");
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")))[0] as { filename: string; files: { path: string }[] };
  tarball = path.join(dir, info.filename);
  packed = info.files.map((f) => f.path);
}, 120_000);

afterAll(async () => {
  await fake?.close();
  await dropTestDatabase(dbName);
  await deleteRedisKeys(REDIS_URL, prefix);
  if (dir && !process.env.KEEP_TEST_ARTIFACTS) rmSync(dir, { recursive: true, force: true });
});

it("ships the compiled module, its types, the CLI, the entry points and the migrations, and nothing else", () => {
  const migrations = readdirSync(path.join(REPO_ROOT, "prisma/migrations"), { withFileTypes: true }).filter((d) => d.isDirectory());
  const expected = [
    "package.json",
    "README.md",
    "dist/src/index.js",
    "dist/src/index.d.ts",
    "dist/src/cli/main.js",
    "dist/src/main/release.js",
    "dist/src/main/web.js",
    "dist/src/main/worker.js",
    "dist/src/generated/prisma/client.js",
    "dist/jobs/refresh-token.js",
    "prisma/schema.prisma",
    ...migrations.map((d) => `prisma/migrations/${d.name}/migration.sql`),
  ];
  expect(packed).toEqual(expect.arrayContaining(expected));
  const stray = packed.filter((p) => !/^(dist\/(src|jobs)\/.+\.(js|d\.ts)|prisma\/.+|package\.json|README\.md)$/.test(p));
  expect(stray).toEqual([]);
  expect(packed.filter((p) => /^(test|bench|scripts|examples|docs|src)\//.test(p) || p.endsWith(".map"))).toEqual([]);
  expect(packed.length).toBeLessThan(400);
});

it("installs from the tarball into a fresh app and the example's check passes against the fake Cal.com", async () => {
  const app = path.join(dir, "app");
  copyRepo(app, path.join(REPO_ROOT, "examples/web-app"));
  const manifest = JSON.parse(readFileSync(path.join(app, "package.json"), "utf8"));
  manifest.dependencies["cal-token-worker"] = `file:${tarball}`;
  writeFileSync(path.join(app, "package.json"), JSON.stringify(manifest, null, 2));
  expectOk(await run("npm", ["install"], { cwd: app }), "npm install of the tarball");

  // Runs without the prisma CLI (the client was compiled into dist) and with a working bin.
  expect(existsSync(path.join(app, "node_modules/prisma"))).toBe(false);
  expect(existsSync(path.join(app, "node_modules/cal-token-worker/dist/src/generated/prisma/client.js"))).toBe(true);
  const bin = path.join(app, "node_modules/.bin/cal-tokens");
  expect(readFileSync(bin, "utf8").split("\n")[0]).toBe("#!/usr/bin/env node");
  const help = await run(bin, ["--help"], { cwd: app });
  expectOk(help, "cal-tokens --help");
  expect(help.stdout).toMatch(/cal-tokens/);

  fake = await startFakeCalcom({
    ...(process.env.TEST_ISSUED_TOKENS_FILE ? { issuedTokensFile: process.env.TEST_ISSUED_TOKENS_FILE } : {}),
  });
  const env = childEnv({
    DATABASE_URL: await createEmptyDatabase(dbName),
    REDIS_URL,
    CAL_API_URL: fake.url,
    QUEUE_PREFIX: prefix,
    SWEEP_INTERVAL_SECONDS: "5",
  });
  const check = await run("npm", ["test"], { cwd: app, env, timeoutMs: 120_000 });
  expectOk(check, "the example's npm test");
  expect(check.stdout).toMatch(/[#ℹ] pass 5\b/);
  expect(check.stdout).toMatch(/[#ℹ] fail 0\b/);
}, 240_000);
