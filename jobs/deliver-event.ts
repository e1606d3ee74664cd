import type { Job } from "bullmq";
import { deliverWebhook, type WebhookTarget } from "../src/events/webhook-client.js";
import { isTokenEvent, type DeliverEventJobData } from "../src/events/types.js";
import type { Logger } from "../src/log/logger.js";
import type { EventStore } from "../src/store/event-store.js";

/**
 * Processor for JOB_NAMES.deliver on QUEUES.events. The job carries only the event id; the body is
 * read from the outbox row, so nothing about the event (let alone a secret) lives in Redis or Bull
 * Board. A thrown Error means "retry" (attempts/backoff are set by the relay).
 */
export function createDeliverEventProcessor(deps: {
  eventStore: EventStore;
  webhook: WebhookTarget | null;
  logger: Logger;
  now?: () => Date;
}): (job: Job<DeliverEventJobData>) => Promise<void> {
  const { eventStore, webhook, logger } = deps;
  return async (job) => {
    const { eventId } = job.data;
    const row = await eventStore.get(eventId);
    if (row === null) {
      // Nothing can bring a deleted outbox row back: retrying would only burn attempts.
      logger.warn({ eventId, jobId: job.id }, "event not found in the outbox; nothing to deliver");
      return;
    }
    if (!isTokenEvent(row.payload)) {
      logger.error({ eventId, eventType: row.type }, "outbox payload is not a token event; dropped");
      return;
    }
    const log = { eventId, eventType: row.type, userUlid: row.userUlid, attempt: job.attemptsMade + 1 };
    if (webhook === null) {
      // Events are optional (EVENTS_WEBHOOK_URL unset): completing keeps the queue from filling up.
      logger.info(log, "no events webhook configured; event not sent");
      return;
    }
    try {
      await deliverWebhook(row.payload, webhook, deps.now);
    } catch (err) {
      logger.warn({ ...log, err }, "event delivery failed; BullMQ will retry");
      throw err;
    }
    logger.info(log, "event delivered");
  };
}
