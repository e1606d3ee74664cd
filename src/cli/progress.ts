/**
 * A progress line on stderr for long commands (`import`, `rotate-key`): count, rate and, when the
 * total is known, percentage and ETA, redrawn in place. Only on a terminal: piped or captured
 * stderr gets nothing (docs/cli.md#progress). Other stderr lines written meanwhile go through
 * statusStream, which clears the progress line first and redraws it after.
 */
import type { OutputStream } from "./io.js";

const CLEAR_LINE = "\r\x1b[K";
const REDRAW_MS = 100;

export interface StatusStream extends OutputStream {
  /** Shows `text` as the status line (terminal only); null clears it. */
  status(text: string | null): void;
}

export function statusStream(out: OutputStream): StatusStream {
  const tty = out.isTTY === true;
  let shown: string | null = null;
  return {
    isTTY: tty,
    write(chunk: string) {
      if (shown === null) return out.write(chunk);
      out.write(CLEAR_LINE);
      const res = out.write(chunk);
      out.write(shown);
      return res;
    },
    status(text) {
      if (!tty || text === shown) return;
      out.write(text === null ? CLEAR_LINE : `${CLEAR_LINE}${text}`);
      shown = text;
    },
  };
}

export interface Progress {
  /** `n` more items done; `position` is how far into the total (bytes of a file), when known. */
  tick(n?: number, position?: number): void;
  /** Clears the line. */
  done(): void;
}

export interface ProgressOptions {
  /** "import", "rotate-key". */
  label: string;
  /** "records", "rows". */
  unit: string;
  /** The total that `position` counts towards (rows to do, bytes of the input); null when unknown. */
  total: number | null;
  now?: () => number;
}

export function createProgress(stream: StatusStream, opts: ProgressOptions): Progress {
  if (stream.isTTY !== true) return { tick: () => undefined, done: () => undefined };
  const now = opts.now ?? Date.now;
  const started = now();
  let count = 0;
  let position: number | null = null;
  let drawnAt = Number.NEGATIVE_INFINITY;
  return {
    tick(n = 1, at) {
      count += n;
      position = at ?? count;
      const t = now();
      if (t - drawnAt < REDRAW_MS) return;
      drawnAt = t;
      stream.status(progressText(opts, { count, position, elapsedMs: t - started }));
    },
    done() {
      stream.status(null);
    },
  };
}

/** `import: 1,200 records · 350/s · 45% · ETA 0:12` (rate once time has passed; % and ETA with a total). */
export function progressText(
  opts: Pick<ProgressOptions, "label" | "unit" | "total">,
  s: { count: number; position: number; elapsedMs: number },
): string {
  const parts = [`${opts.label}: ${s.count.toLocaleString("en-US")} ${opts.unit}`];
  const seconds = s.elapsedMs / 1000;
  if (seconds > 0) parts.push(`${formatRate(s.count / seconds)}/s`);
  if (opts.total !== null && opts.total > 0) {
    const fraction = Math.min(1, s.position / opts.total);
    parts.push(`${Math.floor(fraction * 100)}%`);
    if (seconds > 0 && fraction > 0) parts.push(`ETA ${formatDuration((seconds * (1 - fraction)) / fraction)}`);
  }
  return parts.join(" · ");
}

function formatRate(perSecond: number): string {
  return perSecond >= 10 ? Math.round(perSecond).toLocaleString("en-US") : perSecond.toFixed(1);
}

/** m:ss, or h:mm:ss from an hour. */
export function formatDuration(seconds: number): string {
  const total = Math.max(0, Math.round(seconds));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
