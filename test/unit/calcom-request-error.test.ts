import type { CalRefreshResult } from "../../src/core/calcom-result.js";
import { classifyRequestError } from "../../src/calcom/index.js";

function expectKind<K extends CalRefreshResult["kind"]>(r: CalRefreshResult, kind: K): Extract<CalRefreshResult, { kind: K }> {
  expect(r.kind).toBe(kind);
  return r as Extract<CalRefreshResult, { kind: K }>;
}

describe("classifyRequestError", () => {
  const err = (name: string, code: string, extra: Record<string, unknown> = {}): Error =>
    Object.assign(new Error(`boom ${code} refresh_token=secret-rt`), { name, code }, extra);

  it("got TimeoutError after connecting → transient timeout, mayHaveRotated", () => {
    const r = classifyRequestError(err("TimeoutError", "ETIMEDOUT", { timings: { connect: 1 } }));
    expect(r).toMatchObject({ kind: "transient", reason: "timeout", status: null, mayHaveRotated: true });
  });
  it("a timeout with no timings is assumed sent", () => {
    expect(classifyRequestError(err("TimeoutError", "ETIMEDOUT"))).toMatchObject({ reason: "timeout", mayHaveRotated: true });
  });
  it("a timeout before the TCP connection existed → not rotated", () => {
    expect(classifyRequestError(err("TimeoutError", "ETIMEDOUT", { timings: { connect: undefined } }))).toMatchObject({
      reason: "timeout",
      mayHaveRotated: false,
    });
  });
  it.each(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"])("%s → transient network, never sent", (code) => {
    expect(classifyRequestError(err("RequestError", code))).toMatchObject({ kind: "transient", reason: "network", mayHaveRotated: false });
  });
  it.each(["ECONNRESET", "EPIPE", "ERR_GOT_REQUEST_ERROR"])("%s after connecting → transient network, mayHaveRotated", (code) => {
    expect(classifyRequestError(err("RequestError", code, { timings: { connect: 1 } }))).toMatchObject({
      reason: "network",
      mayHaveRotated: true,
    });
  });
  it("a body read failure after 2xx headers keeps the status", () => {
    const r = classifyRequestError(err("ReadError", "ECONNRESET", { response: { statusCode: 200 }, timings: { connect: 1 } }));
    expect(r).toMatchObject({ reason: "network", status: 200, mayHaveRotated: true });
  });
  it("unknown throwables → network, mayHaveRotated", () => {
    expect(classifyRequestError("weird")).toMatchObject({ kind: "transient", reason: "network", mayHaveRotated: true });
  });
  it("messages never copy the error message (it may hold request data)", () => {
    const r = expectKind(classifyRequestError(err("RequestError", "ECONNRESET")), "transient");
    expect(r.message).not.toContain("secret-rt");
    expect(r.message).toContain("ECONNRESET");
  });
});
