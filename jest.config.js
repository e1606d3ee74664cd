// ESM + TypeScript through @swc/jest (see ../shared/design/toolchain.md): run with
// NODE_OPTIONS=--experimental-vm-modules (the npm scripts do).
/** @type {import('jest').Config} */
export default {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  transform: {
    "^.+\\.ts$": [
      "@swc/jest",
      { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "es6" } },
    ],
  },
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  globalSetup: "<rootDir>/test/support/global-setup.mjs",
  globalTeardown: "<rootDir>/test/support/global-teardown.mjs",
  reporters: ["default", "<rootDir>/test/support/summary-reporter.cjs"],
  maxWorkers: 2,
  testTimeout: 60_000,
};
