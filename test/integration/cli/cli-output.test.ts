/**
 * What `cal-tokens` prints: `--json` on every command parses (one document, or JSON lines for
 * `import`) and carries no secret; the progress line of `import` and `rotate-key` shows on a
 * terminal and never when stderr is piped (docs/cli.md#json-output, docs/cli.md#progress).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ulid } from "ulid";
import { captureIo } from "../../../src/cli/io.js";
import { runCli } from "../../../src/cli/program.js";
import type { WorkerApp } from "../../../src/wiring/worker-app.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { startWorker, uniquePrefix, workerEnv } from "../../support/worker-harness.js";

let h: Harness;
let worker: WorkerApp;
let dir: string;
const prefix = uniquePrefix();
const secrets: string[] = [];

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  worker = await startWorker(workerEnv(h, prefix));
  dir = mkdtempSync(path.join(tmpdir(), "cli-output-"));
});
afterAll(async () => {
  await worker.close();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], opts: { stdin?: string; tty?: boolean; env?: Record<string, string> } = {}) {
  const io = captureIo({
    env: opts.env ?? h.env(),
    stderrIsTTY: opts.tty === true,
    ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
  });
  const code = await runCli(args, { io });
  const res = { code, out: io.out(), err: io.err() };
  recordForSecretScan(res);
  for (const s of secrets) expect(`${res.out}${res.err}`).not.toContain(s);
  return res;
}

function record(userUlid = ulid()) {
  const u = h.fake.createManagedUser({ accessTokenTtlMs: 60 * 60_000 });
  secrets.push(u.accessToken, u.refreshToken);
  const line = JSON.stringify({
    userUlid,
    accessToken: u.accessToken,
    refreshToken: u.refreshToken,
    accessTokenExpiresAt: u.accessTokenExpiresAt,
    calUserId: u.calUserId,
  });
  return { userUlid, line };
}

/** Exactly one JSON document (one line). */
function one(out: string): Record<string, unknown> {
  expect(out.endsWith("\n")).toBe(true);
  expect(out.trimEnd().split("\n")).toHaveLength(1);
  return JSON.parse(out) as Record<string, unknown>;
}

/** Carriage return, then erase to the end of the line: the progress line is redrawn in place. */
const CLEAR_LINE = "\r\x1b[K";
const ISO = expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);

describe("--json", () => {
  it("import: JSON lines, one per record and a summary; problems go there, not to stderr", async () => {
    const a = record();
    const res = await cli(["import", "--json"], { stdin: `${a.line}\n\n{"userUlid": 1}\n${a.line}\n` });
    expect(res.code).toBe(1);
    const lines = res.out
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as unknown);
    expect(lines).toEqual([
      { line: 1, result: "imported", userUlid: a.userUlid },
      { line: 3, result: "invalid", problem: expect.stringContaining("userUlid: ") },
      { line: 4, result: "kept", userUlid: a.userUlid },
      { summary: { imported: 1, kept: 1, invalid: 1, failed: 0 } },
    ]);
    expect(res.err).toBe("");
  });

  it("status, list, refresh (queued and waited for): one document each, no token", async () => {
    const a = record();
    expect((await cli(["import"], { stdin: a.line })).code).toBe(0);
    const status = one((await cli(["status", a.userUlid, "--json"])).out);
    expect(status).toMatchObject({ userUlid: a.userUlid, status: "ACTIVE", kind: "managed", accessTokenExpiresAt: ISO, version: 1 });
    const list = one((await cli(["list", "--json", "--limit", "1"])).out);
    expect(list).toEqual({
      rows: [expect.objectContaining({ userUlid: expect.any(String), nextRefreshAt: ISO })],
      next: expect.any(String),
    });
    expect(one((await cli(["refresh", a.userUlid, "--json"])).out)).toEqual({ userUlid: a.userUlid, queued: true });
    const waited = await cli(["refresh", a.userUlid, "--wait", "--json"]);
    expect(waited.code).toBe(0);
    expect(one(waited.out)).toEqual({ userUlid: a.userUlid, refreshed: true, status: "ACTIVE", accessTokenExpiresAt: ISO, error: null });
  }, 30_000);

  it("sweep, sweep --dry-run, rotate-key and migrate: one document each", async () => {
    expect(one((await cli(["sweep", "--dry-run", "--json"])).out)).toEqual({
      dryRun: true,
      horizonSeconds: 120,
      visited: expect.any(Number),
      pages: expect.any(Number),
      durationMs: expect.any(Number),
      complete: true,
    });
    expect(one((await cli(["sweep", "--json"])).out)).toMatchObject({ dryRun: false, complete: true });
    const rotated = await cli(["rotate-key", "--json"]);
    expect(rotated.code).toBe(0);
    expect(one(rotated.out)).toEqual({
      activeKeyId: "test1",
      rows: { reencrypted: 0, leased: [], changed: [], failed: [], remaining: 0 },
      heldPairs: { reencrypted: 0, changed: [], failed: [], remaining: 0 },
    });
    expect(one((await cli(["migrate", "--json"], { env: { DATABASE_URL: h.databaseUrl } })).out)).toEqual({
      applied: [],
      alreadyApplied: expect.arrayContaining([expect.stringMatching(/_init$/)]),
    });
  });

  it("a failure is an error document: an unknown user, a failed refresh", async () => {
    const unknown = ulid();
    const status = await cli(["status", unknown, "--json"]);
    expect(status.code).toBe(1);
    expect(one(status.out)).toEqual({ error: { code: "token.not_found", message: `no tokens stored for ${unknown}` } });
    expect(status.err.split("\n")[0]).toBe(`cal-tokens: no tokens stored for ${unknown}`);
    const refresh = await cli(["refresh", unknown, "--json"]);
    expect(refresh.code).toBe(1);
    expect(one(refresh.out)).toEqual({
      error: { code: "token.not_found", message: expect.stringContaining(`refresh of ${unknown} failed`) },
    });
  });
});

describe("progress", () => {
  it("import: on a terminal, count, rate, share and ETA of the file, redrawn in place on stderr and cleared; piped, nothing", async () => {
    const file = path.join(dir, "three.jsonl");
    writeFileSync(file, `${[record(), record(), record()].map((r) => r.line).join("\n")}\n`);
    const res = await cli(["import", file], { tty: true });
    expect(res.code).toBe(0);
    // The rate and ETA need time to have passed since the start (the unit test pins them with a clock).
    expect(res.err.startsWith(CLEAR_LINE)).toBe(true);
    expect(res.err.slice(CLEAR_LINE.length)).toMatch(/^import: 1 records( · [\d.,]+\/s)? · 3\d%( · ETA \d+:\d\d)?/);
    expect(res.err.endsWith(CLEAR_LINE)).toBe(true);
    expect(res.out).toContain("imported 3, already stored 0");
    const piped = await cli(["import", "-"], { stdin: record().line });
    expect(piped).toMatchObject({ code: 0, err: "" });
  });

  it("rotate-key on a terminal: rows done out of the rows to do", async () => {
    await cli(["import"], { stdin: record().line });
    const newKey = `next:${Buffer.alloc(32, 9).toString("base64")}`;
    const res = await cli(["rotate-key"], {
      tty: true,
      env: h.env({ TOKEN_ENCRYPTION_KEYS: `${newKey},${h.env().TOKEN_ENCRYPTION_KEYS}` }),
    });
    expect(res.code).toBe(0);
    expect(res.err.startsWith(CLEAR_LINE)).toBe(true);
    expect(res.err.slice(CLEAR_LINE.length)).toMatch(/^rotate-key: 1 rows( · [\d.,]+\/s)? · \d+%( · ETA \d+:\d\d)?/);
    expect(res.err.endsWith(CLEAR_LINE)).toBe(true);
  });
});
