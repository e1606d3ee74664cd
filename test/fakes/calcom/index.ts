/** The fake Cal.com API v2 for tests: start it in-process, or run main.ts and drive it via /__fake/. */
export { startFakeCalcom } from "./server.js";
export { FAULTS, ODD_EXPIRY_FAULTS, STORM_STATUSES } from "./types.js";
export type {
  FakeCalcom,
  FakeCalcomOptions,
  FakeStats,
  Fault,
  FaultSwitches,
  ManagedUserSeed,
  OAuth2GrantSeed,
  OddExpiryFault,
  RateLimitConfig,
  SeedOptions,
  StormOptions,
  StormStatus,
} from "./types.js";
