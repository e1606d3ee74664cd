/** A fetch-based client for the web server under test (jest cannot load Fastify's inject(); see web-server.test.ts). */
export interface Res {
  statusCode: number;
  headers: Headers;
  body: string;
  ms: number;
  json(): unknown;
}

export interface CallInit {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as JSON. */
  body?: unknown;
}

export type Call = (path: string, init?: CallInit) => Promise<Res>;

/** Requests give up after 15 s, so a server that hangs fails the test instead of stalling it. */
const CLIENT_TIMEOUT_MS = 15_000;

export function httpClient(origin: string, defaults: Record<string, string> = {}): Call {
  return async (path, init = {}) => {
    const headers: Record<string, string> = { ...defaults, ...init.headers };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    const started = Date.now();
    const res = await fetch(`${origin}${path}`, {
      method: init.method ?? "GET",
      headers,
      signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const body = await res.text();
    return { statusCode: res.status, headers: res.headers, body, ms: Date.now() - started, json: () => JSON.parse(body) as unknown };
  };
}

export const basic = (username: string, password: string) => `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
