/**
 * Every benchmark section, in run order. To add one (e.g. the worker benchmarks), export a
 * `Section[]` from its own file and spread it in here; bench/run.ts needs no change.
 */
import type { Section } from "./lib/types.js";
import { onDemandSections } from "./ondemand.js";
import { workerSections } from "./worker.js";

export const sections: Section[] = [...onDemandSections, ...workerSections];
