/** Markdown output (pastes straight into a README) and the optional one-line JSON. */
import { loadavg } from "node:os";
import type { Goal, MachineInfo, Row } from "./types.js";

export type Status = "PASS" | "MISS" | "";

export interface SectionReport {
  name: string;
  title: string;
  goal: string;
  rows: Row[];
  notes: string[];
  /** Set when the section threw; rows may be partial. */
  error?: string;
  seconds: number;
  /** 1-minute load average when the section started (noise indicator). */
  loadAtStart: number;
}

export function statusOf(row: Row): Status {
  if (!row.goal || !Number.isFinite(row.value)) return row.goal ? "MISS" : "";
  return meets(row.value, row.goal) ? "PASS" : "MISS";
}

function meets(value: number, goal: Goal): boolean {
  return goal.op === "<=" ? value <= goal.target : value >= goal.target;
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "n/a";
  const abs = Math.abs(value);
  let digits: number;
  switch (unit) {
    case "×":
      // Two significant digits below 0.1× (a cached call is a few thousandths of a query).
      digits = abs > 0 && abs < 0.1 ? 1 - Math.floor(Math.log10(abs)) : 2;
      break;
    case "%":
    case "µs":
      digits = abs >= 100 ? 0 : 1;
      break;
    case "ms":
      digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
      break;
    default:
      digits = Number.isInteger(value) ? 0 : 2;
  }
  const text = value.toFixed(digits);
  if (unit === "") return text;
  return unit === "×" || unit === "%" ? `${text}${unit}` : `${text} ${unit}`;
}

function formatGoal(goal: Goal | undefined, unit: string): string {
  if (!goal) return "";
  return `${goal.op === "<=" ? "≤" : "≥"} ${formatValue(goal.target, unit)}`;
}

export function machineLine(m: MachineInfo, load: number): string {
  return `machine: ${m.cores} cores (${m.cpuModel}), node ${m.node}, ${m.platform}, ${m.postgres} (${m.pgDurability}), load avg ${load.toFixed(2)} at start`;
}

export function currentLoad(): number {
  return loadavg()[0] ?? 0;
}

export function renderSection(r: SectionReport, machine: MachineInfo): string {
  const out: string[] = [];
  out.push(`## ${r.name} — ${r.title}`, "");
  out.push(`Goal: ${r.goal}`, "");
  out.push("| metric | value | goal | result | how |", "|---|---:|---|---|---|");
  for (const row of r.rows) {
    const status = statusOf(row);
    out.push(
      `| ${esc(row.metric)} | ${formatValue(row.value, row.unit)} | ${formatGoal(row.goal, row.unit)} | ${status ? `**${status}**` : ""} | ${esc(row.detail ?? "")} |`,
    );
  }
  out.push("");
  if (r.error) out.push(`**ERROR**: ${r.error}`, "");
  const goalRows = r.rows.filter((row) => row.goal);
  if (goalRows.length > 0) {
    const missed = goalRows.filter((row) => statusOf(row) === "MISS");
    out.push(
      missed.length === 0
        ? `Verdict: **PASS** (${goalRows.length}/${goalRows.length} goals met; informational, exit code unaffected)`
        : `Verdict: **MISS** (${missed.map((m) => m.metric).join("; ")}; informational, exit code unaffected)`,
      "",
    );
  }
  for (const n of r.notes) out.push(`- ${n}`);
  if (r.notes.length > 0) out.push("");
  out.push(`_${machineLine(machine, r.loadAtStart)}; section took ${r.seconds.toFixed(1)} s_`, "");
  return out.join("\n");
}

export function jsonLine(machine: MachineInfo, reports: SectionReport[]): string {
  return JSON.stringify({
    bench: "cal-token-worker",
    at: new Date().toISOString(),
    machine,
    sections: reports.map((r) => ({
      name: r.name,
      goal: r.goal,
      seconds: Number(r.seconds.toFixed(2)),
      loadAtStart: Number(r.loadAtStart.toFixed(2)),
      ...(r.error ? { error: r.error } : {}),
      rows: r.rows.map((row) => ({ ...row, status: statusOf(row) || undefined })),
      notes: r.notes,
    })),
  });
}

function esc(s: string): string {
  return s.replace(/\|/g, "\\|");
}
