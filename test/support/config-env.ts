/** The smallest environments `loadConfig` accepts, and a way to read its refusal, for the config tests. */
import { expect } from "@jest/globals";
import { loadConfig } from "../../src/config/config.js";
import { ConfigError } from "../../src/core/errors.js";

/** A database and an encryption key: everything but a Cal.com client. */
export const BASE_ENV = {
  DATABASE_URL: "postgresql://postgres@127.0.0.1:5432/x",
  TOKEN_ENCRYPTION_KEYS: `k1:${Buffer.alloc(32, 7).toString("base64")}`,
};

/** BASE_ENV with the platform client: a complete configuration. */
export const MINIMAL_ENV = { ...BASE_ENV, CAL_CLIENT_ID: "client", CAL_CLIENT_SECRET: "super-secret-value" };

/** The problems `loadConfig` lists for `env`; fails the test if it accepts it. */
export function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
}
