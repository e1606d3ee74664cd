/**
 * Request/response plumbing shared by the fake's routes: body parsing and Cal.com's answer shapes
 * (Nest error envelope with X-Request-Id, docs/calcom-api.md#error-shapes).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  now: () => number;
  /** Rate-limit headers: Cal.com's guard puts them on every answer of a limited route. */
  extraHeaders: Record<string, string>;
  /** The limit of this request's bucket (used by the rateLimit fault to answer "as the limiter would"). */
  rateLimit: number;
  /** Status bookkeeping for stats(); control routes pass a no-op so they stay uncounted. */
  count: (status: number) => void;
}

/** Parsed body: a record, undefined (no body), or "invalid" (unparseable, rejected before any guard runs). */
export type Body = Record<string, unknown> | undefined | "invalid";

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** JSON or x-www-form-urlencoded, like Nest's default body parsers; anything else is ignored. */
export function parseBody(raw: string, contentType: string | undefined): Body {
  if (raw.trim() === "") return undefined;
  const type = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
  if (type === "application/x-www-form-urlencoded") return Object.fromEntries(new URLSearchParams(raw));
  if (type !== "application/json") return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return isRecord(parsed) ? parsed : "invalid";
  } catch {
    return "invalid";
  }
}

export function sendText(ctx: Ctx, status: number, contentType: string, text: string, headers: Record<string, string> = {}): void {
  // A hung or dropped request may be answered late (after close()); there is nobody left to answer.
  if (ctx.res.headersSent || ctx.res.destroyed) return;
  ctx.count(status);
  ctx.res.writeHead(status, {
    ...ctx.extraHeaders,
    "Content-Type": contentType,
    "Content-Length": String(Buffer.byteLength(text)),
    ...headers,
  });
  ctx.res.end(text);
}

export function sendJson(ctx: Ctx, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendText(ctx, status, "application/json; charset=utf-8", JSON.stringify(body), headers);
}

/** HttpExceptionFilter's shape; `path` is req.url including the query string. */
export function nestError(ctx: Ctx, status: number, code: string, message: string): void {
  const body = {
    status: "error",
    timestamp: new Date(ctx.now()).toISOString(),
    path: ctx.req.url ?? "",
    error: { code, message },
  };
  sendJson(ctx, status, body, { "X-Request-Id": "unknown-request-id" });
}

export function nestSuccess(ctx: Ctx, status: number, data: unknown): void {
  sendJson(ctx, status, { status: "success", data });
}

/** RFC 6749 error body used by the OAuth 2.0 token endpoint (its own exception filter, no envelope). */
export function oauthError(ctx: Ctx, status: number, error: string, description: string): void {
  sendJson(ctx, status, { error, error_description: description });
}
