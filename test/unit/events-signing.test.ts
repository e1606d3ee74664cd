import { signPayload, verifySignature } from "../../src/events/signing.js";

// The webhook signature contract the web app verifies against (src/events/signing.ts).

const SECRET = "whsec_test_0123456789abcdef";
const BODY = JSON.stringify({ id: "01J00000000000000000000000", type: "token.recovered", data: { kind: "managed" } });
const T = 1_900_000_000;

describe("webhook signing", () => {
  it("produces t=<ts>,v1=<64 hex> and verifies its own output", () => {
    const header = signPayload(SECRET, T, BODY);
    expect(header).toMatch(/^t=1900000000,v1=[0-9a-f]{64}$/);
    expect(verifySignature(SECRET, header, BODY, T)).toBe(true);
  });

  it("is the HMAC-SHA256 of `<t>.<body>` (documented for the web app)", async () => {
    const { createHmac } = await import("node:crypto");
    const mac = createHmac("sha256", SECRET).update(`${T}.${BODY}`).digest("hex");
    expect(signPayload(SECRET, T, BODY)).toBe(`t=${T},v1=${mac}`);
  });

  it("rejects a tampered body", () => {
    const header = signPayload(SECRET, T, BODY);
    expect(verifySignature(SECRET, header, BODY.replace("recovered", "reconnect_required"), T)).toBe(false);
    expect(verifySignature(SECRET, header, `${BODY} `, T)).toBe(false);
  });

  it("rejects a tampered timestamp (the timestamp is inside the MAC)", () => {
    const header = signPayload(SECRET, T, BODY).replace(`t=${T}`, `t=${T + 60}`);
    expect(verifySignature(SECRET, header, BODY, T + 60)).toBe(false);
  });

  it("rejects the wrong secret", () => {
    expect(verifySignature("another-secret-entirely", signPayload(SECRET, T, BODY), BODY, T)).toBe(false);
  });

  it("rejects stale and far-future timestamps, accepts the tolerance boundary", () => {
    const header = signPayload(SECRET, T, BODY);
    expect(verifySignature(SECRET, header, BODY, T + 300)).toBe(true);
    expect(verifySignature(SECRET, header, BODY, T + 301)).toBe(false);
    expect(verifySignature(SECRET, header, BODY, T - 301)).toBe(false);
    expect(verifySignature(SECRET, header, BODY, T + 3600, 3600)).toBe(true);
  });

  it("accepts any matching v1 among several (secret rotation)", () => {
    const good = signPayload(SECRET, T, BODY).split(",")[1]!;
    const other = signPayload("old-secret-0123456789", T, BODY).split(",")[1]!;
    expect(verifySignature(SECRET, `t=${T},${other},${good}`, BODY, T)).toBe(true);
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["no timestamp", `v1=${"a".repeat(64)}`],
    ["no mac", `t=${T}`],
    ["short mac", `t=${T},v1=abcd`],
    ["non-numeric timestamp", `t=soon,v1=${"a".repeat(64)}`],
    ["garbage", "definitely not a signature"],
  ])("rejects a malformed header (%s) without throwing", (_label, header) => {
    expect(verifySignature(SECRET, header, BODY, T)).toBe(false);
  });
});
