/**
 * Request paths never wait on Cal.com beyond a bound, and never hammer it: a still-valid token comes
 * back at once while another process refreshes, an expired one's wait is capped, a failure starts a
 * cool-down shared by every process, and mixed-case spellings of one ULID are one user.
 */
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ env: { CAL_HTTP_TIMEOUT_MS: "5000", ON_DEMAND_WAIT_MS: "400" } });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.fake.faults.clear();
  h.fake.resetStats();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const setExpiry = (userUlid: string, msFromNow: number) =>
  h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() + msFromNow) } });

async function untilCalled(n: number): Promise<void> {
  for (let i = 0; i < 300 && tokenEndpointCalls(h.fake) < n; i++) await sleep(10);
  expect(tokenEndpointCalls(h.fake)).toBe(n);
}

it("a still-valid token comes back in under 200 ms while another process's refresh hangs", async () => {
  const u = await h.seedManaged();
  await setExpiry(u.userUlid, 60_000); // valid for a minute, inside the 120 s on-demand buffer
  const other = h.newClient({ ON_DEMAND_WAIT_MS: "30000" });
  h.fake.faults.next("hang");
  const hanging = other.ensureValidCalToken(u.userUlid);
  await untilCalled(1); // the other process holds the lease and its call hangs at Cal.com

  const started = Date.now();
  const res = await h.client.ensureValidCalToken(u.userUlid);
  expect(Date.now() - started).toBeLessThan(200);
  expect(res).toMatchObject({ success: true, refreshed: false, tokenInfo: { accessToken: u.accessToken } });
  expect(tokenEndpointCalls(h.fake)).toBe(1);
  await hanging;
});

it("an expired token's wait is capped: a retryable token.refresh_in_progress, and the refresh goes on", async () => {
  const u = await h.seedManaged();
  await setExpiry(u.userUlid, -1_000);
  h.fake.faults.latencyMs = 1_500;
  const started = Date.now();
  const res = await h.client.ensureValidCalToken(u.userUlid);
  expect(Date.now() - started).toBeLessThan(1_200);
  expect(res).toEqual({
    success: false,
    refreshed: false,
    error: expect.objectContaining({ code: "token.refresh_in_progress", retryable: true, retryAfterMs: expect.any(Number) }),
  });
  // The refresh was not abandoned: it lands, and the next call gets the new pair without another call.
  for (let i = 0; i < 300; i++) {
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    if (row.version === 2) break;
    await sleep(10);
  }
  h.fake.faults.latencyMs = 0;
  const after = await h.client.ensureValidCalToken(u.userUlid);
  expect(after).toMatchObject({ success: true });
  expect(after.tokenInfo?.accessToken).not.toBe(u.accessToken);
  expect(tokenEndpointCalls(h.fake)).toBe(1);
});

it("40 request-path calls during a 5xx outage cost at most 3 token calls, across processes", async () => {
  const u = await h.seedManaged();
  await setExpiry(u.userUlid, -1_000);
  h.fake.faults.always("status503");
  const clients = [h.client, h.newClient()];
  const results = [];
  for (let i = 0; i < 40; i++) {
    const client = clients[i % 2];
    if (!client) throw new Error("no client");
    results.push(await client.ensureValidCalToken(u.userUlid));
    await sleep(50);
  }
  expect(tokenEndpointCalls(h.fake)).toBeLessThanOrEqual(3);
  for (const r of results) {
    expect(r.success).toBe(false);
    expect(r.error?.retryable).toBe(true);
  }
  // Every call says when to come back: the one that called Cal.com, when its failure made the row due
  // again; the ones inside the cool-down, when it ends.
  expect(results.every((r) => typeof r.error?.retryAfterMs === "number" && r.error.retryAfterMs > 0)).toBe(true);
});

it("inside the cool-down a still-valid token is handed out, with the stored failure attached", async () => {
  const u = await h.seedManaged();
  await setExpiry(u.userUlid, 60_000);
  h.fake.faults.next("status500");
  const first = await h.client.ensureValidCalToken(u.userUlid);
  expect(first).toMatchObject({ success: true, tokenInfo: { accessToken: u.accessToken }, error: { code: "calcom.transient" } });
  const second = await h.newClient().ensureValidCalToken(u.userUlid);
  expect(second).toMatchObject({ success: true, tokenInfo: { accessToken: u.accessToken }, error: { code: "calcom.transient" } });
  expect(second.error?.retryAfterMs).toBeGreaterThan(0);
  expect(tokenEndpointCalls(h.fake)).toBe(1);
});

it("mixed-case spellings of one ULID cost one refresh", async () => {
  const u = await h.seedManaged();
  await setExpiry(u.userUlid, -1_000);
  h.fake.faults.latencyMs = 100;
  const [lower, upper] = await Promise.all([
    h.client.ensureValidCalToken(u.userUlid.toLowerCase()),
    h.client.ensureValidCalToken(u.userUlid.toUpperCase()),
  ]);
  expect(tokenEndpointCalls(h.fake)).toBe(1);
  expect(lower.tokenInfo?.accessToken).toBe(upper.tokenInfo?.accessToken);
  expect(lower.tokenInfo?.userUlid).toBe(u.userUlid.toUpperCase());
});
