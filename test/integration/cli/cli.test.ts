/**
 * `cal-tokens` in-process: the real program with captured io against the harness's own database,
 * Redis (own queue prefix) and the fake Cal.com. No output may contain a token.
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
let worker: WorkerApp | null = null;
let dir: string;
const prefix = uniquePrefix();
const secrets: string[] = [];

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: prefix } });
  dir = mkdtempSync(path.join(tmpdir(), "cli-test-"));
});
afterAll(async () => {
  await worker?.close();
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  const io = captureIo({ env: opts.env ?? h.env(), ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
  const code = await runCli(args, { io });
  const res = { code, out: io.out(), err: io.err() };
  recordForSecretScan(res);
  for (const s of secrets) expect(`${res.out}${res.err}`).not.toContain(s);
  expect(io.code()).toBe(code);
  return res;
}

/** A fake Cal.com user as an import line (the expiry as ISO text when asked). */
function record(opts: { ttlMs?: number; iso?: boolean; userUlid?: string } = {}) {
  const u = h.fake.createManagedUser({ accessTokenTtlMs: opts.ttlMs ?? 60 * 60_000 });
  secrets.push(u.accessToken, u.refreshToken);
  const userUlid = opts.userUlid ?? ulid();
  const expiry = opts.iso ? new Date(u.accessTokenExpiresAt).toISOString() : u.accessTokenExpiresAt;
  const line = JSON.stringify({
    userUlid,
    accessToken: u.accessToken,
    refreshToken: u.refreshToken,
    accessTokenExpiresAt: expiry,
    refreshTokenExpiresAt: u.refreshTokenExpiresAt,
    calUserId: u.calUserId,
  });
  return { userUlid, line, ...u };
}

describe("import", () => {
  it("stores the good lines of a file and names the bad line without echoing it", async () => {
    const a = record();
    const b = record({ iso: true });
    const bad = record({ userUlid: "not-a-ulid" });
    const file = path.join(dir, "tokens.jsonl");
    writeFileSync(file, `${a.line}\n${b.line}\n${bad.line}\n`);
    const res = await cli(["import", file]);
    expect(res.code).toBe(1);
    expect(await h.db.calToken.count({ where: { userUlid: { in: [a.userUlid, b.userUlid] } } })).toBe(2);
    expect(res.err).toMatch(/line 3: invalid: userUlid: must be a 26-character ULID/);
    expect(res.err).not.toMatch(/line [12]/);
    expect(res.out).toContain(`line 1: imported ${a.userUlid}`);
    expect(res.out).toContain("imported 2, already stored 0, invalid 1");
  });

  it("re-running an import keeps tokens the worker has rotated since; --overwrite replaces them", async () => {
    const a = record();
    const file = path.join(dir, "again.jsonl");
    writeFileSync(file, `${a.line}\n`);
    expect((await cli(["import", file])).code).toBe(0);
    await h.client.ensureValidCalToken(a.userUlid, true); // rotated: the file now holds a dead pair
    const rotated = await h.client.getCalTokenStatus(a.userUlid);
    const again = await cli(["import", file]);
    expect(again.code).toBe(0);
    expect(again.out).toContain(`already stored, kept ${a.userUlid}`);
    expect((await h.client.getCalTokenStatus(a.userUlid))?.version).toBe(rotated?.version);
    const forced = await cli(["import", "--overwrite", file]);
    expect(forced.code).toBe(0);
    expect((await h.client.getCalTokenStatus(a.userUlid))?.version).toBe(rotated!.version + 1);
  });

  it("reads stdin with -", async () => {
    const a = record();
    const res = await cli(["import", "-"], { stdin: `${a.line}\n\n` });
    expect(res).toMatchObject({ code: 0 });
    expect(await h.client.getCalTokenStatus(a.userUlid)).toMatchObject({ status: "ACTIVE" });
  });

  it("a missing file is a usage error", async () => {
    expect((await cli(["import", path.join(dir, "nope.jsonl")])).code).toBe(2);
  });
});

describe("status and list", () => {
  it("status --json has the state and no token", async () => {
    const a = record();
    await cli(["import"], { stdin: a.line });
    const res = await cli(["status", a.userUlid.toLowerCase(), "--json"]);
    expect(res.code).toBe(0);
    const report = JSON.parse(res.out) as Record<string, unknown>;
    expect(report).toMatchObject({ userUlid: a.userUlid, status: "ACTIVE", kind: "managed", calUserId: a.calUserId });
    expect(Object.keys(report).some((k) => /token$/i.test(k))).toBe(false);
    expect((await cli(["status", a.userUlid])).out).toMatch(/status\s+ACTIVE/);
  });

  it("an unknown ULID is exit 1, an invalid one exit 2", async () => {
    expect(await cli(["status", ulid()])).toMatchObject({ code: 1, err: expect.stringMatching(/no tokens stored/) });
    expect((await cli(["status", "not-a-ulid"])).code).toBe(2);
  });

  it("list --status ACTIVE --json pages by ULID without secrets", async () => {
    const res = await cli(["list", "--status", "ACTIVE", "--json"]);
    expect(res.code).toBe(0);
    const { rows } = JSON.parse(res.out) as { rows: { userUlid: string; status: string }[]; next: string | null };
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.every((r) => r.status === "ACTIVE")).toBe(true);
    expect(JSON.stringify(rows)).not.toMatch(/Enc|v1\./);
    const page1 = JSON.parse((await cli(["list", "--limit", "2", "--json"])).out) as { rows: { userUlid: string }[]; next: string };
    const page2 = JSON.parse((await cli(["list", "--limit", "2", "--json", "--after", page1.next])).out) as {
      rows: { userUlid: string }[];
    };
    expect(page2.rows[0]!.userUlid > page1.next).toBe(true);
    expect((await cli(["list"])).out).toMatch(/^ULID\s+KIND\s+STATUS/);
  });
});

describe("sweep and refresh", () => {
  it("sweep --dry-run counts due rows; sweep schedules them", async () => {
    await cli(["import"], { stdin: `${record({ ttlMs: 30_000 }).line}\n${record({ ttlMs: 30_000 }).line}` });
    const dry = await cli(["sweep", "--dry-run"]);
    expect(dry.code).toBe(0);
    expect(Number(/sweep \(dry run\): (\d+) row/.exec(dry.out)?.[1])).toBeGreaterThanOrEqual(2);
    expect(await cli(["sweep"])).toMatchObject({ code: 0, out: expect.stringMatching(/^sweep: \d+ row/) });
  });

  it("refresh --wait with a worker running refreshes through the queue", async () => {
    worker = await startWorker(workerEnv(h, prefix));
    const a = record();
    await cli(["import"], { stdin: a.line });
    const res = await cli(["refresh", a.userUlid, "--wait", "--timeout", "15000"]);
    expect(res).toMatchObject({ code: 0, out: expect.stringContaining(`refreshed ${a.userUlid}`) });
    expect((await h.client.getCalTokenStatus(a.userUlid))?.version).toBe(2);
    expect((await cli(["refresh", ulid()])).code).toBe(1);
  }, 30_000);

  it("refresh --wait with a key that cannot open the row: token.decrypt_failed on the first line, the log after", async () => {
    const a = record();
    await cli(["import"], { stdin: a.line });
    const res = await cli(["refresh", a.userUlid, "--wait"], {
      env: h.env({ TOKEN_ENCRYPTION_KEYS: `other:${Buffer.alloc(32, 7).toString("base64")}` }),
    });
    expect(res.code).toBe(1);
    const [first, ...rest] = res.err.trimEnd().split("\n");
    expect(first).toBe(
      `cal-tokens: refresh of ${a.userUlid} failed: stored tokens could not be decrypted with TOKEN_ENCRYPTION_KEYS (token.decrypt_failed)`,
    );
    expect(rest.map((l) => JSON.parse(l) as { err?: { code?: string } }).some((l) => l.err?.code === "token.decrypt_failed")).toBe(true);
  }, 30_000);
});

describe("usage and configuration errors", () => {
  it("import needs the whole configuration (exit 2, named); status, list and migrate read metadata only: DATABASE_URL is all", async () => {
    const env = h.env();
    delete env.TOKEN_ENCRYPTION_KEYS;
    const res = await cli(["import"], { env, stdin: "" });
    expect(res.code).toBe(2);
    expect(res.err).toBe("cal-tokens: invalid configuration:\n  - TOKEN_ENCRYPTION_KEYS: required\n");
    const a = record();
    await cli(["import"], { stdin: a.line });
    const only = { DATABASE_URL: h.databaseUrl };
    expect(await cli(["status", a.userUlid], { env: only })).toMatchObject({
      code: 0,
      out: expect.stringMatching(/status\s+ACTIVE/),
      err: "",
    });
    expect(await cli(["list", "--json"], { env: only })).toMatchObject({ code: 0, out: expect.stringContaining(a.userUlid), err: "" });
    expect(await cli(["migrate"], { env: only })).toMatchObject({
      code: 0,
      out: expect.stringMatching(/applied 0, already applied \d+/),
      err: "",
    });
  });

  it("an unknown command or option is exit 2; --help is 0", async () => {
    expect((await cli(["frobnicate"])).code).toBe(2);
    expect((await cli(["list", "--bogus"])).code).toBe(2);
    expect((await cli(["refresh"])).code).toBe(2);
    expect(await cli(["--help"])).toMatchObject({ code: 0, out: expect.stringContaining("rotate-key") });
  });
});
