/** The real entry (`node --import tsx src/cli/main.ts`): exit codes and stdout/stderr end to end. */
import { spawn } from "node:child_process";
import path from "node:path";
import { ulid } from "ulid";
import { startHarness, type Harness, type SeededUser } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { uniquePrefix } from "../../support/worker-harness.js";

const MAIN = path.resolve(import.meta.dirname, "../../../src/cli/main.ts");
let h: Harness;
let user: SeededUser;

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: uniquePrefix() } });
  user = await h.seedManaged();
});
afterAll(async () => {
  await h.close();
});

function run(args: string[], env: Record<string, string>, stdin = ""): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: "pipe",
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      const res = { code, out, err };
      recordForSecretScan(res);
      resolve(res);
    });
    child.stdin.end(stdin);
  });
}

it("status: 0 with the table, 1 for an unknown user, 2 for bad input or config", async () => {
  const ok = await run(["status", user.userUlid], h.env());
  expect(ok.code).toBe(0);
  expect(ok.out).toContain(user.userUlid);
  expect(ok.out).toMatch(/status\s+ACTIVE/);
  expect(ok.err).toBe(""); // logs at warn level only: nothing on a good run
  expect(`${ok.out}${ok.err}`).not.toContain(user.accessToken);

  expect((await run(["status", ulid()], h.env())).code).toBe(1);
  expect((await run(["status", "nope"], h.env())).code).toBe(2);
  const env = h.env();
  delete env.CAL_CLIENT_SECRET;
  const bad = await run(["status", user.userUlid], env);
  expect(bad.code).toBe(2);
  expect(bad.err).toContain("CAL_CLIENT_SECRET");
}, 120_000);

it("import from stdin through the process", async () => {
  const g = h.fake.createManagedUser();
  const userUlid = ulid();
  const rec = JSON.stringify({
    userUlid,
    accessToken: g.accessToken,
    refreshToken: g.refreshToken,
    accessTokenExpiresAt: g.accessTokenExpiresAt,
    calUserId: g.calUserId,
  });
  const res = await run(["import", "-"], h.env(), `${rec}\n{"userUlid": 1}\n`);
  expect(res.code).toBe(1);
  expect(res.out).toContain(`line 1: imported ${userUlid}`);
  expect(res.err).toContain("line 2: invalid");
  expect(`${res.out}${res.err}`).not.toContain(g.refreshToken);
}, 120_000);
