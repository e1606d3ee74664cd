import { configError, refreshed } from "../../fakes/scripted-calcom-api.js";
import { at, harness, summary, USER, USER_2 } from "./harness.js";

// One refresh per user at a time: in this process one shared promise, across processes the lease.

const newPair = { accessToken: "at_2", refreshToken: "rt_2", accessTokenExpiresAt: at(3_600_000) };

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

const settle = () => new Promise<void>((r) => setImmediate(r));

describe("single flight", () => {
  it("two concurrent refreshes of one user share one promise and one Cal.com call", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", refreshed(newPair));
    const first = h.refresh();
    const second = h.refresh({ trigger: "on_demand" });
    expect(second).toBe(first);
    expect(summary(await second)).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.calcom.calls()).toEqual([{ method: "refreshManaged", arg: "rt_1" }]);
    expect(h.observe().audits).toHaveLength(1);
  });

  it("a refresh after the shared one settled is a new attempt with the new refresh token", async () => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", refreshed(newPair), refreshed({ accessToken: "at_3", accessTokenExpiresAt: at(3_600_000) }));
    const first = h.refresh();
    await first;
    const next = h.refresh();
    expect(next).not.toBe(first);
    expect(summary(await next)).toMatchObject({ how: "refreshed", accessToken: "at_3", version: 3 });
    expect(h.calcom.callsOf("refreshManaged")).toEqual(["rt_1", "rt_2"]);
  });

  it("different users are refreshed independently", async () => {
    const h = harness();
    h.store.seed({ ...h.seed(), userUlid: USER_2, refreshToken: "rt_user2" });
    h.calcom.script("refreshManaged", refreshed(newPair), refreshed(newPair));
    const [a, b] = [h.refresh(), h.refresher.refresh({ userUlid: USER_2, trigger: "worker" })];
    expect(b).not.toBe(a);
    await Promise.all([a, b]);
    expect(h.calcom.callsOf("refreshManaged")).toEqual(["rt_1", "rt_user2"]);
  });

  it("across processes: the second waits on the lease and gets the first's pair, one Cal.com call", async () => {
    const h = harness();
    h.seed();
    const answer = gate();
    h.calcom.script("refreshManaged", async () => {
      await answer.opened;
      return refreshed(newPair);
    });
    const processA = h.refresher;
    const processB = h.build();
    expect(processB.ownerId).not.toBe(processA.ownerId);
    const a = h.refresh();
    await settle(); // A holds the lease and waits for Cal.com
    expect(h.row()?.leaseOwner).toBe("us");
    h.duringSleep.push(() => {
      answer.open();
      return a;
    });
    const b = await processB.refresh({ userUlid: USER, trigger: "on_demand" });
    expect(summary(await a)).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(summary(b)).toEqual({ ok: true, how: "by_other", accessToken: "at_2", version: 2 });
    expect(h.sleeps).toHaveLength(1);
    expect(h.calcom.calls()).toHaveLength(1);
    expect(h.row()?.leaseOwner).toBeNull();
  });

  it.each([
    ["lower case", USER.toLowerCase()],
    ["mixed case", `${USER.slice(0, 13).toLowerCase()}${USER.slice(13)}`],
  ])("one user, one identity: the %s and upper-case spellings share one flight and one Cal.com call", async (_name, spelling) => {
    const h = harness();
    h.seed();
    h.calcom.script("refreshManaged", refreshed(newPair));
    const a = h.refresher.refresh({ userUlid: spelling, trigger: "worker" });
    const b = h.refresh({ trigger: "on_demand" });
    expect(b).toBe(a);
    expect(summary(await a)).toEqual({ ok: true, how: "refreshed", accessToken: "at_2", version: 2 });
    expect(h.calcom.calls()).toHaveLength(1);
    expect((await a).token?.userUlid).toBe(USER);
  });

  it("each attempt holds its own lease token (ownerId:n), never the bare process id", async () => {
    const h = harness();
    h.seed();
    const owners: (string | null | undefined)[] = [];
    const answer = (accessToken: string) => () => {
      owners.push(h.store.peek(USER)?.leaseOwner);
      return refreshed({ accessToken, accessTokenExpiresAt: at(3_600_000) });
    };
    h.calcom.script("refreshManaged", answer("at_2"), answer("at_3"));
    await h.refresh();
    await h.refresh();
    expect(owners).toEqual([`${h.refresher.ownerId}:1`, `${h.refresher.ownerId}:2`]);
  });

  it("a lease an earlier attempt of this process left behind is not re-entered: the next attempt waits for it to lapse", async () => {
    const h = harness({ policy: { leaseMs: 2_000, callLeaseMs: 5_000 } });
    h.seed();
    h.store.failAll("releaseLease", new Error("connection terminated"));
    h.calcom.script("refreshManaged", configError(401), refreshed(newPair));
    await h.refresh(); // the config error's release fails: the call lease (5 s) stays on the row
    expect(h.store.peek(USER)).toMatchObject({ leaseOwner: `${h.refresher.ownerId}:1`, leaseUntil: at(5_000) });
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed", accessToken: "at_2" });
    // Re-entrant for the same process, it would have called at once; a second attempt is a second owner.
    expect(h.sleeps.length).toBeGreaterThan(0);
    expect(h.now.getTime()).toBeGreaterThan(at(5_000).getTime());
    expect(h.calcom.calls()).toHaveLength(2);
  });

  it("a Cal.com client that throws (a bug) rejects the refresh, releases the lease and clears the flight", async () => {
    const h = harness();
    h.seed();
    h.calcom.script(
      "refreshManaged",
      () => {
        throw new TypeError("client bug");
      },
      refreshed(newPair),
    );
    await expect(h.refresh()).rejects.toThrow("client bug");
    expect(h.row()).toMatchObject({ leaseOwner: null, version: 1, failureCount: 0 });
    expect(summary(await h.refresh())).toMatchObject({ ok: true, how: "refreshed" });
  });
});
