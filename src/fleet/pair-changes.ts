/**
 * "This user's pair changed" across the fleet, over Redis pub/sub: every process that rotates,
 * force-refreshes, saves or marks a user for reconnect publishes the ULID (not a secret); every
 * on-demand client drops its cached access token for that user within a round trip (~ms).
 *
 * A subscriber that is not connected cannot promise that, so it reports itself `live: false` while
 * down, and its owner stops serving from memory until it is back (missed messages are then
 * irrelevant: the cache was cleared).
 */
import type { RedisClient } from "../queue/connection.js";

export interface PairChangeSubscription {
  /** True while subscribed: only then may a cache trust that it hears every change. */
  readonly live: boolean;
  close(): Promise<void>;
}

export function pairChangeChannel(prefix: string): string {
  return `${prefix}:fleet:pair-changed`;
}

/** Publishes one change; best effort (a missed message is bounded by the cache TTL). */
export async function publishPairChange(redis: RedisClient, prefix: string, userUlid: string): Promise<void> {
  await redis.publish(pairChangeChannel(prefix), userUlid);
}

/**
 * Subscribes on a connection of its own (subscriber mode blocks other commands). `onChange` gets each
 * ULID; `onLiveChange(false)` fires when the subscription is lost, `(true)` when it is (re)established.
 */
export function subscribePairChanges(opts: {
  redis: RedisClient;
  prefix: string;
  onChange: (userUlid: string) => void;
  onLiveChange: (live: boolean) => void;
}): PairChangeSubscription {
  const channel = pairChangeChannel(opts.prefix);
  let live = false;
  const setLive = (value: boolean) => {
    if (live === value) return;
    live = value;
    opts.onLiveChange(value);
  };
  opts.redis.on("message", (ch: string, message: string) => {
    if (ch === channel) opts.onChange(message);
  });
  // ioredis re-subscribes on reconnect; "ready" follows, so liveness tracks the connection.
  opts.redis.on("ready", () => {
    opts.redis.subscribe(channel).then(
      () => setLive(true),
      () => setLive(false),
    );
  });
  for (const event of ["close", "end", "error", "reconnecting"]) opts.redis.on(event, () => setLive(false));
  if (opts.redis.status === "ready") opts.redis.emit("ready");
  else if (opts.redis.status === "wait") opts.redis.connect().catch(() => setLive(false));
  return {
    get live() {
      return live;
    },
    async close() {
      setLive(false);
      opts.redis.disconnect();
    },
  };
}
