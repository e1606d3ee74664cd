/**
 * A throwaway three-master Redis Cluster on loopback ports, for tests: three `redis-server` children
 * (cluster mode, no persistence) in a temp dir, joined with `redis-cli --cluster create`. The client
 * port and the cluster bus port of each node are free ports (Redis 7's `cluster-port`, so no
 * port + 10000 arithmetic), picked again if one is taken before its node binds it. With `tls`, nodes speak only TLS, to clients and to
 * each other, with a self-signed certificate made for the run (rediss://, as a managed cluster would).
 * `stop()` kills every child and removes the dir; a start that fails does the same before it throws,
 * and the children are also killed if the process exits first.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { spawnRedisServer } from "./redis-server-process.js";

const run = promisify(execFile);

export interface RedisCluster {
  /** redis(s)://127.0.0.1:<first node's port>: one node, as REDIS_URL names it with REDIS_CLUSTER=true. */
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

const MASTERS = 3;
const START_TIMEOUT_MS = 20_000;

export async function startRedisCluster(opts: { tls?: boolean } = {}): Promise<RedisCluster> {
  const dir = mkdtempSync(path.join(tmpdir(), "ctw-cluster-"));
  const children: ChildProcess[] = [];
  const killAll = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  };
  process.once("exit", killAll);
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    process.removeListener("exit", killAll);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const tls = opts.tls ? await makeCertificate(dir) : null;
    let ports: number[] = [];
    for (let attempt = 1; ports.length === 0; attempt++) {
      const free = await freePorts(MASTERS * 2);
      const started = free.slice(0, MASTERS).map((port, i) => startNode(dir, port, free[MASTERS + i]!, tls?.serverArgs ?? []));
      children.push(...started.map((n) => n.process));
      try {
        await Promise.all(started.map((n) => n.ready));
        ports = free.slice(0, MASTERS);
      } catch (err) {
        // Someone took a port between our check and the node's bind: try other ports.
        await Promise.all(children.splice(0).map(stopChild));
        if (attempt >= 3 || !/Address already in use/.test(String(err))) throw err;
      }
    }
    const cli = tls?.cliArgs ?? [];
    const nodes = ports.map((p) => `127.0.0.1:${p}`);
    await run("redis-cli", [...cli, "--cluster", "create", ...nodes, "--cluster-replicas", "0", "--cluster-yes"], {
      timeout: START_TIMEOUT_MS,
    });
    await waitForClusterOk(ports, cli);
    return { url: `${tls ? "rediss" : "redis"}://127.0.0.1:${ports[0]}`, ports, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A self-signed certificate (its own CA): nodes check each other with it; clients do not check it. */
async function makeCertificate(dir: string): Promise<{ serverArgs: string[]; cliArgs: string[] }> {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  await run("openssl", [..."req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1".split(" "), "-keyout", key, "-out", cert]);
  return {
    serverArgs: [
      ...["--tls-cluster", "yes", "--tls-auth-clients", "no"],
      "--tls-cert-file",
      cert,
      "--tls-key-file",
      key,
      "--tls-ca-cert-file",
      cert,
    ],
    cliArgs: ["--tls", "--cacert", cert],
  };
}

function startNode(dir: string, port: number, busPort: number, tlsArgs: string[]): { process: ChildProcess; ready: Promise<void> } {
  const listen = tlsArgs.length > 0 ? ["--port", "0", "--tls-port", String(port), ...tlsArgs] : ["--port", String(port)];
  const args = [
    ...listen,
    ...["--bind", "127.0.0.1", "--cluster-enabled", "yes"],
    ...["--cluster-port", String(busPort), "--cluster-config-file", `nodes-${port}.conf`, "--cluster-node-timeout", "5000"],
    ...["--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"],
  ];
  return spawnRedisServer(args, { label: `redis-server :${port}`, timeoutMs: START_TIMEOUT_MS });
}

/** Every node reports cluster_state:ok (all 16384 slots served and agreed on). */
async function waitForClusterOk(ports: number[], cli: string[]): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    const info = (p: number) => run("redis-cli", [...cli, "-p", String(p), "cluster", "info"], { timeout: 2_000 }).then((r) => r.stdout);
    const infos = await Promise.all(ports.map((p) => info(p).catch(() => "")));
    if (infos.every((i) => i.includes("cluster_state:ok"))) return;
    if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok: ${infos.join(" | ").slice(0, 1000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/**
 * `n` distinct free ports below the kernel's ephemeral range (32768 and up on Linux), so outgoing
 * connections, which take their source port from that range, cannot take one before its node binds it.
 */
async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let tries = 0; ports.length < n; tries++) {
      if (tries > 200) throw new Error("no free loopback ports found for the cluster");
      const port = 20_000 + Math.floor(Math.random() * 12_000);
      if (ports.includes(port)) continue;
      const srv = createServer();
      const bound = await new Promise<boolean>((resolve) => {
        srv.once("error", () => resolve(false));
        srv.listen(port, "127.0.0.1", () => resolve(true));
      });
      if (!bound) continue;
      servers.push(srv);
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}
