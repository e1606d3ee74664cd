/**
 * Single flight across OS processes (docs/architecture.md#invariant-1-single-flight): 100 concurrent
 * ensureValidCalToken calls for one expired user, spread over 3 processes (each with its own pool and
 * in-process single flight), cause exactly one refresh at Cal.com, and every caller gets the same
 * new token.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createHash } from "node:crypto";
import path from "node:path";
import { createInterface } from "node:readline";
import { startHarness, testEnv, type Harness } from "../../support/harness.js";

let h: Harness;
const children: ChildProcessWithoutNullStreams[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  await h.close();
});

const CHILD = path.resolve(import.meta.dirname, "../../support/ensure-child.ts");

function startChild(userUlid: string, count: number) {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD], {
    env: {
      ...process.env,
      NODE_OPTIONS: "",
      CHILD_CLIENT_ENV: JSON.stringify(testEnv(h.fake.url)),
      CHILD_USER_ULID: userUlid,
      CHILD_COUNT: String(count),
    },
  });
  children.push(child);
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const out = createInterface({ input: child.stdout });
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  out.on("line", (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const nextLine = async (): Promise<string> => {
    const deadline = Date.now() + 60_000;
    while (lines.length === 0) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`child ended early: ${stderr}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return lines.shift()!;
  };
  return { child, nextLine };
}

it("100 callers in 3 processes → exactly one refresh, one token for all, no dead token used", async () => {
  const u = await h.seedManaged();
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
  h.fake.resetStats();
  h.fake.faults.latencyMs = 1_500; // a wide race window: every process is past "go" long before the first answer
  const procs = [34, 33, 33].map((n) => startChild(u.userUlid, n));
  for (const p of procs) expect(await p.nextLine()).toBe("ready");
  for (const p of procs) p.child.stdin.write("go\n");
  const results = await Promise.all(procs.map(async (p) => JSON.parse(await p.nextLine()) as { hashes: string[]; refreshed: number }));
  await Promise.all(procs.map((p) => new Promise((r) => (p.child.exitCode !== null ? r(null) : p.child.on("exit", r)))));

  const hashes = results.flatMap((r) => r.hashes);
  expect(hashes).toHaveLength(100);
  const stats = h.fake.stats();
  expect(stats.refreshes).toBe(1);
  expect(stats.calls["managed.refresh"]).toBe(1);
  expect(stats.deadRefreshTokenUses).toBe(0);
  expect(stats.forceRefreshes).toBe(0);

  const stored = await h.client.ensureValidCalToken(u.userUlid);
  const storedHash = createHash("sha256").update(stored.tokenInfo!.accessToken).digest("hex");
  expect(new Set(hashes)).toEqual(new Set([storedHash]));
  expect(stored.tokenInfo!.accessToken).not.toBe(u.accessToken);
  // Only one process actually rotated; the others were served the winner's result.
  expect(results.filter((r) => r.refreshed > 0)).toHaveLength(1);
});
