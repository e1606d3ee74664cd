import { type CachedToken, createTokenCache } from "../../src/ondemand/token-cache.js";

const T0 = new Date("2030-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const token = (userUlid: string, expiresInMs = 3_600_000, over: Partial<CachedToken> = {}): CachedToken => ({
  userUlid,
  accessToken: `at_${userUlid}`,
  accessTokenExpiresAt: at(expiresInMs),
  refreshTokenExpiresAt: null,
  status: "ACTIVE",
  ...over,
});
const cache = (over = {}) => createTokenCache({ ttlMs: 30_000, bufferMs: 120_000, maxEntries: 3, ...over });

describe("the in-process token cache", () => {
  it("serves a token for its TTL, then no more", () => {
    const c = cache();
    c.set(token("A"), T0);
    expect(c.get("A", at(29_999))?.accessToken).toBe("at_A");
    expect(c.get("A", at(30_000))).toBeUndefined();
  });

  it("never serves a token inside the on-demand buffer of its expiry, whatever the TTL", () => {
    const c = cache({ ttlMs: 600_000 });
    c.set(token("A", 200_000), T0);
    expect(c.get("A", at(79_999))?.accessToken).toBe("at_A");
    expect(c.get("A", at(80_000))).toBeUndefined();
    expect(c.getForOutage("A", at(80_000))).toBeUndefined();
  });

  it("a TTL of 0 caches nothing; a non-ACTIVE token is never cached", () => {
    const off = cache({ ttlMs: 0 });
    off.set(token("A"), T0);
    expect(off.get("A", T0)).toBeUndefined();
    const c = cache();
    c.set(token("B", 3_600_000, { status: "RECONNECT_REQUIRED" }), T0);
    expect(c.get("B", T0)).toBeUndefined();
  });

  it("is bounded: the least recently used entry goes first", () => {
    const c = cache();
    for (const u of ["A", "B", "C"]) c.set(token(u), T0);
    expect(c.get("A", T0)).toBeDefined(); // A is now the most recent
    c.set(token("D"), T0);
    expect(c.size).toBe(3);
    expect(c.get("B", T0)).toBeUndefined();
    expect(["A", "C", "D"].every((u) => c.get(u, T0) !== undefined)).toBe(true);
  });

  it("a delete drops the entry, and a read that started before the delete cannot put it back", () => {
    const c = cache();
    c.set(token("A"), T0);
    c.delete("A", at(10));
    expect(c.get("A", at(11))).toBeUndefined();
    c.set(token("A"), at(12), at(5)); // read at 5 ms, before the invalidation at 10 ms
    expect(c.get("A", at(13))).toBeUndefined();
    c.set(token("A"), at(20), at(15)); // read after the invalidation
    expect(c.get("A", at(21))?.accessToken).toBe("at_A");
  });

  it("during an outage serves a remembered token past its TTL while it is still valid for the buffer", () => {
    const c = cache();
    c.set(token("A", 600_000), T0);
    expect(c.get("A", at(60_000))).toBeUndefined();
    expect(c.getForOutage("A", at(60_000))?.accessToken).toBe("at_A");
    expect(c.getForOutage("A", at(480_001))).toBeUndefined();
  });

  it("keeps its own copy: changing the object passed in changes nothing", () => {
    const c = cache();
    const t = token("A");
    c.set(t, T0);
    t.accessToken = "mutated";
    expect(c.get("A", T0)?.accessToken).toBe("at_A");
  });
});
