import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * Webhook signatures, Stripe-style: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 * The timestamp is inside the MAC so a captured request cannot be replayed later with a fresh `t`;
 * the receiver rejects timestamps outside a tolerance window.
 */
export function signPayload(secret: string, timestampSec: number, body: string): string {
  return `t=${timestampSec},v1=${hmacHex(secret, timestampSec, body)}`;
}

/**
 * True only for a well-formed header whose timestamp is within `toleranceSec` of `nowSec` and whose
 * v1 MAC matches. Several v1 entries are accepted (a sender rotating secrets may send one per secret).
 * Comparison is constant-time so the MAC cannot be discovered byte by byte.
 */
export function verifySignature(secret: string, header: string | undefined, body: string, nowSec: number, toleranceSec = 300): boolean {
  if (!header) return false;
  let ts: number | undefined;
  const macs: string[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === "t" && /^\d{1,12}$/.test(value)) ts = Number(value);
    else if (key === "v1" && /^[0-9a-f]{64}$/.test(value)) macs.push(value);
  }
  if (ts === undefined || macs.length === 0) return false;
  if (Math.abs(nowSec - ts) > toleranceSec) return false;
  const expected = Buffer.from(hmacHex(secret, ts, body), "hex");
  return macs.some((mac) => timingSafeEqual(Buffer.from(mac, "hex"), expected));
}

function hmacHex(secret: string, timestampSec: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestampSec}.${body}`).digest("hex");
}
