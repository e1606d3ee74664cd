/**
 * The contract between bench/run.ts and the benchmark sections. A section is pluggable: add an
 * object to the array in bench/sections.ts and `npm run bench` runs it (or `--only <name>`).
 *
 * Every figure a section reports should be a ratio or a difference against a baseline measured in
 * the same run (interleaved with the measured calls), never an absolute number on its own: the
 * machine is shared and noisy, so only relative figures are comparable between runs.
 */
import type { Logger } from "../../src/log/logger.js";
import type { CalTokenClient, CalTokenClientOptions } from "../../src/wiring/cal-token-client.js";
import type { PrismaClient } from "../../src/store/prisma.js";
import type { FakeCalcom } from "../../test/fakes/calcom/index.js";

/** A goal is informational only: a MISS is printed, the exit code stays 0. */
export interface Goal {
  op: "<=" | ">=";
  target: number;
}

export interface Row {
  /** Short label, e.g. "ratio of medians (ensure / findUnique)". */
  metric: string;
  value: number;
  /** "ms", "µs", "×", "%", "" … (formatting picks the precision from it). */
  unit: string;
  goal?: Goal;
  /** How it was measured / what it is compared with (one short line). */
  detail?: string;
}

export interface Section {
  /** Used by `--only`; lower-case, no spaces. */
  name: string;
  title: string;
  /** The goal in words, printed above the table. */
  goal: string;
  run(ctx: BenchContext): Promise<Row[]>;
}

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  node: string;
  platform: string;
  postgres: string;
  /** fsync / synchronous_commit: they decide what a committed write costs. */
  pgDurability: string;
}

export interface BenchContext {
  /** The run's own database (`bench_<pid>`), migrated, dropped at the end of the run. */
  databaseUrl: string;
  /** Redis for BullMQ (default redis://127.0.0.1:6379, BENCH_REDIS_URL overrides). */
  redisUrl: string;
  /**
   * The run's BullMQ prefix (`ctwbench<pid>`, also QUEUE_PREFIX in `env()`); every key under it is
   * deleted at the end of the run. Sections that need a clean queue append their own suffix.
   */
  queuePrefix: string;
  /** The in-process fake Cal.com (rate limiting off). Shared by every section. */
  fake: FakeCalcom;
  /** Silent logger: the benchmarks measure the code, not pino's I/O. */
  logger: Logger;
  machine: MachineInfo;
  /** A complete client environment pointing at the run's database and the fake; overrides win. */
  env(overrides?: Record<string, string>): Record<string, string>;
  /** An on-demand client on the run's env; closed when the section ends. */
  createClient(options?: Partial<CalTokenClientOptions>): CalTokenClient;
  /** A Prisma client on the run's database; disconnected when the section ends. */
  createPrisma(poolSize: number): PrismaClient;
  /**
   * Seeds `count` managed users in the fake and stores their tokens through `client`
   * (saveCalTokens, a few in parallel). Returns the user ULIDs in creation order.
   */
  seedManagedUsers(client: CalTokenClient, count: number, opts?: { accessTokenTtlMs?: number }): Promise<string[]>;
  /** Runs at the end of the section (reverse order), also when it throws. */
  defer(fn: () => unknown): void;
  /** A line for the section's notes (printed under its table). */
  note(text: string): void;
  /** Progress on stderr, so stdout stays the report. */
  progress(text: string): void;
}
