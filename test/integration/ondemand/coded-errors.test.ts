/**
 * Every failure of the public module is a coded result or a coded AppError, never a raw driver error:
 * a database that refuses connections, one that accepts them and never answers (request paths give up
 * within about 2 s), and a row no key can decrypt.
 */
import net from "node:net";
import { AppError } from "../../../src/core/errors.js";
import { startHarness, testDatabaseUrl, type Harness } from "../../support/harness.js";

let h: Harness;
let silent: net.Server;
let silentPort = 0;
const held = new Set<net.Socket>();
beforeAll(async () => {
  h = await startHarness();
  // Accepts TCP connections and never says a word: a database behind a dead network path.
  silent = net.createServer((socket) => {
    held.add(socket);
    socket.on("close", () => held.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as net.AddressInfo).port;
});
afterAll(async () => {
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => silent.close(() => resolve()));
  await h.close();
});

const at = (port: number) => {
  const u = new URL(testDatabaseUrl());
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
};

const pair = (userUlid: string) => ({
  userUlid,
  accessToken: "at-coded-errors-test",
  refreshToken: "rt-coded-errors-test",
  accessTokenExpiresAt: Date.now() + 3_600_000,
  calUserId: 7,
});

describe.each([
  ["refuses connections", () => at(1)],
  ["accepts connections and never answers", () => at(silentPort)],
])("a database that %s", (_name, url) => {
  it("saveCalTokens and getCalTokenStatus throw AppError store.unavailable, with no driver detail", async () => {
    const client = h.newClient({ DATABASE_URL: url() });
    const u = await h.seedManaged();
    for (const call of [() => client.saveCalTokens(pair(u.userUlid)), () => client.getCalTokenStatus(u.userUlid)]) {
      const started = Date.now();
      const err = await call().then(
        () => null,
        (e: unknown) => e,
      );
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ code: "store.unavailable", retryable: true });
      const text = `${(err as Error).message} ${JSON.stringify(err)}`;
      expect(text).not.toMatch(/P\d{4}|ECONNREFUSED|timeout exceeded|127\.0\.0\.1|prisma/i);
      expect((err as Error).cause).toBeUndefined();
    }
  });

  it("ensureValidCalToken answers store.unavailable within about 2 s", async () => {
    const client = h.newClient({ DATABASE_URL: url() });
    const u = await h.seedManaged();
    const started = Date.now();
    const res = await client.ensureValidCalToken(u.userUlid);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(res).toEqual({
      success: false,
      refreshed: false,
      error: expect.objectContaining({ code: "store.unavailable", retryable: true }),
    });
  });
});

it("ensureValidCalToken reports a row no key can decrypt as token.decrypt_failed", async () => {
  const u = await h.seedManaged();
  const other = `other:${Buffer.alloc(32, 7).toString("base64")}`;
  const client = h.newClient({ TOKEN_ENCRYPTION_KEYS: other });
  await h.db.calToken.update({ where: { userUlid: u.userUlid }, data: { accessTokenExpiresAt: new Date(Date.now() - 1_000) } });
  const ensured = await client.ensureValidCalToken(u.userUlid);
  expect(ensured.error).toMatchObject({ code: "token.decrypt_failed", retryable: false });
});
