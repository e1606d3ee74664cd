import type { CalRefreshResult } from "../../../src/core/calcom-result.js";
import type { SeedRecord } from "../../fakes/in-memory-token-store.js";
import { configError, refreshed, rejected, transient } from "../../fakes/scripted-calcom-api.js";
import { type AlertKind, at, harness, type OutcomeSummary, summary } from "./harness.js";

// Audit rows, alerts and lease releases are best effort: their failure never changes an outcome.

type Scenario = [
  name: string,
  seed: Partial<SeedRecord>,
  method: "refreshManaged" | "refreshOAuth2",
  result: CalRefreshResult,
  outcome: OutcomeSummary,
  alert: AlertKind | null,
];

const scenarios: Scenario[] = [
  [
    "a transient failure",
    {},
    "refreshManaged",
    transient("timeout", false),
    { ok: false, code: "calcom.timeout", retryable: true, retryAfterMs: undefined, hasToken: true },
    "refreshFailing",
  ],
  [
    "a dead grant",
    { kind: "oauth2", calUserId: null },
    "refreshOAuth2",
    rejected(400),
    { ok: false, code: "token.reconnect_required", retryable: false, retryAfterMs: undefined, hasToken: true },
    "reconnectRequired",
  ],
  [
    "a refresh after a failure streak",
    { failureCount: 1, firstFailureAt: at(-60_000), lastFailureAt: at(-60_000), lastFailureCode: "calcom.timeout" },
    "refreshManaged",
    refreshed({ accessToken: "at_2", accessTokenExpiresAt: at(3_600_000) }),
    { ok: true, how: "refreshed", accessToken: "at_2", version: 2 },
    "recovered",
  ],
  [
    "refused client credentials",
    {},
    "refreshManaged",
    configError(401),
    { ok: false, code: "calcom.config_error", retryable: true, retryAfterMs: undefined, hasToken: true },
    null,
  ],
];

describe("best-effort effects", () => {
  it.each(scenarios)("%s: an alert sink that throws does not change the outcome", async (_name, seed, method, result, outcome, alert) => {
    const h = harness();
    h.seed(seed);
    h.alerts.failWith(new Error("event store down"));
    h.calcom.script(method, result);
    expect(summary(await h.refresh())).toEqual(outcome);
    expect(h.alerts.kinds()).toEqual(alert ? [alert] : []);
    expect(h.row()?.leaseOwner).toBeNull();
  });

  it.each(scenarios)(
    "%s: a failing audit insert does not change the outcome; the event is still emitted",
    async (_name, seed, method, result, outcome, alert) => {
      const h = harness();
      h.seed(seed);
      h.store.failAll("insertAudit", new Error("audit table locked"));
      h.calcom.script(method, result);
      expect(summary(await h.refresh())).toEqual(outcome);
      expect(h.events).toHaveLength(1);
      expect(h.alerts.kinds()).toEqual(alert ? [alert] : []);
      expect(h.row()?.leaseOwner).toBeNull();
    },
  );

  it("works without an alert sink at all", async () => {
    const h = harness({ alerts: false });
    h.seed({ kind: "oauth2", calUserId: null });
    h.calcom.script("refreshOAuth2", rejected(400));
    expect(summary(await h.refresh())).toMatchObject({ ok: false, code: "token.reconnect_required" });
    expect(h.observe()).toMatchObject({ alerts: [], audits: [{ outcome: "RECONNECT_REQUIRED" }], row: { status: "RECONNECT_REQUIRED" } });
  });

  it("failure bookkeeping that cannot be written still reports the failure, audits, alerts and releases the lease", async () => {
    const h = harness();
    h.seed();
    h.store.failNext("recordFailure", new Error("connection terminated"));
    h.calcom.script("refreshManaged", transient("network", true));
    expect(summary(await h.refresh())).toEqual({
      ok: false,
      code: "calcom.transient",
      retryable: true,
      retryAfterMs: undefined,
      hasToken: true,
    });
    expect(h.observe()).toMatchObject({
      row: { failureCount: 0, rotationUncertain: false, leaseOwner: null },
      audits: [{ outcome: "FAILED_TRANSIENT", errorCode: "calcom.transient" }],
      alerts: ["refreshFailing"],
    });
  });

  it("a lease release that fails is left to lapse; the outcome stands", async () => {
    const h = harness();
    h.seed();
    h.store.failAll("releaseLease", new Error("connection terminated"));
    h.calcom.script("refreshManaged", configError(401));
    expect(summary(await h.refresh())).toMatchObject({ ok: false, code: "calcom.config_error" });
    expect(h.row()?.leaseOwner).toBe("us");
    expect(h.observe().audits).toEqual([{ outcome: "CONFIG_ERROR", errorCode: "calcom.config_error", version: null }]);
  });
});
