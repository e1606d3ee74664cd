/** `cal-tokens --version`: read from package.json next to the module, from the sources or a build. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { captureIo } from "../../src/cli/io.js";
import { runCli } from "../../src/cli/program.js";
import { packageVersion } from "../../src/cli/version.js";

const pkg = JSON.parse(readFileSync(path.resolve(import.meta.dirname, "../../package.json"), "utf8")) as { version: string };

it("--version and -V print the package version and exit 0", async () => {
  for (const flag of ["--version", "-V"]) {
    const io = captureIo({ env: {} });
    expect(await runCli([flag], { io })).toBe(0);
    expect(io.out()).toBe(`${pkg.version}\n`);
  }
});

it("finds package.json from src/cli (two up) and from dist/src/cli (three up), and only ours", () => {
  const root = mkdtempSync(path.join(tmpdir(), "cli-version-"));
  try {
    const built = path.join(root, "dist", "src", "cli");
    mkdirSync(built, { recursive: true });
    expect(packageVersion(built)).toBe("unknown");
    writeFileSync(path.join(root, "package.json"), JSON.stringify({ name: "cal-token-worker", version: "9.8.7" }));
    expect(packageVersion(built)).toBe("9.8.7");
    // A package.json of something else on the way up is not ours.
    writeFileSync(path.join(root, "dist", "package.json"), JSON.stringify({ name: "other", version: "1.0.0" }));
    expect(packageVersion(built)).toBe("9.8.7");
    expect(packageVersion(path.join(root, "src", "cli"))).toBe("9.8.7");
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
