/**
 * The held-pair record: one envelope that authenticates every field; authentic records that make no
 * sense are refused too. Pure: a real cipher, no Redis.
 */
import { randomBytes } from "node:crypto";
import type { HeldPair } from "../../src/core/ports.js";
import { decodeHeldPair, encodeHeldPair } from "../../src/store/held-pair-record.js";
import { createTokenCipher } from "../../src/store/token-cipher.js";

const USER = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
const OTHER = "01BX5ZZKBKACTAV9WEVGEMMVRZ";
const NOW = new Date("2030-01-01T12:00:00Z");
const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const cipher = createTokenCipher([{ id: "k1", key: randomBytes(32) }]);

const held = (over: Partial<HeldPair> = {}): HeldPair => ({
  userUlid: USER,
  expectedVersion: 3,
  heldSince: new Date(NOW.getTime() - MIN),
  nextRefreshAt: new Date(NOW.getTime() + 20 * MIN),
  trigger: "worker",
  pair: {
    accessToken: "cal_at_record_test",
    refreshToken: "cal_rt_record_test",
    accessTokenExpiresAt: new Date(NOW.getTime() + 30 * MIN),
    refreshTokenExpiresAt: new Date(NOW.getTime() + 365 * DAY),
  },
  ...over,
});

/** The plaintext of a good record with `over` applied, encrypted as a held pair for `user`. */
function forged(over: Record<string, unknown>, user = USER): string {
  const plain = JSON.parse(cipher.decrypt(encodeHeldPair(cipher, held()), USER, "held_pair")) as Record<string, unknown>;
  return cipher.encrypt(JSON.stringify({ ...plain, ...over }), user, "held_pair");
}

const reason = (raw: string, user = USER) => {
  const d = decodeHeldPair(cipher, user, raw, NOW);
  return d.ok ? "accepted" : d.reason;
};

it("round-trips every field, and the stored value is one envelope with nothing readable outside it", () => {
  const raw = encodeHeldPair(cipher, held({ userUlid: USER.toLowerCase() }));
  expect(raw).toMatch(/^v2\.k1\.[A-Za-z0-9_.-]+$/);
  for (const visible of ["cal_at_", "cal_rt_", "expectedVersion", "worker", "{"]) expect(raw).not.toContain(visible);
  const d = decodeHeldPair(cipher, USER.toLowerCase(), raw, NOW);
  expect(d).toEqual({ ok: true, held: { ...held(), raw } });
});

it.each([
  ["an idle OAuth2 grant's keep-alive, weeks out", 27 * DAY],
  ["an idle managed user parked for the longest PARK_SECONDS (365 days)", 365 * DAY],
])("accepts the next refresh time of a pair rotated for %s: refusing it would quarantine the only copy", (_what, aheadMs) => {
  const raw = encodeHeldPair(cipher, held({ nextRefreshAt: new Date(NOW.getTime() + aheadMs) }));
  expect(decodeHeldPair(cipher, USER, raw, NOW)).toMatchObject({ ok: true, held: { nextRefreshAt: new Date(NOW.getTime() + aheadMs) } });
});

it("keeps a null refresh expiry", () => {
  const h = held();
  const raw = encodeHeldPair(cipher, { ...h, pair: { ...h.pair, refreshTokenExpiresAt: null } });
  expect(decodeHeldPair(cipher, USER, raw, NOW)).toMatchObject({ ok: true, held: { pair: { refreshTokenExpiresAt: null } } });
});

it("refuses a record of another user, an edited byte, a token envelope from a row and a v1 envelope", () => {
  const raw = encodeHeldPair(cipher, held());
  expect(reason(raw, OTHER)).toMatch(/authentication failed/);
  const parts = raw.split(".");
  const ct = Buffer.from(parts[4]!, "base64url");
  ct[3] = ct[3]! ^ 0x20;
  parts[4] = ct.toString("base64url");
  expect(reason(parts.join("."))).toMatch(/authentication failed/);
  expect(reason(cipher.encrypt(JSON.stringify({ any: 1 }), USER, "access_token"))).toMatch(/authentication failed/);
  expect(reason("v1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA")).toMatch(/v1 envelope is not accepted/);
});

it("refuses the previous release's plain-JSON record and plain garbage, without echoing them", () => {
  const legacy = JSON.stringify({ v: 1, expectedVersion: 1, nextRefreshAt: 4102444800000, at: "v1.k1.x", rt: "v1.k1.y" });
  expect(reason(legacy)).toBe("token decrypt failed: not an envelope");
  expect(reason("cal_rt_plaintext_secret")).toBe("token decrypt failed: not an envelope");
});

it.each([
  ["nextRefreshAt years away", { nra: Date.parse("2099-01-01T00:00:00Z") }, /nextRefreshAt/],
  ["a negative version", { ev: -1 }, /expectedVersion/],
  ["version 0", { ev: 0 }, /expectedVersion/],
  ["a fractional version", { ev: 1.5 }, /expectedVersion/],
  ["a version past INTEGER", { ev: 2 ** 31 }, /expectedVersion/],
  ["a version as a string", { ev: "3" }, /expectedVersion/],
  ["heldSince in the future", { hs: NOW.getTime() + 2 * DAY }, /heldSince/],
  ["heldSince older than any record lives", { hs: NOW.getTime() - 9 * DAY }, /heldSince/],
  ["an access expiry a week ahead", { ate: NOW.getTime() + 7 * DAY }, /accessTokenExpiresAt/],
  ["an access expiry that is not a time", { ate: "soon" }, /accessTokenExpiresAt/],
  ["a refresh expiry in 2099", { rte: Date.parse("2099-01-01T00:00:00Z") }, /refreshTokenExpiresAt/],
  ["an unknown trigger shape", { trg: "x".repeat(100) }, /trigger/],
  ["an empty access token", { at: "" }, /tokens/],
  ["a huge refresh token", { rt: "r".repeat(17 * 1024) }, /tokens/],
  ["another user inside", { u: OTHER }, /user/],
  ["another record type", { t: "access_token" }, /record type/],
])("refuses an authentic record with %s", (_name, over, why) => {
  expect(reason(forged(over))).toMatch(/^authentic but implausible: /);
  expect(reason(forged(over))).toMatch(why);
});

it("refuses authentic plaintext that is not a JSON object", () => {
  expect(reason(cipher.encrypt("not json", USER, "held_pair"))).toBe("authentic but not JSON");
  expect(reason(cipher.encrypt("[1,2]", USER, "held_pair"))).toMatch(/not an object/);
});
