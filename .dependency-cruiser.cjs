// Layering rules for src/ and jobs/ (the layers are described in docs/architecture.md). Run by `npm run lint` (and so by `npm test`):
//   depcruise src jobs --config .dependency-cruiser.cjs
//
// Layers, top to bottom: src/main (process entry points) > src/cli, src/wiring, src/index.ts >
// everything else (the library: jobs/, src/ondemand, refresh, queue, events, http, metrics, store,
// calcom, config, log) > src/core (pure). Nothing below the wiring line imports src/wiring or src/main.
//
// Parser: swc (@swc/core is already a devDependency). dependency-cruiser's `tsc` parser needs the
// `typescript` JavaScript API (supported range <7); TypeScript 7's native `tsc` has none, and the
// `acorn` parser would need TypeScript to transpile .ts first. The swc parser does not tell
// `import type` from a value import, so every rule below applies to type-only imports too.
// Imports are written "./x.js" for x.ts (nodenext); dependency-cruiser retries a ".js" specifier
// that does not resolve as ".ts", so no tsConfig (which would also need the typescript API) is read.

/** Library layers: everything below the wiring line. */
const LIBRARY = "^(src/(ondemand|refresh|store|calcom|queue|fleet|events|http|metrics|core|config|log)|jobs)/";
const OURS = "^(src|jobs)/";

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-main-imports",
      severity: "error",
      comment:
        "src/main holds process entry points only; nothing in src/ or jobs/ outside src/main imports it (shared assembly lives in src/wiring).",
      from: { path: OURS, pathNot: "^src/main/" },
      to: { path: "^src/main/" },
    },
    {
      name: "library-not-above-wiring",
      severity: "error",
      comment:
        "The library (jobs/ and src/ below the wiring line) must not import src/wiring or src/main: composition roots import the library, never the other way round.",
      from: { path: LIBRARY },
      to: { path: "^src/(wiring|main)/" },
    },
    {
      name: "core-is-pure",
      severity: "error",
      comment: "src/core is pure: it imports only src/core (nothing else of ours).",
      from: { path: "^src/core/" },
      to: { dependencyTypes: ["local"], pathNot: "^src/core/" },
    },
    {
      name: "core-no-io",
      severity: "error",
      comment:
        "src/core is pure: no node builtins (I/O, clocks, crypto) and no npm packages; take such things through a port in src/core/ports.ts.",
      from: { path: "^src/core/" },
      to: { dependencyTypes: ["core", "npm", "npm-dev", "npm-optional", "npm-peer", "npm-bundled", "npm-no-pkg", "npm-unknown"] },
    },
    {
      name: "src-not-tests",
      severity: "error",
      comment: "Shipped code (src/, jobs/) never imports test/, bench/ or scripts/.",
      from: { path: OURS },
      to: { path: "^(test|bench|scripts)/" },
    },
    {
      name: "no-circular",
      severity: "error",
      comment: "No import cycles within src/ and jobs/ (type-only imports count: the swc parser cannot tell them apart).",
      from: { path: OURS },
      to: { path: OURS, circular: true },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      comment: "A relative import in src/ or jobs/ that resolves to no file (write './x.js' for x.ts).",
      from: { path: OURS },
      to: { path: "^\\.{1,2}/", couldNotResolve: true },
    },
  ],
  options: {
    parser: "swc",
    // Do not descend into packages or the Prisma client that `npm run generate` writes.
    doNotFollow: { path: ["node_modules", "^src/generated/"] },
    moduleSystems: ["es6", "cjs"],
    enhancedResolveOptions: {
      extensions: [".ts", ".js", ".mjs", ".cjs", ".d.ts", ".json"],
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
      mainFields: ["module", "main", "types", "typings"],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
