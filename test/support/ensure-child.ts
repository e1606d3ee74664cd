/**
 * Child process for the cross-process single-flight test: builds its own client (own pool, own
 * in-process single flight), says "ready", waits for "go" on stdin, then fires COUNT concurrent
 * ensureValidCalToken calls and prints one JSON line with a hash of each token it got (never the
 * token itself: stdout is not a secret store).
 */
import { createHash } from "node:crypto";
import { createInterface } from "node:readline";
import { createCalTokenClient } from "../../src/wiring/cal-token-client.js";
import { testLogger } from "./log-sink.js";

const env = JSON.parse(process.env.CHILD_CLIENT_ENV ?? "{}") as Record<string, string>;
const userUlid = process.env.CHILD_USER_ULID ?? "";
const count = Number(process.env.CHILD_COUNT ?? "1");

const client = createCalTokenClient({ env, logger: testLogger().logger, refreshPolicy: { pollIntervalMs: 20 } });
const lines = createInterface({ input: process.stdin });
// Open the pool before "ready", so all processes reach the lease within milliseconds of "go".
await client.getCalTokenStatus(userUlid);
process.stdout.write("ready\n");
for await (const line of lines) {
  if (line.trim() !== "go") continue;
  const results = await Promise.all(Array.from({ length: count }, () => client.ensureValidCalToken(userUlid)));
  const hashes = results.map((r) =>
    r.tokenInfo ? createHash("sha256").update(r.tokenInfo.accessToken).digest("hex") : `error:${r.error?.code}`,
  );
  process.stdout.write(`${JSON.stringify({ hashes, refreshed: results.filter((r) => r.refreshed).length })}\n`);
  break;
}
lines.close();
await client.close();
