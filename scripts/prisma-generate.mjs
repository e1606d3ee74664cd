#!/usr/bin/env node
// Runs `prisma generate`. On machines where Prisma could not download its schema-engine binary
// (no internet, install scripts not approved) the CLI refuses to start even though `generate`
// never uses that engine; pointing PRISMA_SCHEMA_ENGINE_BINARY at any existing file gets it past
// that check. With a real engine installed, nothing is overridden.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const enginesDir = path.join(root, "node_modules", "@prisma", "engines");
const hasEngine = existsSync(enginesDir) && readdirSync(enginesDir).some((f) => f.startsWith("schema-engine"));
const env = { ...process.env };
if (!hasEngine && !env.PRISMA_SCHEMA_ENGINE_BINARY) env.PRISMA_SCHEMA_ENGINE_BINARY = process.execPath;
const cli = path.join(root, "node_modules", "prisma", "build", "index.js");
if (!existsSync(cli)) {
  // Production installs without devDependencies: the client was generated at build time.
  process.exit(0);
}
const res = spawnSync(process.execPath, [cli, "generate"], { cwd: root, env, stdio: "inherit" });
process.exit(res.status ?? 1);
