import http from "node:http";
import type { AddressInfo } from "node:net";
import { verifySignature } from "../../../src/events/signing.js";
import type { TokenEvent } from "../../../src/events/types.js";
import { deliverWebhook } from "../../../src/events/webhook-client.js";
import { startWebhookReceiver } from "../../fakes/webhook-receiver.js";

// The webhook client over real HTTP: what goes on the wire, and which failures make BullMQ retry.

const SECRET = "whsec_client_test_secret_0123456789";
const EVENT: TokenEvent = {
  id: "01J9Z8Y7X6W5V4T3S2R1Q0P9N8",
  type: "token.reconnect_required",
  userUlid: "01J9Z8Y7X6W5V4T3S2R1Q0P9AA",
  occurredAt: "2030-01-01T00:00:00.000Z",
  data: { kind: "oauth2", errorCode: "calcom.invalid_grant" },
};

/** A server that records requests and answers with `status` after `delayMs`. */
async function stubServer(status: number, delayMs = 0) {
  const seen: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      setTimeout(() => {
        res.statusCode = status;
        if (status >= 300 && status < 400) res.setHeader("location", "http://127.0.0.1:9/elsewhere");
        res.end("upstream said: do not echo me");
      }, delayMs).unref();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://user:pw@127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=querysecret`;
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  };
  return { url, seen, close };
}

describe("deliverWebhook", () => {
  it("POSTs the event as signed JSON with the event, id and idempotency headers", async () => {
    const s = await stubServer(202);
    try {
      const now = new Date("2030-01-01T00:05:00.000Z");
      await deliverWebhook(EVENT, { url: s.url, secret: SECRET, timeoutMs: 2000 }, () => now);
      expect(s.seen).toHaveLength(1);
      const { headers, body } = s.seen[0]!;
      expect(JSON.parse(body)).toEqual(EVENT);
      expect(headers).toMatchObject({
        "content-type": "application/json",
        "x-cal-token-event": "token.reconnect_required",
        "x-cal-token-event-id": EVENT.id,
        "idempotency-key": EVENT.id,
      });
      // Signed at send time, not at occurredAt, so late retries stay within the tolerance window.
      const sig = String(headers["x-cal-token-signature"]);
      expect(sig.startsWith(`t=${now.getTime() / 1000},`)).toBe(true);
      expect(verifySignature(SECRET, sig, body, now.getTime() / 1000)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it.each([[500], [404], [302]])("throws 'webhook responded %i' (status only) and does not retry or follow", async (status) => {
    const s = await stubServer(status);
    try {
      const err = await deliverWebhook(EVENT, { url: s.url, secret: SECRET, timeoutMs: 2000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toBe(`webhook responded ${status}`);
      expect((err as Error).cause).toBeUndefined();
      expect(s.seen).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it("a timeout throws a message without the URL", async () => {
    const s = await stubServer(200, 2000);
    try {
      const err = (await deliverWebhook(EVENT, { url: s.url, secret: SECRET, timeoutMs: 200 }).catch((e: unknown) => e)) as Error;
      expect(err.message).toBe("webhook request failed: ETIMEDOUT");
      expect(JSON.stringify({ m: err.message, s: err.stack })).not.toMatch(/querysecret|pw@|whsec_/);
    } finally {
      await s.close();
    }
  });

  it("a refused connection throws too", async () => {
    const s = await stubServer(200);
    const url = s.url;
    await s.close();
    await expect(deliverWebhook(EVENT, { url, secret: SECRET, timeoutMs: 1000 })).rejects.toThrow("webhook request failed: ECONNREFUSED");
  });

  it("the fake receiver verifies, dedups and fails the first N requests", async () => {
    const r = await startWebhookReceiver({ secret: SECRET, failFirst: 1 });
    try {
      const target = { url: r.url, secret: SECRET, timeoutMs: 2000 };
      await expect(deliverWebhook(EVENT, target)).rejects.toThrow("webhook responded 500");
      await deliverWebhook(EVENT, target);
      await deliverWebhook(EVENT, target);
      expect(r.received.map((x) => [x.attempt, x.accepted, x.verified])).toEqual([
        [1, false, true],
        [2, true, true],
        [3, true, true],
      ]);
      expect(r.uniqueEvents()).toHaveLength(1);
      await expect(deliverWebhook(EVENT, { ...target, secret: "not-the-receivers-secret" })).rejects.toThrow("webhook responded 401");
      expect(r.received.at(-1)?.verified).toBe(false);
    } finally {
      await r.close();
    }
  });
});
