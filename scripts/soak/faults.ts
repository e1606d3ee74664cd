/**
 * The fault switches the soak drives.
 * - Continuous: for every token call the fake has counted since the last look (every 20 ms), queue a
 *   5xx (before anything is rotated) with probability `errorRate`, or a drop after the rotation
 *   committed with probability `dropRate`, through `faults.next`. Queued faults apply to the next
 *   token calls, so the shares hold over the run.
 * - The 429 storm: `faults.always("rateLimit")` for its duration (soak.ts).
 * - Cal.com unreachable: `fake.setReachable(false)` (soak.ts): every connection closed, calls in flight
 *   included, and every new one closed as soon as it is accepted.
 * - Postgres refusing connections: a TCP proxy in front of it (test/support/tcp-proxy.ts), cut and
 *   restored (soak.ts). No process is restarted for any of these.
 */
import type { FakeCalcom, Fault } from "../../test/fakes/calcom/index.js";

const FIVE_XX: Fault[] = ["status500", "status503", "html502"];

export function tokenCalls(fake: FakeCalcom): number {
  const c = fake.stats().calls;
  return (c["managed.refresh"] ?? 0) + (c["managed.forceRefresh"] ?? 0) + (c["oauth2.token"] ?? 0);
}

export interface Injector {
  injected: { fiveXx: number; drops: number };
  stop(): void;
}

export function startInjector(fake: FakeCalcom, opts: { errorRate: number; dropRate: number; rand?: () => number }): Injector {
  const rand = opts.rand ?? Math.random;
  const injected = { fiveXx: 0, drops: 0 };
  let seen = tokenCalls(fake);
  const timer = setInterval(() => {
    const now = tokenCalls(fake);
    for (let i = seen; i < now; i++) {
      const r = rand();
      if (r < opts.errorRate) {
        fake.faults.next(FIVE_XX[Math.floor(rand() * FIVE_XX.length)] as Fault);
        injected.fiveXx += 1;
      } else if (r < opts.errorRate + opts.dropRate) {
        fake.faults.next("dropAfterCommit");
        injected.drops += 1;
      }
    }
    seen = now;
  }, 20);
  return {
    injected,
    stop() {
      clearInterval(timer);
    },
  };
}
