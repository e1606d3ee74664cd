// ESM + TypeScript through @swc/jest (see docs/testing.md#how-jest-runs-the-typescript):
// - package.json has "type": "module", so the tests run as ES modules; Jest's ESM support needs
//   NODE_OPTIONS=--experimental-vm-modules on Node 20 (the npm scripts set it).
// - @swc/jest strips the types and keeps `import`/`export` (module type es6); it does not type-check:
//   `npm run typecheck` does.
// - Sources import "./x.js" for x.ts (NodeNext); moduleNameMapper drops the ".js" so Jest finds the .ts file.
/** @type {import('jest').Config} */
export default {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  transform: {
    "^.+\\.ts$": ["@swc/jest", { jsc: { parser: { syntax: "typescript" }, target: "es2022" }, module: { type: "es6" } }],
  },
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  testMatch: ["<rootDir>/test/**/*.test.ts"],
  globalSetup: "<rootDir>/test/support/global-setup.mjs",
  globalTeardown: "<rootDir>/test/support/global-teardown.mjs",
  reporters: ["default", "<rootDir>/test/support/summary-reporter.cjs"],
  maxWorkers: 2,
  testTimeout: 60_000,
};
