/** A `redis-server` child process, and a promise that settles once it accepts connections (or fails to start). */
import { spawn, type ChildProcess } from "node:child_process";

export function spawnRedisServer(
  args: string[],
  opts: { label?: string; timeoutMs?: number } = {},
): { process: ChildProcess; ready: Promise<void> } {
  const label = opts.label ?? "redis-server";
  const child = spawn("redis-server", args, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${label} did not start: ${out.slice(-1000)}`)), opts.timeoutMs ?? 10_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code}): ${out.slice(-1000)}`));
    });
    child.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
  return { process: child, ready };
}
