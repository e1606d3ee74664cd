import type { ConnectionOptions } from "bullmq";
import { Cluster, Redis } from "ioredis";

/**
 * Every Redis connection the service makes is built here, for one Redis (REDIS_URL) or for a Redis
 * Cluster (REDIS_CLUSTER: REDIS_URL is one node, the client discovers the rest). The failure
 * behaviour is the same either way:
 * - Workers and QueueEvents retry forever (BullMQ forces maxRetriesPerRequest: null for them).
 * - Producers used inside web requests fail fast: no offline queue, one retry per command.
 * - The web process's queues also bound each command; fleet-state clients connect on first use.
 * Heroku Redis uses self-signed certificates on rediss://, hence rejectUnauthorized: false there
 * (on a cluster, for every node).
 *
 * On one Redis, BullMQ gets options and creates, and closes, its own connections. On a cluster BullMQ
 * needs an ioredis `Cluster` instance; it uses one passed to a Queue (or a Worker's non-blocking side)
 * as is and never closes it, and duplicates it for the blocking connections of Workers and
 * QueueEvents, which it does close. So `queueConnection` returns the instance with a `close()` that
 * its owner calls after every Queue and Worker that uses it is closed.
 */

/** Where Redis is. A Config is one. */
export interface RedisTarget {
  redisUrl: string;
  /** REDIS_URL names one node of a Redis Cluster. */
  redisCluster: boolean;
}

/** A plain client: one Redis, or a Cluster (same commands; a Cluster sends each key to its slot's node). */
export type RedisClient = Redis | Cluster;

/** How a BullMQ connection must behave when Redis is away (see the top of this file). */
export type QueueRole = "worker" | "producer" | "web" | "events";

export interface QueueConnection {
  /** For the `connection` option of Queue, Worker and QueueEvents. */
  readonly connection: ConnectionOptions;
  /** Closes what BullMQ leaves open (the shared Cluster; nothing on one Redis). After its users closed. */
  close(): Promise<void>;
}

/**
 * The connection of one role. On one Redis: the options below (BullMQ owns the connections; `close`
 * does nothing). On a cluster: a Cluster with the same behaviour, shared by everything given it.
 * "events" is for a QueueEvents, which BullMQ always duplicates: its Cluster stays unconnected.
 */
export function queueConnection(target: RedisTarget, role: QueueRole): QueueConnection {
  if (!target.redisCluster) {
    const options = role === "producer" ? producerConnection : role === "web" ? webConnection : workerConnection;
    return { connection: options(target.redisUrl), close: async () => undefined };
  }
  const cluster = clusterClient(target.redisUrl, CLUSTER_ROLES[role]);
  return { connection: cluster as unknown as ConnectionOptions, close: () => closeCluster(cluster) };
}

/** Redis connection options for BullMQ on one Redis: BullMQ creates and owns these connections. */
export function workerConnection(redisUrl: string): ConnectionOptions {
  return { url: redisUrl, ...tls(redisUrl), maxRetriesPerRequest: null, retryStrategy: reconnectDelay };
}

export function producerConnection(redisUrl: string): ConnectionOptions {
  return {
    url: redisUrl,
    ...tls(redisUrl),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: reconnectDelay,
  };
}

/**
 * The web process's queues (Bull Board, /metrics, /readyz): every command fails fast while Redis is
 * away (no offline queue, one retry, a per-command timeout), so an HTTP request gets an error to turn
 * into a 503 instead of a command parked until Redis returns. The connection itself reconnects
 * forever, so the board works again on its own once Redis is back.
 */
export function webConnection(redisUrl: string): ConnectionOptions {
  return { ...producerConnection(redisUrl), commandTimeout: 2_000 };
}

/** 0.5 s, 1 s, 2 s … capped at 10 s: reconnect forever, quickly at first. */
function reconnectDelay(times: number): number {
  return Math.min(500 * 2 ** Math.min(times - 1, 5), 10_000);
}

function tls(redisUrl: string): { tls?: { rejectUnauthorized: boolean } } {
  return redisUrl.startsWith("rediss://") ? { tls: { rejectUnauthorized: false } } : {};
}

/**
 * A plain client for fleet-wide state (held-pair records, the configuration breaker, the call budget,
 * publishing pair changes; subscriptions use `subscriberRedis`): connects on first use, bounded per command (one retry), reconnects forever.
 * Callers add their own short timeouts; a failure means "not shared" or "gate unknown, treated as
 * open", never a lost pair. Its owner closes it with `disconnect()`.
 */
export function fleetRedis(target: RedisTarget): RedisClient {
  if (target.redisCluster) return clusterClient(target.redisUrl, CLUSTER_ROLES.fleet);
  const redis = new Redis(target.redisUrl, {
    ...tls(target.redisUrl),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: reconnectDelay,
  });
  redis.on("error", () => undefined); // surfaced through the failing command
  return redis;
}

/**
 * The connection a subscription (pair changes) listens on. On one Redis, a fleet client. On a cluster,
 * a plain connection to the REDIS_URL node, not a Cluster: a PUBLISH reaches every node of a cluster,
 * and a plain connection says when it drops ('close', 'reconnecting'), so the subscriber knows it may
 * have missed a message. A Cluster moves its subscription to another node without a word, and what
 * was published in between is lost unnoticed (measured: docs/operations.md#redis-cluster). If that
 * node is gone for good, the subscription stays down and its owner stops trusting it.
 */
export function subscriberRedis(target: RedisTarget): RedisClient {
  return fleetRedis({ redisUrl: target.redisUrl, redisCluster: false });
}

interface ClusterRole {
  lazyConnect?: boolean;
  enableOfflineQueue?: boolean;
  /** For each node's connection. */
  node: { maxRetriesPerRequest: number | null; connectTimeout?: number; commandTimeout?: number };
}

/**
 * The single-Redis behaviour of each role, on a cluster. The Cluster reconnects (clusterRetryStrategy)
 * when it has lost every node; its offline queue is the cluster-wide one (each node's is always on);
 * per-command retries, connect and command timeouts apply to each node's connection.
 */
const CLUSTER_ROLES: Record<QueueRole | "fleet", ClusterRole> = {
  worker: { node: { maxRetriesPerRequest: null } },
  events: { lazyConnect: true, node: { maxRetriesPerRequest: null } },
  producer: { enableOfflineQueue: false, node: { maxRetriesPerRequest: 1, connectTimeout: 2_000 } },
  web: { enableOfflineQueue: false, node: { maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 2_000 } },
  fleet: { lazyConnect: true, node: { maxRetriesPerRequest: 1, connectTimeout: 2_000 } },
};

/**
 * A Cluster seeded with REDIS_URL's node. Credentials and TLS from the URL apply to every node the
 * cluster reports (a cluster has database 0 only; the configuration refuses another).
 */
function clusterClient(redisUrl: string, role: ClusterRole): Cluster {
  const url = new URL(redisUrl);
  const seed = { host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(url.port || 6379) };
  const { node, ...options } = role;
  const cluster = new Cluster([seed], {
    ...options,
    clusterRetryStrategy: reconnectDelay,
    redisOptions: {
      ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
      ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
      ...tls(redisUrl),
      ...node,
    },
  });
  // Surfaced through BullMQ's listeners (while it uses the instance) and the failing commands; an
  // unhandled 'error' event would end the process.
  cluster.on("error", () => undefined);
  return cluster;
}

/**
 * Disconnects a cluster and waits (2 s at most) until its node connections have closed and it has
 * ended. One without node connections (still looking for its first node, or between reconnects) has
 * nothing open: its connect attempt is aborted, and no 'end' follows.
 */
async function closeCluster(cluster: Cluster): Promise<void> {
  if (cluster.status === "end") return;
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => {
    cluster.once("end", () => resolve());
    timer = setTimeout(resolve, 2_000);
    timer.unref();
  });
  const open = cluster.nodes().length > 0;
  cluster.disconnect();
  if (open) await ended;
  clearTimeout(timer);
}
