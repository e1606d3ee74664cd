import got, { RequestError } from "got";
import { signPayload } from "./signing.js";
import type { TokenEvent } from "./types.js";

export interface WebhookTarget {
  url: string;
  secret: string;
  timeoutMs: number;
}

export const WEBHOOK_HEADERS = {
  event: "x-cal-token-event",
  eventId: "x-cal-token-event-id",
  idempotencyKey: "idempotency-key",
  signature: "x-cal-token-signature",
} as const;

/**
 * POSTs one signed event. Resolves on 2xx; otherwise throws a plain Error whose message is the status
 * (or the network error code) and nothing else: BullMQ stores the message in Redis and Bull Board shows
 * it, so neither the URL (which may carry credentials) nor got's error (which carries the request,
 * signature included) may ride along. got does no retries of its own; BullMQ's backoff owns retrying.
 *
 * The signature timestamp is the send time, not `occurredAt`, so a delivery retried hours later is
 * still inside the receiver's tolerance window; the id stays the same for dedup.
 */
export async function deliverWebhook(event: TokenEvent, target: WebhookTarget, now: () => Date = () => new Date()): Promise<void> {
  const body = JSON.stringify(event);
  const ts = Math.floor(now().getTime() / 1000);
  let status: number;
  try {
    const res = await got.post(target.url, {
      body,
      headers: {
        "content-type": "application/json",
        [WEBHOOK_HEADERS.event]: event.type,
        [WEBHOOK_HEADERS.eventId]: event.id,
        [WEBHOOK_HEADERS.idempotencyKey]: event.id,
        [WEBHOOK_HEADERS.signature]: signPayload(target.secret, ts, body),
      },
      timeout: { request: target.timeoutMs },
      retry: { limit: 0 },
      throwHttpErrors: false,
      // A redirect would re-send the signed body somewhere unconfigured.
      followRedirect: false,
    });
    status = res.statusCode;
  } catch (err) {
    const code = err instanceof RequestError ? err.code : "UNKNOWN";
    throw new Error(`webhook request failed: ${code}`);
  }
  if (status < 200 || status >= 300) throw new Error(`webhook responded ${status}`);
}
