/** Retention pruning of the append-only tables, and the fleet-wide figures /metrics reads from Postgres. */
import { ulid } from "ulid";
import { createMetrics } from "../../../src/metrics/metrics.js";
import { pruneOldRows } from "../../../src/store/retention.js";
import { readTokenStats } from "../../../src/store/token-stats.js";
import { startHarness, type Harness } from "../../support/harness.js";

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ ownDatabase: true });
});
afterAll(async () => {
  await h.close();
});

const DAY = 24 * 3600_000;

it("prunes audit rows and delivered events past the cutoff, and nothing else", async () => {
  const u = await h.seedManaged();
  const old = new Date(Date.now() - 40 * DAY);
  const recent = new Date(Date.now() - 1 * DAY);
  await h.db.calTokenAudit.createMany({
    data: [
      ...Array.from({ length: 7 }, () => ({ userUlid: u.userUlid, outcome: "REFRESHED" as const, trigger: "worker", createdAt: old })),
      { userUlid: u.userUlid, outcome: "REFRESHED" as const, trigger: "worker", createdAt: recent },
    ],
  });
  const ev = (relayedAt: Date | null, createdAt: Date) => ({
    id: ulid(),
    userUlid: u.userUlid,
    type: "token.recovered",
    payload: {},
    createdAt,
    relayedAt,
  });
  const keptUnrelayed = ev(null, old);
  await h.db.calTokenEvent.createMany({ data: [ev(old, old), ev(old, old), keptUnrelayed, ev(recent, recent)] });

  const res = await pruneOldRows(h.db, new Date(Date.now() - 30 * DAY), { batchSize: 3 });
  expect(res).toEqual({ audit: 7, events: 2 });
  expect(await h.db.calTokenAudit.count({ where: { userUlid: u.userUlid } })).toBe(1);
  const left = await h.db.calTokenEvent.findMany({ where: { userUlid: u.userUlid } });
  // Kept: the undelivered old event and the recent delivered one; the two old delivered ones are gone.
  expect(left).toHaveLength(2);
  expect(left.some((e) => e.id === keptUnrelayed.id)).toBe(true);
  expect(left.filter((e) => e.id !== keptUnrelayed.id).map((e) => e.createdAt.getTime())).toEqual([recent.getTime()]);
});

it("reports users by status, overdue refreshes and recent outcomes, and /metrics renders them", async () => {
  const a = await h.seedManaged();
  const b = await h.seedManaged();
  await h.db.calToken.update({ where: { userUlid: a.userUlid }, data: { status: "RECONNECT_REQUIRED" } });
  await h.db.calToken.update({ where: { userUlid: b.userUlid }, data: { nextRefreshAt: new Date(Date.now() - 10 * 60_000) } });
  await h.db.calTokenAudit.create({ data: { userUlid: b.userUlid, outcome: "FAILED_TRANSIENT", trigger: "worker" } });
  const stats = await readTokenStats(h.db, new Date());
  const byStatus = Object.fromEntries(stats.byStatus.map((r) => [r.status, r.count]));
  const total = await h.db.calToken.count();
  expect(byStatus.RECONNECT_REQUIRED).toBe(1);
  expect(byStatus.ACTIVE).toBe(total - 1);
  expect(stats.overdue).toBe(1);
  expect(stats.recentOutcomes).toContainEqual({ outcome: "FAILED_TRANSIENT", trigger: "worker", count: 1 });

  const metrics = createMetrics({ defaultMetrics: false, tokenStats: () => readTokenStats(h.db, new Date()) });
  const text = await metrics.render();
  expect(text).toContain('cal_token_users{status="RECONNECT_REQUIRED"} 1');
  expect(text).toContain("cal_token_refresh_overdue 1");
  expect(text).toContain('cal_token_refresh_outcomes_recent{outcome="FAILED_TRANSIENT",trigger="worker"} 1');
  expect(text).not.toContain(a.userUlid);
});
