import { Writable } from "node:stream";
import { componentLogger, createLogger } from "../../src/log/logger.js";

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", destination }), lines: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe("logger", () => {
  it("redacts tokens, secrets and authorization headers at any of the usual depths", () => {
    const { logger, lines } = capture();
    logger.info(
      {
        accessToken: "AT-1",
        refreshToken: "RT-1",
        pair: { accessToken: "AT-2", refresh_token: "RT-2" },
        req: { headers: { authorization: "Bearer AT-3", "x-cal-secret-key": "S-1" } },
        deep: { body: { clientSecret: "S-2" } },
        userUlid: "01ARZ3NDEKTSV4RRFFQ69G5FAV",
      },
      "x",
    );
    const text = JSON.stringify(lines());
    for (const secret of ["AT-1", "RT-1", "AT-2", "RT-2", "AT-3", "S-1", "S-2"]) expect(text).not.toContain(secret);
    expect(text).toContain("01ARZ3NDEKTSV4RRFFQ69G5FAV");
    expect(text).toContain("[REDACTED]");
  });

  it("serialises errors without their foreign properties (HTTP errors carry request bodies)", () => {
    const { logger, lines } = capture();
    const err = Object.assign(new Error("request failed"), { code: "ECONNRESET", options: { json: { refreshToken: "RT-LEAK" } } });
    logger.error({ err }, "boom");
    const [line] = lines();
    expect(line!.err).toMatchObject({ type: "Error", message: "request failed", code: "ECONNRESET" });
    expect(JSON.stringify(line)).not.toContain("RT-LEAK");
  });

  it("prefixes messages with the component tag the web app greps for", () => {
    const { logger, lines } = capture();
    componentLogger(logger, "onDemand").info("a");
    componentLogger(logger, "tokenService").info("b");
    componentLogger(logger, "refreshRequests").info("c");
    expect(lines().map((l) => l.msg)).toEqual(["[CAL_TOKEN_UTIL] a", "[TOKEN_SERVICE] b", "[CAL_TOKENS_REFRESH] c"]);
  });
});
