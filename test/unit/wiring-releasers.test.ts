import { createReleasers } from "../../src/wiring/releasers.js";
import { testLogger } from "../support/log-sink.js";

describe("createReleasers", () => {
  it("closes in reverse order of registration, awaiting each step", async () => {
    const releasers = createReleasers();
    const order: string[] = [];
    releasers.add("prisma", () => order.push("prisma"));
    releasers.add("queues", async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push("queues");
    });
    releasers.add("workers", async () => {
      await new Promise((r) => setTimeout(r, 5));
      order.push("workers");
    });
    await releasers.closeAll();
    expect(order).toEqual(["workers", "queues", "prisma"]);
  });

  it("runs the rest when a step throws or rejects, and logs the failing step by name", async () => {
    const { logger, lines } = testLogger();
    const releasers = createReleasers(logger);
    const order: string[] = [];
    releasers.add("first", () => order.push("first"));
    releasers.add("rejects", () => Promise.reject(new Error("boom")));
    releasers.add("throws", () => {
      throw new Error("sync boom");
    });
    releasers.add("last", () => order.push("last"));
    await expect(releasers.closeAll()).resolves.toBeUndefined();
    expect(order).toEqual(["last", "first"]);
    const failed = lines().filter((l) => l.level === 50);
    expect(failed.map((l) => l.step)).toEqual(["throws", "rejects"]);
    expect(failed.map((l) => (l.err as { message: string }).message)).toEqual(["sync boom", "boom"]);
  });

  it("is idempotent: a second call returns the same promise and closes nothing twice", async () => {
    const releasers = createReleasers();
    const calls: string[] = [];
    releasers.add("a", () => calls.push("a"));
    releasers.add("b", async () => {
      await new Promise((r) => setTimeout(r, 10));
      calls.push("b");
    });
    const first = releasers.closeAll();
    const second = releasers.closeAll();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    expect(releasers.closeAll()).toBe(first);
    await releasers.closeAll();
    expect(calls).toEqual(["b", "a"]);
  });

  it("closes a resource registered after closing started once the rest is closed", async () => {
    const releasers = createReleasers();
    const calls: string[] = [];
    releasers.add("a", () => calls.push("a"));
    const closing = releasers.closeAll();
    releasers.add("late", () => calls.push("late"));
    await closing;
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual(["a", "late"]);
  });
});
