/**
 * Two real worker processes (src/main/worker.ts through spawnWorker), killed with SIGKILL on the
 * schedule and restarted at once. An exit nobody asked for (a crash, the stall watchdog) is recorded
 * and the worker restarted too.
 */
import type { ChildProcess } from "node:child_process";
import type { Writable } from "node:stream";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { spawnWorker, type WorkerProcess } from "../../test/support/worker-harness.js";

export interface WorkerKill {
  slot: string;
  pid: number | undefined;
  /** Date.now() when SIGKILL was sent. */
  killedAt: number;
  /** Date.now() when the replacement logged "worker started" (undefined if it never did). */
  restartedAt?: number;
  /** Resolves once the replacement started (or failed to). */
  restarted: Promise<void>;
  /**
   * The local ports of the killed process's connections to Cal.com, read from /proc just before the kill
   * (the fake reports each call's remote port, so a call left unanswered by this process is known as such).
   * Undefined where /proc cannot tell.
   */
  calcomPorts?: number[];
  /** The killed process's last log lines (JSON). */
  lastLines?: string[];
}

export interface UnexpectedExit {
  slot: string;
  pid: number | undefined;
  at: number;
  code: number | null;
  signal: string | null;
  /** The last lines the process printed. */
  tail: string;
}

interface Slot {
  name: string;
  proc: WorkerProcess | undefined;
  /** The kill we sent, so its exit is not reported as unexpected. */
  killing: boolean;
  starts: number;
}

export interface Fleet {
  /** Starts both workers and waits until both logged "worker started". */
  start(): Promise<void>;
  /** SIGKILLs the next worker in turn (one that is up) and restarts it at once (`restarted` says when it is up). */
  killOne(): Promise<WorkerKill | null>;
  kills: WorkerKill[];
  unexpectedExits: UnexpectedExit[];
  /** Time from spawn to "worker started", per start. */
  startTimesMs: number[];
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs: number): Promise<void>;
}

/** Local ports of `pid`'s TCP connections to 127.0.0.1:`remotePort` (Linux /proc); undefined when unreadable. */
export function connectionsTo(pid: number, remotePort: number): number[] | undefined {
  try {
    const inodes = new Set<string>();
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1] as string);
      } catch {
        // closed meanwhile
      }
    }
    const ports: number[] = [];
    for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
      let text = "";
      try {
        text = readFileSync(table, "utf8");
      } catch {
        continue;
      }
      for (const line of text.split("\n").slice(1)) {
        const f = line.trim().split(/\s+/);
        const local = f[1];
        const remote = f[2];
        const inode = f[9];
        if (!local || !remote || !inode || !inodes.has(inode)) continue;
        if (Number.parseInt(remote.split(":")[1] ?? "", 16) !== remotePort) continue;
        ports.push(Number.parseInt(local.split(":")[1] ?? "", 16));
      }
    }
    return ports;
  } catch {
    return undefined;
  }
}

export function createFleet(
  env: Record<string, string>,
  track: (child: ChildProcess) => void,
  log: (line: string) => void,
  calcomPort: number,
  /** Where the workers' output goes (besides what spawnWorker does with it). */
  output?: Writable,
): Fleet {
  const slots: Slot[] = ["A", "B"].map((name) => ({ name, proc: undefined, killing: false, starts: 0 }));
  const kills: WorkerKill[] = [];
  const unexpectedExits: UnexpectedExit[] = [];
  const startTimesMs: number[] = [];
  let stopping = false;
  let turn = 0;

  async function launch(slot: Slot): Promise<number | undefined> {
    const t0 = Date.now();
    const proc = spawnWorker(env);
    if (proc.child.pid !== undefined) track(proc.child);
    if (output) {
      proc.child.stdout?.on("data", (d: Buffer) => output.write(d));
      proc.child.stderr?.on("data", (d: Buffer) => output.write(d));
    }
    slot.proc = proc;
    slot.killing = false;
    slot.starts += 1;
    void proc.exited.then((exit) => {
      if (slot.proc !== proc || slot.killing || stopping) return;
      unexpectedExits.push({
        slot: slot.name,
        pid: proc.child.pid,
        at: exit.at,
        code: exit.code,
        signal: exit.signal,
        tail: proc.output().split("\n").slice(-15).join("\n"),
      });
      log(`worker ${slot.name} (pid ${proc.child.pid}) exited on its own (code ${exit.code}, signal ${exit.signal}); restarting it`);
      void launch(slot).catch((err: unknown) => log(`could not restart worker ${slot.name}: ${String(err)}`));
    });
    try {
      await proc.started;
    } catch (err) {
      log(`worker ${slot.name} did not start: ${String(err).slice(0, 500)}`);
      return undefined;
    }
    const at = Date.now();
    startTimesMs.push(at - t0);
    return at;
  }

  return {
    kills,
    unexpectedExits,
    startTimesMs,
    async start() {
      const started = await Promise.all(slots.map((s) => launch(s)));
      if (started.some((t) => t === undefined)) throw new Error("a worker process did not start");
    },
    async killOne() {
      // Take turns; skip a worker that is still starting after the previous kill.
      for (let i = 0; i < slots.length; i++) {
        const slot = slots[(turn + i) % slots.length] as Slot;
        const proc = slot.proc;
        if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) continue;
        if (!proc.output().includes("worker started")) continue;
        turn = (turn + i + 1) % slots.length;
        slot.killing = true;
        const ports = proc.child.pid === undefined ? undefined : connectionsTo(proc.child.pid, calcomPort);
        const kill: WorkerKill = {
          slot: slot.name,
          pid: proc.child.pid,
          killedAt: Date.now(),
          restarted: Promise.resolve(),
          ...(ports ? { calcomPorts: ports } : {}),
        };
        kills.push(kill);
        proc.child.kill("SIGKILL");
        await proc.exited;
        kill.lastLines = proc
          .output()
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .slice(-40);
        kill.restarted = launch(slot).then((at) => {
          if (at !== undefined) kill.restartedAt = at;
        });
        return kill;
      }
      return null;
    },
    async stop(graceMs) {
      stopping = true;
      await Promise.all(
        slots.map(async (slot) => {
          const proc = slot.proc;
          if (!proc || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
          proc.child.kill("SIGTERM");
          let timer: NodeJS.Timeout | undefined;
          const graceful = await Promise.race([
            proc.exited.then(() => true),
            new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
          ]);
          clearTimeout(timer);
          if (!graceful) {
            proc.child.kill("SIGKILL");
            await proc.exited;
          }
        }),
      );
    },
  };
}
