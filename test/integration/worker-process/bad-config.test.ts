/** A bad configuration stops each process at start with every problem listed and exit code 2. */
import { spawnSync } from "node:child_process";
import path from "node:path";

const MAIN = path.resolve(import.meta.dirname, "../../../src/main");

it.each(["worker.ts", "web.ts", "release.ts"])("%s refuses to start on a bad environment", (entry) => {
  const res = spawnSync(process.execPath, ["--import", "tsx", path.join(MAIN, entry)], {
    env: { PATH: process.env.PATH ?? "", DATABASE_URL: "mysql://nope", TOKEN_ENCRYPTION_KEYS: "k1:dG9vLXNob3J0", WORKER_CONCURRENCY: "0" },
    encoding: "utf8",
    timeout: 30_000,
  });
  expect(res.status).toBe(2);
  for (const name of ["DATABASE_URL", "CAL_CLIENT_ID", "CAL_CLIENT_SECRET", "TOKEN_ENCRYPTION_KEYS", "WORKER_CONCURRENCY"]) {
    expect(res.stderr).toContain(name);
  }
  expect(res.stderr).not.toContain("dG9vLXNob3J0");
  expect(res.stdout).toBe("");
});
