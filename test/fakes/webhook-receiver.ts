/**
 * A real HTTP server standing in for the web app's webhook endpoint: verifies each request's signature
 * the way a receiver should (src/events/signing.ts), dedups on the idempotency key, and can answer 500
 * to the first `failFirst` requests so retries are exercised through BullMQ's backoff.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifySignature } from "../../src/events/signing.js";

export interface ReceivedWebhook {
  /** The idempotency key header. */
  id: string;
  type: string;
  userUlid: string;
  verified: boolean;
  /** 1-based count of requests seen for this id, this one included. */
  attempt: number;
  /** Whether this request was answered 2xx (false for the injected failures). */
  accepted: boolean;
  /** The raw body, for scans such as "no token appears in any payload". */
  body: string;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** One entry per idempotency key among accepted requests: what an idempotent receiver processes. */
  uniqueEvents(): ReceivedWebhook[];
  close(): Promise<void>;
}

export async function startWebhookReceiver(opts: { secret: string; failFirst?: number }): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const attempts = new Map<string, number>();
  let failuresLeft = opts.failFirst ?? 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const id = header(req, "idempotency-key");
      const attempt = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, attempt);
      const verified =
        verifySignature(opts.secret, header(req, "x-cal-token-signature"), body, Math.floor(Date.now() / 1000)) &&
        header(req, "content-type").startsWith("application/json") &&
        header(req, "x-cal-token-event-id") === id;
      let parsed: { type?: unknown; userUlid?: unknown } = {};
      try {
        parsed = JSON.parse(body) as typeof parsed;
      } catch {
        // Recorded with verified = false below.
      }
      const fail = failuresLeft > 0;
      if (fail) failuresLeft--;
      const accepted = !fail && verified;
      received.push({
        id,
        type: typeof parsed.type === "string" ? parsed.type : header(req, "x-cal-token-event"),
        userUlid: typeof parsed.userUlid === "string" ? parsed.userUlid : "",
        verified: verified && parsed.type === header(req, "x-cal-token-event"),
        attempt,
        accepted,
        body,
      });
      res.statusCode = fail ? 500 : verified ? 204 : 401;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/webhooks/cal-token`,
    received,
    uniqueEvents() {
      const byId = new Map<string, ReceivedWebhook>();
      for (const r of received) if (r.accepted && !byId.has(r.id)) byId.set(r.id, r);
      return [...byId.values()];
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function header(req: http.IncomingMessage, name: string): string {
  const v = req.headers[name];
  return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
}
