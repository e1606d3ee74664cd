/**
 * The two kinds of Cal.com client, each configurable on its own (docs/oauth2.md#configuration): the
 * Platform client (managed users) and the OAuth 2.0 app (oauth2 users, confidential or public), at
 * least one of them, and never the one standing in for the other.
 */
import { loadConfig } from "../../src/config/config.js";
import { NO_CLIENT } from "../../src/config/schema.js";
import { storedKindProblems, unconfiguredKinds } from "../../src/wiring/client-check.js";
import { BASE_ENV, problemsOf } from "../support/config-env.js";

const base = BASE_ENV;
const PLATFORM = { CAL_CLIENT_ID: "platform-id", CAL_CLIENT_SECRET: "platform-secret-value" };
const OAUTH = { CAL_OAUTH_CLIENT_ID: "oauth-app-id", CAL_OAUTH_CLIENT_SECRET: "oauth-secret-value" };

describe("Cal.com clients", () => {
  it("an OAuth 2.0 app alone is a complete configuration", () => {
    const c = loadConfig({ ...base, ...OAUTH });
    expect(c.calcom.platform).toBeNull();
    expect(c.calcom.oauth2).toEqual({ clientId: "oauth-app-id", clientSecret: "oauth-secret-value" });
    expect(unconfiguredKinds(c)).toEqual(["managed"]);
  });

  it("an OAuth 2.0 app without a secret is a public client", () => {
    const c = loadConfig({ ...base, CAL_OAUTH_CLIENT_ID: "public-app" });
    expect(c.calcom.oauth2).toEqual({ clientId: "public-app", clientSecret: null });
  });

  it("a Platform client alone works as before, and is never used as the OAuth 2.0 app", () => {
    const c = loadConfig({ ...base, ...PLATFORM });
    expect(c.calcom.platform).toEqual({ clientId: "platform-id", clientSecret: "platform-secret-value" });
    expect(c.calcom.oauth2).toBeNull();
    expect(unconfiguredKinds(c)).toEqual(["oauth2"]);
  });

  it("both kinds side by side", () => {
    const c = loadConfig({ ...base, ...PLATFORM, ...OAUTH });
    expect(c.calcom.platform?.clientId).toBe("platform-id");
    expect(c.calcom.oauth2?.clientId).toBe("oauth-app-id");
    expect(unconfiguredKinds(c)).toEqual([]);
  });

  it("no client at all is one problem naming both kinds", () => {
    expect(problemsOf(base)).toEqual([NO_CLIENT]);
    expect(NO_CLIENT).toMatch(/^CAL_OAUTH_CLIENT_ID or CAL_CLIENT_ID: required: /);
    for (const name of ["CAL_OAUTH_CLIENT_ID", "CAL_OAUTH_CLIENT_SECRET", "CAL_CLIENT_ID", "CAL_CLIENT_SECRET"]) {
      expect(NO_CLIENT).toContain(name);
    }
    // A copied .env.example leaves them empty: empty is unset.
    expect(problemsOf({ ...base, CAL_CLIENT_ID: "", CAL_CLIENT_SECRET: " ", CAL_OAUTH_CLIENT_ID: "" })).toEqual([NO_CLIENT]);
  });

  it.each([
    [{ CAL_CLIENT_ID: "platform-id" }, "CAL_CLIENT_SECRET: required when CAL_CLIENT_ID is set (the Platform client needs both)"],
    [
      { CAL_CLIENT_SECRET: "platform-secret-value" },
      "CAL_CLIENT_ID: required when CAL_CLIENT_SECRET is set (the Platform client needs both)",
    ],
    [{ CAL_OAUTH_CLIENT_SECRET: "oauth-secret-value" }, "CAL_OAUTH_CLIENT_ID: required when CAL_OAUTH_CLIENT_SECRET is set"],
    [{ ...OAUTH, CAL_CLIENT_ID: "platform-id" }, "CAL_CLIENT_SECRET: required when CAL_CLIENT_ID is set (the Platform client needs both)"],
  ])("a half-configured client is one clear line: %o", (env, line) => {
    expect(problemsOf({ ...base, ...env })).toEqual([line]);
  });

  it.each([
    ["CAL_CLIENT_ID", "an id with a space", "must be 1 to 256 visible ASCII characters without spaces"],
    ["CAL_OAUTH_CLIENT_ID", "x".repeat(257), "must be 1 to 256 visible ASCII characters without spaces"],
    ["CAL_CLIENT_SECRET", "sekrit\u0000value", "must be 1 to 4096 visible ASCII characters without spaces"],
    ["CAL_OAUTH_CLIENT_SECRET", "sekrit value", "must be 1 to 4096 visible ASCII characters without spaces"],
  ])("%s is checked for format, and never echoed", (name, value, rule) => {
    const env = { ...base, ...PLATFORM, ...OAUTH, [name]: value };
    const problems = problemsOf(env);
    expect(problems).toEqual([`${name}: ${rule}`]);
    expect(problems.join()).not.toContain(value.slice(0, 12));
  });

  it("surrounding whitespace is trimmed", () => {
    const c = loadConfig({ ...base, CAL_OAUTH_CLIENT_ID: "  oauth-app-id\n", CAL_OAUTH_CLIENT_SECRET: " s3cret-value " });
    expect(c.calcom.oauth2).toEqual({ clientId: "oauth-app-id", clientSecret: "s3cret-value" });
  });
});

describe("the boot check's lines", () => {
  it("names the missing variable, how many users need it, and where to read more", () => {
    expect(storedKindProblems(["managed"], { managed: 12, oauth2: 3 })).toEqual([
      "CAL_CLIENT_ID: required: 12 active managed users are stored, and only the Platform client (CAL_CLIENT_ID, CAL_CLIENT_SECRET) can refresh them (docs/oauth2.md#the-boot-check)",
    ]);
    expect(storedKindProblems(["oauth2"], { managed: 0, oauth2: 1 })).toEqual([
      expect.stringMatching(/^CAL_OAUTH_CLIENT_ID: required: 1 active oauth2 user is stored, .*the Platform client is no substitute/),
    ]);
  });

  it("is silent when no stored user needs the missing client", () => {
    expect(storedKindProblems(["managed"], { managed: 0, oauth2: 40 })).toEqual([]);
    expect(storedKindProblems(["oauth2"], { managed: 40, oauth2: 0 })).toEqual([]);
    expect(storedKindProblems([], { managed: 5, oauth2: 5 })).toEqual([]);
  });
});
