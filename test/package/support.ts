/**
 * Shared by the package tests: copy the repository as a deploy would see it, run npm and the built
 * entry points as child processes (their output goes to the run's log file, so the secret scan covers
 * it), and make throw-away databases with nothing in them (the release phase must migrate them).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, cpSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import pg from "pg";
import { ADMIN_URL, databaseUrlFor } from "../support/test-db.js";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../..");

/** Not part of a deploy (.gitignore) or rebuilt by it. */
const SKIPPED = new Set(["node_modules", "dist", ".git", "coverage", "tmp", ".env", "src/generated"]);

/** The repository without installed or built files, as `git push heroku` would send it. */
export function copyRepo(dest: string, from = REPO_ROOT): void {
  cpSync(from, dest, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(from, src).split(path.sep).join("/");
      if (rel === "") return true;
      const parts = rel.split("/");
      return !SKIPPED.has(rel) && !parts.includes("node_modules") && !rel.endsWith(".log") && !SKIPPED.has(parts[0]!);
    },
  });
}

/**
 * The environment for child processes: this Node first on PATH (npm and the entry points run on the
 * same runtime as the suite), npm quiet and cache-first, and without Jest's NODE_OPTIONS
 * (--experimental-vm-modules is for Jest only).
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k === "NODE_OPTIONS" || k.startsWith("npm_") || k.startsWith("JEST_")) continue;
    env[k] = v;
  }
  return {
    ...env,
    PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ""}`,
    npm_config_prefer_offline: "true",
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
    ...extra,
  };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function record(label: string, text: string): void {
  const file = process.env.TEST_LOG_FILE;
  if (file && text) appendFileSync(file, `[${label}] ${text}${text.endsWith("\n") ? "" : "\n"}`);
}

/** Runs a command to its end (async, so Jest's timers keep running); output is kept and logged. */
export function run(cmd: string, args: string[], opts: { cwd: string; env?: Record<string, string>; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? childEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      record(`${cmd} ${args.join(" ")}`, stdout + stderr);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Fails with the command's own output, so a broken step says why. */
export function expectOk(r: Run, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code ?? r.signal}:\n${(r.stdout + r.stderr).slice(-4000)}`);
}

export interface LongRunning {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output contains `text`; rejects if the process exits first. */
  waitFor(text: string, timeoutMs: number): Promise<void>;
  /** Signals every process of its group, as Heroku signals every process of a dyno. */
  signal(sig: NodeJS.Signals): void;
  /** Resolves once no process of its group is left (polls), false after `timeoutMs`. */
  groupGone(timeoutMs: number): Promise<boolean>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const started = new Set<LongRunning>();

/** Starts a process that keeps running (web, worker) in a process group of its own. */
export function start(cmd: string, args: string[], opts: { cwd: string; env: Record<string, string>; label: string }): LongRunning {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    output += d.toString();
    record(opts.label, d.toString());
    for (const l of listeners) l();
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const waitFor = (text: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${opts.label}: no "${text}" within ${timeoutMs} ms:\n${output.slice(-3000)}`)),
        timeoutMs,
      );
      const check = () => {
        if (!output.includes(text)) return;
        clearTimeout(timer);
        listeners.delete(check);
        resolve();
      };
      listeners.add(check);
      void exited.then(({ code }) => reject(new Error(`${opts.label} exited (${code}) before "${text}":\n${output.slice(-3000)}`)));
      check();
    });
  const alive = () => {
    try {
      process.kill(-child.pid!, 0);
      return true;
    } catch {
      return false;
    }
  };
  const signal = (sig: NodeJS.Signals) => {
    if (alive()) process.kill(-child.pid!, sig);
  };
  const groupGone = async (timeoutMs: number) => {
    for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) if (!alive()) return true;
    return !alive();
  };
  const proc: LongRunning = { child, output: () => output, waitFor, signal, groupGone, exited };
  started.add(proc);
  return proc;
}

/** For afterAll: nothing a failed test started outlives the run. */
export function killStarted(): void {
  for (const p of started) p.signal("SIGKILL");
  started.clear();
}

/** A database with nothing in it; returns its URL. */
export async function createEmptyDatabase(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return databaseUrlFor(name);
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
