/** The progress line of `import` and `rotate-key`: drawn in place on a terminal, nothing otherwise. */
import { createProgress, formatDuration, progressText, statusStream } from "../../src/cli/progress.js";

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { stream: { write: (s: string) => chunks.push(s), isTTY }, text: () => chunks.join(""), chunks };
}

describe("progressText", () => {
  it("count and rate; with a total, percentage and ETA", () => {
    expect(progressText({ label: "import", unit: "records", total: null }, { count: 1200, position: 1200, elapsedMs: 4000 })).toBe(
      "import: 1,200 records · 300/s",
    );
    expect(progressText({ label: "rotate-key", unit: "rows", total: 4000 }, { count: 1000, position: 1000, elapsedMs: 10_000 })).toBe(
      "rotate-key: 1,000 rows · 100/s · 25% · ETA 0:30",
    );
    // Before any time has passed there is no rate and no ETA, only the count (and the share done).
    expect(progressText({ label: "import", unit: "records", total: 10 }, { count: 1, position: 1, elapsedMs: 0 })).toBe(
      "import: 1 records · 10%",
    );
  });

  it("formats durations as m:ss and h:mm:ss", () => {
    expect(formatDuration(9.4)).toBe("0:09");
    expect(formatDuration(754)).toBe("12:34");
    expect(formatDuration(3 * 3600 + 5 * 60 + 7)).toBe("3:05:07");
  });
});

describe("createProgress", () => {
  it("on a terminal: redraws in place at most every 100 ms and clears the line when done", () => {
    const out = sink(true);
    let t = 1_000;
    const progress = createProgress(statusStream(out.stream), { label: "rotate-key", unit: "rows", total: 100, now: () => t });
    t += 1_000;
    progress.tick(); // first tick: drawn
    t += 50;
    progress.tick(); // within 100 ms: not drawn
    t += 950;
    progress.tick(); // drawn
    progress.done();
    expect(out.chunks).toEqual([
      "\r\x1b[Krotate-key: 1 rows · 1.0/s · 1% · ETA 1:39",
      "\r\x1b[Krotate-key: 3 rows · 1.5/s · 3% · ETA 1:05",
      "\r\x1b[K",
    ]);
  });

  it("piped or captured (not a terminal): writes nothing", () => {
    const out = sink(false);
    const progress = createProgress(statusStream(out.stream), { label: "import", unit: "records", total: null });
    for (let i = 0; i < 10; i++) progress.tick();
    progress.done();
    expect(out.text()).toBe("");
  });

  it("another stderr line while the progress line shows: the line is cleared, the text written, the line redrawn", () => {
    const out = sink(true);
    const stderr = statusStream(out.stream);
    stderr.status("import: 5 records");
    stderr.write("line 6: invalid: userUlid: must be a 26-character ULID\n");
    stderr.status(null);
    stderr.write("done\n");
    expect(out.text()).toBe(
      "\r\x1b[Kimport: 5 records\r\x1b[Kline 6: invalid: userUlid: must be a 26-character ULID\nimport: 5 records\r\x1b[Kdone\n",
    );
  });
});
