/**
 * Reading an error code and message out of whatever a non-2xx answer carried
 * (docs/calcom-api.md#error-shapes). The shape is kept: a rejection counts only in the shape Cal.com's
 * token logic uses, so a proxy page or a bare `{"message"}` never passes for one.
 */

/**
 * `calcom`: `{status:"error", error:{code, message}}`. `rfc6749`: `{error, error_description}`, flat or
 * inside a `{status, data}` wrapper. `legacy`: `{message}` (legacy web endpoints). `other`: JSON
 * without any of these. `none`: not JSON at all (HTML, an empty body).
 */
export type ErrorShape = "calcom" | "rfc6749" | "legacy" | "other" | "none";

export interface ErrorBody {
  shape: ErrorShape;
  code?: string;
  message?: string;
}

export function parseJson(text: string): unknown {
  if (text.trim() === "") return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function readErrorBody(body: unknown): ErrorBody {
  if (body === undefined) return { shape: "none" };
  if (!isRecord(body)) return { shape: "other" };
  const rfc = rfcError(body) ?? (isRecord(body.data) ? rfcError(body.data) : undefined);
  if (rfc) return rfc;
  const { error, status, message } = body;
  if (isRecord(error) && (status === undefined || status === "error")) {
    const code = text(error.code);
    const msg = text(error.message);
    if (code !== undefined || msg !== undefined) {
      return { shape: "calcom", ...(code !== undefined ? { code } : {}), ...(msg !== undefined ? { message: msg } : {}) };
    }
  }
  const legacy = text(message);
  return legacy === undefined ? { shape: "other" } : { shape: "legacy", message: legacy };
}

function rfcError(o: Record<string, unknown>): ErrorBody | undefined {
  const code = text(o.error);
  if (code === undefined) return undefined;
  const desc = text(o.error_description);
  return { shape: "rfc6749", code, ...(desc !== undefined ? { message: desc } : {}) };
}

function text(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
