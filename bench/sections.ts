/**
 * Every benchmark section, in run order. To add one, export a `Section` from its own file (see
 * bench/ondemand/ and bench/worker/) and list it here; bench/run.ts needs no change.
 */
import type { Section } from "./lib/types.js";
import { cacheStalenessSection } from "./ondemand/cache-staleness.js";
import { hotPathSection } from "./ondemand/hot-path.js";
import { inlineRefreshSection } from "./ondemand/inline-refresh.js";
import { proactiveVsReactiveSection } from "./worker/proactive.js";
import { queuedVsInlineSection } from "./worker/queued-vs-inline.js";
import { redisMemorySection } from "./worker/redis-memory.js";
import { sweepScalingSection } from "./worker/sweep-scaling.js";
import { workerThroughputSection } from "./worker/throughput.js";

export const sections: Section[] = [
  // on-demand module
  hotPathSection,
  cacheStalenessSection,
  inlineRefreshSection,
  // background worker
  proactiveVsReactiveSection,
  workerThroughputSection,
  sweepScalingSection,
  queuedVsInlineSection,
  redisMemorySection,
];
