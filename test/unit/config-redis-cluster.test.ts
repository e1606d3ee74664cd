/**
 * REDIS_CLUSTER (docs/operations.md#redis-cluster): one switch; with it on, QUEUE_PREFIX must hold a
 * Redis hash tag and a process refuses to start otherwise (one line, exit 2). The connections built
 * for a cluster carry the URL's credentials and TLS to every node.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import type { Cluster } from "ioredis";
import { loadConfig } from "../../src/config/config.js";
import { hashTag } from "../../src/config/fields.js";
import { fleetRedis, queueConnection, subscriberRedis } from "../../src/queue/connection.js";
import { MINIMAL_ENV, problemsOf } from "../support/config-env.js";

const base = MINIMAL_ENV;

describe("REDIS_CLUSTER", () => {
  it("is off by default; any prefix and database then work as before", () => {
    expect(loadConfig(base)).toMatchObject({ redisCluster: false, queuePrefix: "caltok" });
    expect(loadConfig({ ...base, REDIS_URL: "redis://127.0.0.1:6379/3", QUEUE_PREFIX: "app" }).redisCluster).toBe(false);
  });

  it("takes true/false, 1/0, yes/no, on/off in any case; anything else is named", () => {
    for (const on of ["true", "TRUE", "1", "yes", "On", " true "]) {
      expect(loadConfig({ ...base, REDIS_CLUSTER: on, QUEUE_PREFIX: "{caltok}" }).redisCluster).toBe(true);
    }
    for (const off of ["false", "0", "no", "OFF", ""]) expect(loadConfig({ ...base, REDIS_CLUSTER: off }).redisCluster).toBe(false);
    expect(problemsOf({ ...base, REDIS_CLUSTER: "maybe" })).toEqual(["REDIS_CLUSTER: must be true or false (or 1/0, yes/no, on/off)"]);
  });

  it("needs a hash-tagged QUEUE_PREFIX: one clear line otherwise", () => {
    expect(problemsOf({ ...base, REDIS_CLUSTER: "true" })).toEqual([
      'QUEUE_PREFIX: must contain a Redis hash tag such as {caltok} when REDIS_CLUSTER is on (every key of the prefix must share one slot); got "caltok"',
    ]);
    for (const bad of ["app", "{}app", "{}{app}", "app{", "app}{"]) {
      const problems = problemsOf({ ...base, REDIS_CLUSTER: "true", QUEUE_PREFIX: bad });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^QUEUE_PREFIX: must contain a Redis hash tag such as \{app\} when REDIS_CLUSTER is on/);
    }
    for (const good of ["{caltok}", "{app}:tokens", "prod:{caltok}", "{a}"]) {
      expect(loadConfig({ ...base, REDIS_CLUSTER: "true", QUEUE_PREFIX: good }).queuePrefix).toBe(good);
    }
  });

  it("hashTag reads the tag as Redis does: the first {…} that is not empty, else none", () => {
    expect(hashTag("{caltok}:token-refresh:id")).toBe("caltok");
    expect(hashTag("prod:{caltok}")).toBe("caltok");
    expect(hashTag("{}{caltok}")).toBeNull(); // Redis hashes the whole key when the first braces are empty
    expect(hashTag("{ab}{cd}")).toBe("ab");
    expect(hashTag("caltok")).toBeNull();
  });

  it("a cluster has database 0 only; rediss:// is fine", () => {
    const cluster = { ...base, REDIS_CLUSTER: "true", QUEUE_PREFIX: "{caltok}" };
    expect(problemsOf({ ...cluster, REDIS_URL: "redis://10.0.0.1:7000/2" })).toEqual([
      'REDIS_URL: a Redis Cluster has only database 0; remove "/2" from the URL',
    ]);
    expect(loadConfig({ ...cluster, REDIS_URL: "redis://10.0.0.1:7000/0" }).redisUrl).toBe("redis://10.0.0.1:7000/0");
    expect(loadConfig({ ...cluster, REDIS_URL: "rediss://:pw@cache.example.test:6380" })).toMatchObject({ redisCluster: true });
  });

  it("a worker started with a prefix that is not a hash tag exits 2 with that line, before touching anything", () => {
    const worker = path.resolve(import.meta.dirname, "../../src/main/worker.ts");
    const res = spawnSync(process.execPath, ["--import", "tsx", worker], {
      env: { PATH: process.env.PATH ?? "", ...base, REDIS_URL: "redis://127.0.0.1:1", REDIS_CLUSTER: "true", QUEUE_PREFIX: "caltok" },
      encoding: "utf8",
      timeout: 30_000,
    });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("QUEUE_PREFIX: must contain a Redis hash tag such as {caltok} when REDIS_CLUSTER is on");
    expect(res.stdout).toBe(""); // no log line: nothing started
  }, 40_000);
});

describe("cluster connections", () => {
  const target = { redisUrl: "rediss://app%40user:p%3Ass@[::1]:7000", redisCluster: true };

  it("carry the URL's credentials and TLS to every node, with each role's failure behaviour", async () => {
    const fleet = fleetRedis(target) as Cluster; // lazy: nothing connects
    expect(fleet.isCluster).toBe(true);
    expect(fleet.status).toBe("wait");
    expect(fleet.options.redisOptions).toMatchObject({
      username: "app@user",
      password: "p:ss",
      tls: { rejectUnauthorized: false },
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
    });
    expect(fleet.options.clusterRetryStrategy?.(1)).toBe(500);
    expect(fleet.options.clusterRetryStrategy?.(50)).toBe(10_000); // reconnects forever
    fleet.disconnect();

    const events = queueConnection(target, "events"); // lazy too: BullMQ connects only its duplicate
    const cluster = events.connection as unknown as Cluster;
    expect(cluster.status).toBe("wait");
    expect(cluster.options.redisOptions).toMatchObject({ maxRetriesPerRequest: null, tls: { rejectUnauthorized: false } });
    expect(cluster.duplicate().options.redisOptions).toMatchObject({ maxRetriesPerRequest: null, password: "p:ss" });
    await events.close();
    expect(cluster.status).toBe("end");
  });

  it("a producer or the web fails fast on a cluster: no offline queue, one retry", async () => {
    // A host that never resolves: nothing is connected, so nothing is left behind when the test ends.
    const unreachable = { redisUrl: "redis://cluster.invalid:7000", redisCluster: true };
    const producer = queueConnection(unreachable, "producer");
    const web = queueConnection(unreachable, "web");
    const [p, w] = [producer.connection, web.connection] as unknown as Cluster[];
    expect(p!.options).toMatchObject({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2_000 } });
    expect(w!.options).toMatchObject({ enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 2_000 } });
    await expect(p!.get("k")).rejects.toThrow(/enableOfflineQueue/);
    await expect(w!.get("k")).rejects.toThrow(/enableOfflineQueue/);
    await producer.close();
    await web.close();
  });

  it("one Redis: BullMQ gets options as before, and subscriptions use a plain connection on a cluster too", async () => {
    const single = queueConnection({ redisUrl: "redis://127.0.0.1:6379", redisCluster: false }, "worker");
    expect(single.connection).toMatchObject({ url: "redis://127.0.0.1:6379", maxRetriesPerRequest: null });
    await single.close();
    const sub = subscriberRedis({ redisUrl: "redis://127.0.0.1:7000", redisCluster: true });
    expect(sub.isCluster).toBe(false);
    sub.disconnect();
  });
});
