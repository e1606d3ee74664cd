/**
 * `npm run demo` (scripts/demo.ts, without the Prisma generate step) for a few seconds: it exits 0,
 * serves Bull Board behind the basic-auth credentials it prints, prints an environment block that a
 * CLI can use (a complete configuration pointing at the demo's database and queues), writes its JSON
 * logs to the file it names instead of the terminal, and reports users affected apart from attempts.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "../../../src/config/config.js";
import { createPrisma } from "../../../src/store/prisma.js";
import { basic } from "../http/http-client.js";
import { eventually } from "../../support/worker-harness.js";

const DEMO = path.resolve(import.meta.dirname, "../../../scripts/demo.ts");
const USERS = 4;

it("runs for a few seconds as a tour and exits 0", async () => {
  const logFile = path.join(tmpdir(), `ctw-demo-smoke-${process.pid}.log`);
  const child = spawn(process.execPath, ["--import", "tsx", DEMO], {
    env: {
      PATH: process.env.PATH ?? "",
      DEMO_SECONDS: "6",
      DEMO_USERS: String(USERS),
      DEMO_PORT: "0",
      DEMO_TTL_SECONDS: "20,30",
      DEMO_LOG_FILE: logFile,
      ...(process.env.TEST_PG_ADMIN_URL ? { TEST_PG_ADMIN_URL: process.env.TEST_PG_ADMIN_URL } : {}),
      ...(process.env.TEST_REDIS_URL ? { DEMO_REDIS_URL: process.env.TEST_REDIS_URL } : {}),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  try {
    // While it runs: the printed environment is a working configuration for the demo's database,
    // and the board answers only with the printed credentials.
    expect(await eventually(() => stdout.includes("running "), 45_000)).toBe(true);
    const env = Object.fromEntries([...stdout.matchAll(/^ {2}export ([A-Z_]+)='([^']*)'$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.keys(env).sort()).toEqual(
      expect.arrayContaining(["CAL_API_URL", "DATABASE_URL", "QUEUE_PREFIX", "REDIS_URL", "TOKEN_ENCRYPTION_KEYS"]),
    );
    const config = loadConfig(env);
    expect(config.queuePrefix).toMatch(/^ctwdemo\d+$/);
    const prisma = createPrisma(config.databaseUrl, { max: 1 });
    try {
      expect(await prisma.calToken.count()).toBe(USERS);
    } finally {
      await prisma.$disconnect();
    }
    const board = stdout.match(/^Bull Board\s+(\S+)\s+user (\S+)\s+password (\S+)$/m);
    expect(board).not.toBeNull();
    const [, boardUrl, username, password] = board as RegExpMatchArray;
    expect((await fetch(`${boardUrl}/api/queues`)).status).toBe(401);
    const authed = await fetch(`${boardUrl}/api/queues`, { headers: { authorization: basic(username!, password!) } });
    expect(authed.status).toBe(200);
  } catch (err) {
    child.kill("SIGINT");
    throw err;
  }
  expect(await exited).toBe(0);
  expect(stderr.split("\n").filter((l) => l.startsWith("{"))).toEqual([]); // no log lines on the terminal

  // Logs went to the file, as JSON; the terminal got only human lines (the progress line stays whole).
  try {
    expect(stdout).toContain(`logs (JSON)       ${logFile}`);
    expect(existsSync(logFile)).toBe(true);
    const lines = readFileSync(logFile, "utf8").split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
    expect(stdout.split("\n").filter((l) => l.startsWith("{"))).toEqual([]);
  } finally {
    rmSync(logFile, { force: true });
  }
  expect(stdout).toMatch(/users with failures \d+ \(failed attempts \d+\)/);
  expect(stdout).toMatch(/Refresh failures: \d+ users affected, \d+ failed attempts in all\./);
}, 90_000);
