#!/usr/bin/env node
/** Entry point of the `cal-tokens` bin (package.json). */
import { processIo } from "./io.js";
import { runCli } from "./program.js";

await runCli(process.argv.slice(2), { io: processIo() });
