import type { ConnectionOptions } from "bullmq";
import { Redis } from "ioredis";

/**
 * Redis connection options for BullMQ (passed as options, so BullMQ creates and owns its connections).
 * - Workers and QueueEvents retry forever (BullMQ forces maxRetriesPerRequest: null for them).
 * - Producers used inside web requests fail fast: no offline queue, one retry per command.
 * Heroku Redis uses self-signed certificates on rediss://, hence rejectUnauthorized: false there.
 */
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
  return {
    url: redisUrl,
    ...tls(redisUrl),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 2_000,
    retryStrategy: reconnectDelay,
  };
}

/** 0.5 s, 1 s, 2 s … capped at 10 s: reconnect forever, quickly at first. */
function reconnectDelay(times: number): number {
  return Math.min(500 * 2 ** Math.min(times - 1, 5), 10_000);
}

function tls(redisUrl: string): { tls?: { rejectUnauthorized: boolean } } {
  return redisUrl.startsWith("rediss://") ? { tls: { rejectUnauthorized: false } } : {};
}

/**
 * A plain client for fleet-wide state (held-pair records, the configuration breaker, the call budget):
 * connects on first use, bounded per command (one retry), reconnects forever. Callers add their own
 * short timeouts; a failure means "not shared" or "gate unknown, treated as open", never a lost pair.
 */
export function fleetRedis(redisUrl: string): Redis {
  const redis = new Redis(redisUrl, {
    ...tls(redisUrl),
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    retryStrategy: reconnectDelay,
  });
  redis.on("error", () => undefined); // surfaced through the failing command
  return redis;
}
