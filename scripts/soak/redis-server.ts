/**
 * A redis-server of the soak's own on a free loopback port, without persistence, so it can be killed
 * and restarted (coming back empty, like test/integration/worker-process/redis-restart.test.ts)
 * without touching the shared Redis.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { spawnRedisServer } from "../../test/support/redis-server-process.js";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const p = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(p));
    });
  });
}

export interface OwnRedis {
  url: string;
  /** SIGKILL: the data is gone (no persistence). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  pid(): number | undefined;
}

export async function startOwnRedis(dir: string, track: (child: ChildProcess) => void): Promise<OwnRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;

  async function start(): Promise<void> {
    const { process: c, ready } = spawnRedisServer([
      ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", dir],
    ]);
    track(c);
    await ready;
    child = c;
  }

  async function stop(): Promise<void> {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once("exit", r));
    c.kill("SIGKILL");
    await exited;
  }

  await start();
  return { url: `redis://127.0.0.1:${port}`, start, stop, pid: () => child?.pid };
}
