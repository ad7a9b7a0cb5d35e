// The benchmark framework: an entry measures one thing twice, with our library (in a child process
// of `npm run bench`, so that its peak memory and its JIT state are its own) and with Python PyTorch
// (`$MOCO_PYTHON bench/py/<entry>.py`), on the same thread count. The two sides alternate for a
// few rounds so that background load hits both alike; each side reports named values, the best round
// of each is kept, and each metric is shown as ours, python and ours/python. A metric may instead be
// compared against a bound: a figure of another entry's side, measured in the same invocation (e.g. the
// data pipeline's images/s against the images/s a training step consumes); such rows get a table of
// their own. An entry may have no Python side at all: its metrics without a bound are then ours alone.
import { readFileSync } from "node:fs";

import { resolvePrecision, type ResolvedPrecision } from "../src/torch/index.js";

/** What one side of an entry reports: named numbers, plus anything worth keeping in the JSON. */
export interface Measurement {
  values: Record<string, number>;
  details?: Record<string, unknown>;
}

/** How to read one value of a Measurement in the table. */
export interface MetricSpec {
  /** The key in Measurement.values on both sides. */
  key: string;
  /** What the row says, e.g. "per-call overhead". */
  label: string;
  unit: string;
  /** Which direction is better; it also picks the best round (min for "lower", max for "higher"). */
  better: "lower" | "higher";
  /** The target for ours/python: at most this for "lower", at least this for "higher". */
  target?: number;
  /** Digits after the point in the table (default 2). */
  digits?: number;
  /** Shown without a target (e.g. peak memory). */
  informational?: boolean;
  /** Which round to report per side: the best (default) or the worst (e.g. the highest peak memory). */
  combine?: "best" | "worst";
  /** Compare ours with this bound instead of with Python; the target then applies to ours/bound. */
  bound?: BoundSpec;
  /** Ours alone in an entry that has a Python side (e.g. our pipeline before a change): no Python figure. */
  oursOnly?: boolean;
}

/** The process's peak resident memory (VmHWM), reported with every throughput entry: each side runs in its own process. */
export const PEAK_RSS_METRIC: MetricSpec = {
  key: "peak_rss_mib",
  label: "peak resident memory",
  unit: "MiB",
  better: "lower",
  digits: 0,
  informational: true,
  combine: "worst",
};

/** A figure of another entry's side (ours), measured in the same invocation, used as a bound. */
export interface BoundSpec {
  /** The entry that measures it. If it is not selected, its side runs in this entry's rounds. */
  entry: string;
  /** The key in that entry's Measurement.values; its best round (by that entry's metric) is the bound. */
  key: string;
  /** What the bound is, for the table, e.g. "moco-fmnist-step consumption". */
  label: string;
}

export interface RunContext {
  threads: number;
  /** Fewer iterations, for a smoke run of the harness itself (`--quick`). */
  quick: boolean;
}

export interface BenchEntry {
  name: string;
  description: string;
  /**
   * The Python side: bench/py/<python>; it receives `[...pythonArgs] --threads N [--quick]` and prints
   * one JSON Measurement. Absent when every metric is compared against a bound.
   */
  python?: string;
  /** Extra arguments for the Python side (e.g. which configuration of a shared script). */
  pythonArgs?: readonly string[];
  /** Alternating rounds of (ours, python) processes (default 3). */
  rounds?: number;
  metrics: MetricSpec[];
  /** A reason to skip this entry (e.g. a module not written yet), or null when it can run. */
  unavailable?(): Promise<string | null>;
  /** Text printed after the entry's rounds (e.g. a breakdown kept in the details), from our side's rounds. */
  summary?(ours: Measurement[]): string;
  /** Run once, in the runner's process, before the rounds: what both sides need (e.g. generated files). */
  prepare?(ctx: RunContext): Promise<void>;
  /** Our side, run in a fresh child process with the thread count already set. */
  runOurs(ctx: RunContext): Promise<Measurement> | Measurement;
}

/**
 * The precisions a network entry measures in one invocation: float32 on both sides, then ours as
 * `--precision auto` decides on this CPU next to Python under `torch.autocast("cpu", bfloat16)` with
 * `model.to(memory_format=torch.channels_last)`, both sides reporting the second figure under the
 * metric's key + "_auto" (autoPrecisionMetric).
 */
export const PRECISIONS: { fp32: ResolvedPrecision; auto: ResolvedPrecision } = {
  fp32: resolvePrecision({ precision: "fp32", channelsLast: "off" }),
  auto: resolvePrecision({ precision: "auto", channelsLast: "auto" }),
};

/** The row of a throughput metric measured the second way: ours auto against Python's bf16 + channels_last. */
export function autoPrecisionMetric(metric: MetricSpec): MetricSpec {
  const ours = PRECISIONS.auto.dtype === "bfloat16" ? "bf16" : "fp32";
  const layout = PRECISIONS.auto.channelsLast ? "+CL" : "";
  return {
    ...metric,
    key: `${metric.key}_auto`,
    label: `${metric.label}, ours auto (${ours}${layout}) vs python bf16+CL`,
  };
}

/** Seconds since an arbitrary origin, with nanosecond resolution. */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Runs `fn` `repeats` times after `warmup` runs and returns each run's duration in seconds. */
export function timeRepeats(fn: () => void, repeats: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = now();
    fn();
    times.push(now() - t0);
  }
  return times;
}

/** The process's peak resident set (VmHWM) in MiB, as the kernel counts it. */
export function peakRssMiB(): number {
  return statusField("VmHWM") / 1024;
}

/** The process's current resident set (VmRSS) in MiB. */
export function rssMiB(): number {
  return statusField("VmRSS") / 1024;
}

function statusField(name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(readFileSync("/proc/self/status", "utf8"));
  if (match === null) throw new Error(`bench: no ${name} in /proc/self/status`);
  return Number(match[1]);
}
