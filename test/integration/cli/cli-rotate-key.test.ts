/**
 * `cal-tokens rotate-key`: rows written with key A are re-encrypted with B (the new first key) by a
 * compare-and-swap that keeps `version`; leased rows are skipped and reported; tokens stay readable.
 */
import { ulid } from "ulid";
import { captureIo } from "../../../src/cli/io.js";
import { runCli } from "../../../src/cli/program.js";
import { findRowsOnOtherKeys, writeReencryptedEnvelopes } from "../../../src/store/key-rotation.js";
import { startHarness, type Harness } from "../../support/harness.js";
import { recordForSecretScan } from "../../support/log-sink.js";
import { uniquePrefix } from "../../support/worker-harness.js";

const KEY_A = `A:${Buffer.alloc(32, 1).toString("base64")}`;
const KEY_B = `B:${Buffer.alloc(32, 2).toString("base64")}`;
let h: Harness;
const secrets: string[] = [];

beforeAll(async () => {
  h = await startHarness({ ownDatabase: true, env: { QUEUE_PREFIX: uniquePrefix(), TOKEN_ENCRYPTION_KEYS: KEY_A } });
});
afterAll(async () => {
  await h.close();
});

async function cli(args: string[], keys: string, stdin?: string) {
  const io = captureIo({ env: h.env({ TOKEN_ENCRYPTION_KEYS: keys }), ...(stdin !== undefined ? { stdin } : {}) });
  const code = await runCli(args, { io });
  const res = { code, out: io.out(), err: io.err() };
  recordForSecretScan(res);
  for (const s of secrets) expect(`${res.out}${res.err}`).not.toContain(s);
  return res;
}

const envelopes = () =>
  h.db.calToken.findMany({
    select: { userUlid: true, accessTokenEnc: true, refreshTokenEnc: true, version: true },
    orderBy: { userUlid: "asc" },
  });

it("re-encrypts every row with the active key, skipping leased rows until they are free", async () => {
  const users = Array.from({ length: 5 }, () => {
    const u = h.fake.createManagedUser();
    secrets.push(u.accessToken, u.refreshToken);
    return { userUlid: ulid(), ...u };
  });
  const lines = users.map((u) =>
    JSON.stringify({
      userUlid: u.userUlid,
      accessToken: u.accessToken,
      refreshToken: u.refreshToken,
      accessTokenExpiresAt: u.accessTokenExpiresAt,
    }),
  );
  expect((await cli(["import", "-"], KEY_A, lines.join("\n"))).code).toBe(0);
  const before = await envelopes();
  expect(before.every((r) => r.accessTokenEnc.startsWith("v1.A.") && r.refreshTokenEnc.startsWith("v1.A."))).toBe(true);

  // A refresh in progress on one row: rotate-key must leave it alone and say so.
  const leased = users[2]!.userUlid;
  await h.db.calToken.update({ where: { userUlid: leased }, data: { leaseOwner: "someone", leaseUntil: new Date(Date.now() + 60_000) } });
  const first = await cli(["rotate-key", "--batch-size", "2"], `${KEY_B},${KEY_A}`);
  expect(first.code).toBe(1);
  expect(first.out).toContain("re-encrypted 4, skipped (leased) 1");
  expect(first.out).toContain("rows still on other keys: 1");
  expect(first.err).toContain(leased);

  await h.db.calToken.update({ where: { userUlid: leased }, data: { leaseOwner: null, leaseUntil: null } });
  const second = await cli(["rotate-key"], `${KEY_B},${KEY_A}`);
  expect(second).toMatchObject({ code: 0, out: expect.stringContaining("re-encrypted 1,") });
  expect(second.out).toContain("rows still on other keys: 0");

  const after = await envelopes();
  expect(after.every((r) => r.accessTokenEnc.startsWith("v1.B.") && r.refreshTokenEnc.startsWith("v1.B."))).toBe(true);
  expect(after.map((r) => r.version)).toEqual(before.map((r) => r.version)); // not a new pair

  // Readable with the new key list, and with B alone (so nothing is left on A).
  for (const keys of [`${KEY_B},${KEY_A}`, KEY_B]) {
    const client = h.newClient({ TOKEN_ENCRYPTION_KEYS: keys });
    for (const u of users) {
      const res = await client.ensureValidCalToken(u.userUlid);
      expect(res).toMatchObject({ success: true, refreshed: false });
      expect(res.tokenInfo?.accessToken === u.accessToken).toBe(true);
    }
  }
  // Nothing left to do: a rerun is a no-op.
  expect(await cli(["rotate-key"], `${KEY_B},${KEY_A}`)).toMatchObject({ code: 0, out: expect.stringContaining("re-encrypted 0,") });
});

it("a row no configured key can decrypt is reported and fails the run", async () => {
  const res = await cli(["rotate-key"], `C:${Buffer.alloc(32, 3).toString("base64")}`);
  expect(res.code).toBe(1);
  expect(res.out).toMatch(/failed [1-9]/);
  expect(res.err).toContain("could not be decrypted");
});

it("the swap is a compare-and-swap: a row rewritten since it was read is left alone", async () => {
  const [row] = await findRowsOnOtherKeys(h.db, { prefix: "v1.Z.", after: "", limit: 1, now: new Date() });
  expect(row).toBeDefined();
  await h.db.calToken.update({ where: { userUlid: row!.userUlid }, data: { version: { increment: 1 } } });
  expect(await writeReencryptedEnvelopes(h.db, { row: row!, accessEnc: "v1.Z.x", refreshEnc: "v1.Z.y", now: new Date() })).toBe(false);
  const fresh = (await findRowsOnOtherKeys(h.db, { prefix: "v1.Z.", after: "", limit: 1, now: new Date() }))[0]!;
  await h.db.calToken.update({ where: { userUlid: fresh.userUlid }, data: { leaseOwner: "w", leaseUntil: new Date(Date.now() + 60_000) } });
  expect(await writeReencryptedEnvelopes(h.db, { row: fresh, accessEnc: "v1.Z.x", refreshEnc: "v1.Z.y", now: new Date() })).toBe(false);
  expect((await h.db.calToken.findUniqueOrThrow({ where: { userUlid: fresh.userUlid } })).accessTokenEnc.startsWith("v1.B.")).toBe(true);
});
