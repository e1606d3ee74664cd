/** The fake Cal.com API v2 for tests: start it in-process, or run main.ts and drive it via /__fake/. */
export { startFakeCalcom } from "./server.js";
export { FAULTS, ODD_EXPIRY_FAULTS, STORM_STATUSES } from "./types.js";
export { s256 } from "./auth-codes.js";
export type {
  AuthorizationCodeOptions,
  AuthorizationCodeSeed,
  FakeCalcom,
  FakeCalcomOptions,
  FakeStats,
  TokenCallRecord,
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
