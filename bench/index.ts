// `npm run bench [-- [entries...] [--threads N] [--rounds N] [--quick] [--list]]`
//
// Each entry runs our side and the same work in Python PyTorch (MOCO_PYTHON, default Debian's
// /usr/bin/python3, test/helpers/python.ts; Debian's torch is on the same libtorch), side by side in this one invocation, on the same thread count (--threads, or
// MOCO_BENCH_THREADS, default 2; also exported as OMP/MKL/OPENBLAS_NUM_THREADS to both sides). Our
// side runs in a child process (`--child <entry>`), so its peak memory and JIT state are its own. The
// sides alternate for a few rounds; the best round of each side is kept. Metrics compared against a
// bound (another entry's figure from this same invocation) instead of Python get a second table; the
// other metrics of an entry without a Python side are shown as ours alone.
// Prints the table(s) and writes runs/bench-<date>.json.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import { buildInfo, getNumThreads, readCpuCapabilities, setNumThreads } from "../src/torch/index.js";
import { dataPipeline } from "./data-pipeline.js";
import { distScaling } from "./dist-scaling.js";
import { embedThroughput } from "./embed-throughput.js";
import { gpuCifarEpoch, gpuMocoCifar, gpuMocoV2R50 } from "./gpu-moco.js";
import { folderPipeline, folderPipelineLarge } from "./folder-pipeline.js";
import {
  PRECISIONS,
  type BenchEntry,
  type BoundSpec,
  type Measurement,
  type MetricSpec,
  type RunContext,
} from "./framework.js";
import { matmul512 } from "./matmul512.js";
import { mocoCifarStep, mocoFmnistStep } from "./moco-train-step.js";
import { opOverhead } from "./op-overhead.js";
import { peakMatmul } from "./peak-matmul.js";
import { resnet18TrainStep } from "./resnet18-train-step.js";
import { serveLoad } from "./serve-load.js";
import { PYTHON } from "../test/helpers/python.js";

/** The registered entries, in the order they run (an entry that bounds another comes before it). */
export const ENTRIES: readonly BenchEntry[] = [
  opOverhead,
  matmul512,
  peakMatmul,
  resnet18TrainStep,
  mocoCifarStep,
  mocoFmnistStep,
  dataPipeline,
  folderPipeline,
  folderPipelineLarge,
  embedThroughput,
  distScaling,
  serveLoad,
  gpuMocoV2R50,
  gpuMocoCifar,
  gpuCifarEpoch,
];

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");
const CHILD_TIMEOUT_MS = 10 * 60 * 1000;

interface Options {
  names: string[];
  threads: number;
  rounds: number | null;
  quick: boolean;
  list: boolean;
  child: string | null;
}

function usage(): string {
  return [
    "usage: npm run bench -- [entry ...] [--threads N] [--rounds N] [--quick] [--list]",
    `entries: ${ENTRIES.map((e) => e.name).join(", ")}`,
    "--threads N   intra-op threads on both sides (default: $MOCO_BENCH_THREADS or 2)",
    "--rounds N    alternating (ours, python) rounds per entry (default: per entry)",
    "--quick       few iterations: checks the harness, not the numbers",
  ].join("\n");
}

function parseArgs(argv: readonly string[]): Options {
  const envThreads = process.env.MOCO_BENCH_THREADS;
  const options: Options = {
    names: [],
    threads: envThreads === undefined || envThreads === "" ? 2 : Number(envThreads),
    rounds: null,
    quick: false,
    list: false,
    child: null,
  };
  const positiveInt = (flag: string, value: string | undefined): number => {
    const n = Number(value);
    if (value === undefined || !Number.isSafeInteger(n) || n < 1)
      throw new UsageError(`${flag} expects an integer >= 1, got ${String(value)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? arg.split("=", 2) : [arg, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--threads":
        options.threads = positiveInt("--threads", value());
        break;
      case "--rounds":
        options.rounds = positiveInt("--rounds", value());
        break;
      case "--quick":
        options.quick = true;
        break;
      case "--list":
        options.list = true;
        break;
      case "--child":
        options.child = value() ?? null;
        break;
      case "--help":
      case "-h":
        console.log(usage());
        process.exit(0);
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        options.names.push(arg);
    }
  }
  if (!Number.isSafeInteger(options.threads) || options.threads < 1) {
    throw new UsageError(`MOCO_BENCH_THREADS must be an integer >= 1, got ${String(envThreads)}`);
  }
  const unknown = options.names.filter((n) => !ENTRIES.some((e) => e.name === n));
  if (unknown.length > 0) throw new UsageError(`unknown entr${unknown.length > 1 ? "ies" : "y"} ${unknown.join(", ")}`);
  return options;
}

class UsageError extends Error {}

/** Same thread settings for both sides' pools: libtorch's (set in-process too), OpenMP, MKL, OpenBLAS. */
function childEnv(threads: number): NodeJS.ProcessEnv {
  const n = String(threads);
  return { ...process.env, OMP_NUM_THREADS: n, MKL_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n };
}

function parseMeasurement(stdout: string, who: string): Measurement {
  const line = stdout.trim().split("\n").pop() ?? "";
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    throw new Error(`${who} printed no JSON result; its output ended with: ${line.slice(-300)}`);
  }
  const values = (parsed as Measurement).values;
  if (typeof values !== "object" || values === null || !Object.values(values).every((v) => typeof v === "number")) {
    throw new Error(`${who}: the result has no numeric "values"`);
  }
  return parsed as Measurement;
}

function runChild(command: string, args: string[], threads: number, who: string): Measurement {
  const result = spawnSync(command, args, {
    cwd: root,
    env: childEnv(threads),
    encoding: "utf8",
    timeout: CHILD_TIMEOUT_MS,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw new Error(`${who}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new Error(
      `${who} exited with ${result.status ?? result.signal}:\n${result.stderr.trim().split("\n").slice(-15).join("\n")}`,
    );
  }
  return parseMeasurement(result.stdout, who);
}

function runOursInChild(entry: BenchEntry, ctx: RunContext): Measurement {
  const args = ["--import", "tsx", join(here, "index.ts"), "--child", entry.name, "--threads", String(ctx.threads)];
  if (ctx.quick) args.push("--quick");
  return runChild(process.execPath, args, ctx.threads, `ours (${entry.name})`);
}

function runPython(entry: BenchEntry, ctx: RunContext): Measurement {
  if (entry.python === undefined) throw new Error(`${entry.name} has no Python side`);
  const args = [join(here, "py", entry.python), ...(entry.pythonArgs ?? []), "--threads", String(ctx.threads)];
  if (ctx.quick) args.push("--quick");
  return runChild(PYTHON, args, ctx.threads, `python (${entry.name})`);
}

interface Row {
  entry: string;
  metric: string;
  unit: string;
  better: "lower" | "higher";
  ours: number;
  /** Null for an entry without a Python side (the metric is ours alone). */
  python: number | null;
  ratio: number | null;
  target: number | null;
  meetsTarget: boolean | null;
  digits: number;
}

/** A metric compared against a bound (BoundSpec) rather than Python. */
interface BoundRow {
  entry: string;
  metric: string;
  unit: string;
  better: "lower" | "higher";
  ours: number;
  bound: number;
  /** What the bound is, and where it comes from. */
  boundLabel: string;
  boundFrom: string;
  ratio: number;
  target: number | null;
  meetsTarget: boolean | null;
  digits: number;
}

/** One side's figure for one metric over its rounds: the best round, or the worst if the metric asks. */
function best(spec: Pick<MetricSpec, "key" | "better" | "combine">, rounds: Measurement[]): number {
  const values = rounds.map((m) => m.values[spec.key]).filter((v): v is number => typeof v === "number");
  if (values.length === 0) return Number.NaN;
  const lowest = (spec.better === "lower") === ((spec.combine ?? "best") === "best");
  return lowest ? Math.min(...values) : Math.max(...values);
}

/** The bound over the bounding entry's rounds, combined as that entry's own metric for the key. */
function boundValue(bound: BoundSpec, rounds: Measurement[]): number {
  const owner = ENTRIES.find((e) => e.name === bound.entry);
  const spec = owner?.metrics.find((m) => m.key === bound.key) ?? { key: bound.key, better: "higher" as const };
  return best({ ...spec, key: bound.key }, rounds);
}

function boundRowsFor(entry: BenchEntry, ours: Measurement[], bounds: Map<string, Measurement[]>): BoundRow[] {
  return entry.metrics.flatMap((spec) => {
    if (spec.bound === undefined) return [];
    const o = best(spec, ours);
    const b = boundValue(spec.bound, bounds.get(spec.bound.entry) ?? []);
    const ratio = o / b;
    const target = spec.informational ? null : (spec.target ?? null);
    const meetsTarget = target === null ? null : spec.better === "lower" ? ratio <= target : ratio >= target;
    return [
      {
        entry: entry.name,
        metric: spec.label,
        unit: spec.unit,
        better: spec.better,
        ours: o,
        bound: b,
        boundLabel: spec.bound.label,
        boundFrom: `${spec.bound.entry}: ${spec.bound.key} (ours)`,
        ratio,
        target,
        meetsTarget,
        digits: spec.digits ?? 2,
      },
    ];
  });
}

function rowsFor(entry: BenchEntry, ours: Measurement[], python: Measurement[]): Row[] {
  return entry.metrics
    .filter((spec) => spec.bound === undefined)
    .map((spec) => {
      const o = best(spec, ours);
      const p = entry.python === undefined || spec.oursOnly === true ? null : best(spec, python);
      const ratio = p === null ? null : o / p;
      const target = spec.informational || ratio === null ? null : (spec.target ?? null);
      const meetsTarget =
        target === null || ratio === null ? null : spec.better === "lower" ? ratio <= target : ratio >= target;
      return {
        entry: entry.name,
        metric: spec.label,
        unit: spec.unit,
        better: spec.better,
        ours: o,
        python: p,
        ratio,
        target,
        meetsTarget,
        digits: spec.digits ?? 2,
      };
    });
}

function targetCell(r: { better: "lower" | "higher"; target: number | null; meetsTarget: boolean | null }): string {
  return r.target === null
    ? "-"
    : `${r.better === "lower" ? "<=" : ">="} ${r.target.toFixed(2)} ${r.meetsTarget ? "met" : "MISSED"}`;
}

function formatTable(rows: Row[], skipped: { entry: string; reason: string }[]): string {
  const header = ["entry", "metric", "unit", "ours", "python", "ours/python", "target"];
  const body = rows.map((r) => [
    r.entry,
    r.metric,
    `${r.unit} (${r.better} is better)`,
    r.ours.toFixed(r.digits),
    r.python === null ? "-" : r.python.toFixed(r.digits),
    r.ratio === null ? "-" : r.ratio.toFixed(3),
    targetCell(r),
  ]);
  for (const s of skipped) body.push([s.entry, `skipped: ${s.reason}`, "", "", "", "", ""]);
  return alignTable(header, body, new Set([3, 4, 5]));
}

/** The metrics compared against a bound from this invocation, not against Python. */
function formatBoundTable(rows: BoundRow[]): string {
  const header = ["entry", "metric", "unit", "ours", "bound", "bound is", "ours/bound", "target"];
  const body = rows.map((r) => [
    r.entry,
    r.metric,
    `${r.unit} (${r.better} is better)`,
    r.ours.toFixed(r.digits),
    r.bound.toFixed(r.digits),
    r.boundLabel,
    r.ratio.toFixed(3),
    targetCell(r),
  ]);
  return alignTable(header, body, new Set([3, 4, 6]));
}

function alignTable(header: string[], body: string[][], numeric: Set<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

function pythonTorchVersion(): string {
  const r = spawnSync(PYTHON, ["-c", "import torch; print(torch.__version__)"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : `unavailable (${r.stderr.trim().split("\n").pop() ?? ""})`;
}

async function childMain(options: Options): Promise<void> {
  const entry = ENTRIES.find((e) => e.name === options.child);
  if (entry === undefined) throw new UsageError(`--child: unknown entry ${String(options.child)}`);
  setNumThreads(options.threads);
  const measurement = await entry.runOurs({ threads: options.threads, quick: options.quick });
  measurement.details = { ...measurement.details, threads: getNumThreads() };
  process.stdout.write(`${JSON.stringify(measurement)}\n`);
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.child !== null) return childMain(options);
  if (options.list) {
    for (const e of ENTRIES) console.log(`${e.name.padEnd(22)} ${e.description}`);
    return;
  }
  const selected = options.names.length === 0 ? ENTRIES : ENTRIES.filter((e) => options.names.includes(e.name));
  const ctx: RunContext = { threads: options.threads, quick: options.quick };
  const started = new Date();
  const versions = { node: process.version, libtorch: buildInfo().torchVersion, pythonTorch: pythonTorchVersion() };
  console.log(
    `moco-ts bench: ${selected.map((e) => e.name).join(", ")}; ${ctx.threads} thread(s) per side, ` +
      `${cpus().length} CPU(s), load average ${loadavg()[0]?.toFixed(2)}${ctx.quick ? ", QUICK (numbers not meaningful)" : ""}`,
  );
  console.log(`node ${versions.node}, libtorch ${versions.libtorch} (ours), torch ${versions.pythonTorch} (python)`);
  // bf16 figures mean something only next to the CPU that computed them.
  const cpu = readCpuCapabilities();
  const bf16Flags = ["avx512_bf16", "amx_bf16"].filter((flag) => cpu.flags.has(flag));
  console.log(
    `CPU ${cpu.model ?? cpus()[0]?.model ?? "unknown"}: native bf16 ${bf16Flags.length > 0 ? `yes (${bf16Flags.join(", ")})` : "no"}; ` +
      `"auto" rows: ${PRECISIONS.auto.reason}`,
  );

  const rows: Row[] = [];
  const boundRows: BoundRow[] = [];
  /** Our side's rounds of each entry measured so far in this invocation, for bounds. */
  const oursByEntry = new Map<string, Measurement[]>();
  const skipped: { entry: string; reason: string }[] = [];
  const results: Record<string, unknown>[] = [];
  let failed = false;
  for (const entry of selected) {
    const reason = entry.unavailable === undefined ? null : await entry.unavailable();
    if (reason !== null) {
      console.log(`\n${entry.name}: skipped: ${reason}`);
      skipped.push({ entry: entry.name, reason });
      results.push({ name: entry.name, skipped: reason });
      continue;
    }
    const rounds = options.rounds ?? entry.rounds ?? 3;
    const ours: Measurement[] = [];
    const python: Measurement[] = [];
    // Bounds measured by an entry already run in this invocation are reused; the others are measured
    // here, in this entry's rounds (alternating with our side, so that background load hits both).
    const bounds = new Map<string, Measurement[]>();
    const boundEntries: BenchEntry[] = [];
    for (const name of new Set(entry.metrics.flatMap((m) => (m.bound === undefined ? [] : [m.bound.entry])))) {
      const measured = oursByEntry.get(name);
      if (measured !== undefined) bounds.set(name, measured);
      else {
        const owner = ENTRIES.find((e) => e.name === name);
        if (owner === undefined) throw new Error(`bench: ${entry.name}: its bound names no entry (${name})`);
        boundEntries.push(owner);
      }
    }
    const t0 = Date.now();
    try {
      if (entry.prepare !== undefined) {
        process.stdout.write(`\n${entry.name}: preparing...`);
        await entry.prepare(ctx);
      }
      for (const b of boundEntries) {
        const why = b.unavailable === undefined ? null : await b.unavailable();
        if (why !== null) throw new Error(`its bound ${b.name} cannot run: ${why}`);
        bounds.set(b.name, []);
      }
      for (let r = 0; r < rounds; r++) {
        process.stdout.write(`\n${entry.name}: round ${r + 1}/${rounds}: ours...`);
        ours.push(runOursInChild(entry, ctx));
        if (entry.python !== undefined) {
          process.stdout.write(" python...");
          python.push(runPython(entry, ctx));
        }
        for (const b of boundEntries) {
          process.stdout.write(` bound (${b.name}, ours)...`);
          bounds.get(b.name)?.push(runOursInChild(b, ctx));
        }
      }
    } catch (error) {
      failed = true;
      const message = (error as Error).message;
      console.log(`\n${entry.name}: FAILED: ${message}`);
      skipped.push({ entry: entry.name, reason: `failed: ${message.split("\n")[0]}` });
      results.push({ name: entry.name, error: message });
      continue;
    }
    oursByEntry.set(entry.name, ours);
    const entryRows = rowsFor(entry, ours, python);
    const entryBoundRows = boundRowsFor(entry, ours, bounds);
    rows.push(...entryRows);
    boundRows.push(...entryBoundRows);
    process.stdout.write(` done (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
    const summary = entry.summary?.(ours);
    if (summary !== undefined) console.log(summary);
    results.push({
      name: entry.name,
      description: entry.description,
      rounds,
      metrics: [...entryRows, ...entryBoundRows],
      ours,
      ...(entry.python === undefined ? {} : { python }),
      ...(bounds.size === 0 ? {} : { bounds: Object.fromEntries(bounds) }),
      ...(summary === undefined ? {} : { summary }),
    });
  }

  if (rows.length > 0 || skipped.length > 0 || boundRows.length === 0) console.log(`\n${formatTable(rows, skipped)}`);
  if (boundRows.length > 0) console.log(`\nagainst bounds (not Python):\n${formatBoundTable(boundRows)}`);
  const file = join(root, "runs", `bench-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  mkdirSync(dirname(file), { recursive: true });
  const record = {
    date: started.toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(),
    threads: ctx.threads,
    quick: ctx.quick,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? "unknown",
    nativeBf16: bf16Flags,
    autoPrecision: PRECISIONS.auto,
    loadAverageAtStart: loadavg(),
    versions,
    entries: results,
  };
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`\nwrote ${relative(process.cwd(), file)}`);
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) {
    console.error(`bench: ${error.message}\n${usage()}`);
    process.exitCode = 2;
  } else {
    console.error(error);
    process.exitCode = 1;
  }
});
