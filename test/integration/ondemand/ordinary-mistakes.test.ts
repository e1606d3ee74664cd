/**
 * Ordinary mistakes and odd answers, end to end through the public module against the fake Cal.com
 * over HTTP: a base URL written the way Cal.com's docs write it disconnects no one, and a 2xx whose
 * expiry comes in another form keeps Cal.com's live pair.
 */
import { ODD_EXPIRY_FAULTS } from "../../fakes/calcom/index.js";
import { startHarness, tokenEndpointCalls, type Harness } from "../../support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ownDatabase: true });
});
afterAll(async () => {
  await h.close();
});
beforeEach(() => {
  h.fake.faults.clear();
  h.fake.resetStats();
});

const expire = (userUlid: string) =>
  h.db.calToken.update({ where: { userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });

it("CAL_API_URL=…/v2 (as Cal.com's docs write it) is normalised: users refresh, nobody is disconnected", async () => {
  const managed = await h.seedManaged();
  const oauth2 = await h.seedOAuth2();
  for (const u of [managed, oauth2]) await expire(u.userUlid);
  const client = h.newClient({ CAL_API_URL: `${h.fake.url}/v2` });
  for (const u of [managed, oauth2]) {
    const res = await client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({ success: true, refreshed: true, tokenInfo: { status: "ACTIVE" } });
    expect(h.fake.isAccessTokenValid(res.tokenInfo?.accessToken ?? "")).toBe(true);
  }
  expect(h.fake.stats().routeNotFound ?? 0).toBe(0);
});

it("a base URL with another path is refused at start, with one clear line", () => {
  expect(() => h.newClient({ CAL_API_URL: `${h.fake.url}/api/v2` })).toThrow(/CAL_API_URL: must be the API origin/);
});

it.each(ODD_EXPIRY_FAULTS)(
  "a 2xx with %s keeps Cal.com's live pair: ACTIVE, no force-refresh, the next call needs no refresh",
  async (fault) => {
    const u = await h.seedManaged();
    await expire(u.userUlid);
    h.fake.faults.next(fault);
    const res = await h.client.ensureValidCalToken(u.userUlid);
    expect(res).toMatchObject({ success: true, refreshed: true, tokenInfo: { status: "ACTIVE" } });
    const live = res.tokenInfo?.accessToken ?? "";
    expect(h.fake.isAccessTokenValid(live)).toBe(true);
    const row = await h.db.calToken.findUniqueOrThrow({ where: { userUlid: u.userUlid } });
    expect(row).toMatchObject({ status: "ACTIVE", version: 2, failureCount: 0, rotationUncertain: false });
    // The stored expiry is usable: in the future, and not more than a day ahead.
    const left = row.accessTokenExpiresAt.getTime() - Date.now();
    expect(left).toBeGreaterThan(60_000);
    expect(left).toBeLessThanOrEqual(24 * 3600_000);
    // The pair we stored is Cal.com's live one: the next call is served from it without any token call.
    const again = await h.client.ensureValidCalToken(u.userUlid);
    expect(again.tokenInfo?.accessToken).toBe(live);
    expect(h.fake.stats().forceRefreshes).toBe(0);
    expect(tokenEndpointCalls(h.fake)).toBe(1);
    const audit = await h.db.calTokenAudit.findFirstOrThrow({ where: { userUlid: u.userUlid, outcome: "REFRESHED" } });
    expect(audit.errorCode).toMatch(/^calcom\.expiry_(assumed|converted)$/);
  },
);
