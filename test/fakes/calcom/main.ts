/**
 * Standalone fake Cal.com: `tsx test/fakes/calcom/main.ts`. Prints one JSON line with its URL on stdout
 * (the only output, so a parent process can parse it) and stops on SIGTERM/SIGINT.
 * Env: PORT (0 = random), CLIENT_ID, CLIENT_SECRET, ACCESS_TOKEN_TTL_SECONDS, RATE_LIMIT=off.
 */
import { startFakeCalcom } from "./server.js";
import type { FakeCalcomOptions } from "./types.js";

function numberEnv(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${raw}`);
  return n;
}

const options: FakeCalcomOptions = {
  port: numberEnv("PORT") ?? 0,
  clients: [{ id: process.env.CLIENT_ID || "fake-client", secret: process.env.CLIENT_SECRET || "fake-secret" }],
};
const ttlSeconds = numberEnv("ACCESS_TOKEN_TTL_SECONDS");
if (ttlSeconds !== undefined) options.accessTokenTtlMs = ttlSeconds * 1000;
// A demo or benchmark hammering the fake from one IP would otherwise hit the 120/min IP bucket.
if (process.env.RATE_LIMIT === "off") options.rateLimit = false;

const fake = await startFakeCalcom(options);
process.stdout.write(`${JSON.stringify({ event: "listening", url: fake.url })}\n`);

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  void fake.close().then(() => process.exit(0));
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
