/** Tiny fetch helpers for the fake Cal.com tests. */

export interface JsonResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Assertions dig into response bodies freely. */
  // biome-ignore lint/suspicious/noExplicitAny: a test helper: response bodies are asserted field by field.
  json: any;
}

export async function call(
  url: string,
  init: {
    method?: string;
    body?: unknown;
    headers?: Record<string, string>;
    form?: Record<string, string>;
    signal?: AbortSignal;
  } = {},
): Promise<JsonResponse> {
  const headers: Record<string, string> = { ...init.headers };
  let body: string | undefined;
  if (init.form) {
    headers["content-type"] = "application/x-www-form-urlencoded";
    body = new URLSearchParams(init.form).toString();
  } else if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.body);
  }
  const res = await fetch(url, {
    method: init.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    ...(body === undefined ? {} : { body }),
    ...(init.signal ? { signal: init.signal } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export const SECRET = { "x-cal-secret-key": "fake-secret" };

export function refresh(base: string, refreshToken: unknown, headers: Record<string, string> = SECRET) {
  return call(`${base}/v2/oauth/fake-client/refresh`, { body: { refreshToken }, headers });
}

export function me(base: string, accessToken: string) {
  return call(`${base}/v2/me`, { headers: { authorization: `Bearer ${accessToken}` } });
}

export function oauth2Refresh(base: string, refreshToken: string, extra: Record<string, string> = {}) {
  return call(`${base}/v2/auth/oauth2/token`, {
    body: {
      grant_type: "refresh_token",
      client_id: "fake-oauth-client",
      client_secret: "fake-oauth-secret",
      refresh_token: refreshToken,
      ...extra,
    },
  });
}
