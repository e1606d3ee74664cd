/** The token client against a fake Cal.com over HTTP, for the calcom integration tests. */
import { createCalcomTokenApi, type CalcomTokenApiDeps, type HttpCalcomTokenApi } from "../../../src/calcom/index.js";
import type { CalRefreshResult } from "../../../src/core/calcom-result.js";
import { startFakeCalcom, type FakeCalcom, type FakeCalcomOptions } from "../../fakes/calcom/index.js";
import { recordForSecretScan, testLogger } from "../../support/log-sink.js";

export const NOW = 1_750_000_000_000;

const tokensFile = process.env.TEST_ISSUED_TOKENS_FILE;

/** Lets the suite-wide leak scan know every token the fake issued. */
export function startScannedFake(opts: FakeCalcomOptions = {}): Promise<FakeCalcom> {
  return startFakeCalcom({ ...(tokensFile ? { issuedTokensFile: tokensFile } : {}), ...opts });
}

export interface TestClient {
  client: HttpCalcomTokenApi;
  lines: () => Record<string, unknown>[];
}

export function makeClient(url: string, over: Partial<CalcomTokenApiDeps> = {}): TestClient {
  const { logger, lines } = testLogger();
  const client = createCalcomTokenApi({
    baseUrl: url,
    clientId: "fake-client",
    clientSecret: "fake-secret",
    oauth2: { clientId: "fake-oauth-client", clientSecret: "fake-oauth-secret" },
    timeoutMs: 2_000,
    logger,
    now: () => NOW,
    ...over,
  });
  return { client, lines };
}

/** Every non-refreshed result goes to the suite-wide leak scan (refreshed ones hold tokens legitimately). */
export async function run(p: Promise<CalRefreshResult>): Promise<CalRefreshResult> {
  const r = await p;
  if (r.kind !== "refreshed") recordForSecretScan(r);
  return r;
}

export function expectRefreshed(r: CalRefreshResult): Extract<CalRefreshResult, { kind: "refreshed" }> {
  if (r.kind !== "refreshed") throw new Error(`expected refreshed, got ${JSON.stringify(r)}`);
  return r;
}
