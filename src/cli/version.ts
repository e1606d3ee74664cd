/**
 * The package's version for `cal-tokens --version`, read from package.json next to this module at
 * run time: from src/cli (tsx) it is two directories up, from dist/src/cli (built, or installed
 * under node_modules) three. Not a JSON import: the build's rootDir and `files` would differ.
 */
import { readFileSync } from "node:fs";
import path from "node:path";

const PACKAGE_NAME = "cal-token-worker";

export function packageVersion(dir: string = import.meta.dirname): string {
  for (const rel of ["../..", "../../.."]) {
    try {
      const pkg = JSON.parse(readFileSync(path.resolve(dir, rel, "package.json"), "utf8")) as { name?: unknown; version?: unknown };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === "string") return pkg.version;
    } catch {
      // not there (or not ours): try the next level
    }
  }
  return "unknown";
}
