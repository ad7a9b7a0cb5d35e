// What a report reads: a pretraining run folder (config.json, metrics.jsonl, summary.json,
// checkpoint.pth.tar) and the evaluations made of it — `moco knn`'s knn.json (per class and
// confusion matrix) and `moco lincls`'s folder (metrics.jsonl per epoch, summary.json) — found inside
// the run folder (knn.json, knn/, lincls/) or given beside it.
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";

import { MocoError } from "../errors.js";

export class ReportInputError extends MocoError {
  override name = "ReportInputError";
  constructor(message: string) {
    super("ERR_REPORT_INPUT", message);
  }
}

export interface StepPoint {
  step: number;
  epoch: number;
  loss: number;
  top1: number;
  lr: number;
  imagesPerSec: number;
}

export interface KnnPoint {
  epoch: number;
  step: number;
  top1: number;
  /** "pixels" (raw pixels), "backbone"/"head" (the encoder's features). */
  features: string;
  /**
   * Wall time since the run's first record, in minutes, without the pauses before each resume (null
   * where the record has no time).
   */
  minutes: number | null;
}

export interface ClassResults {
  /** Where they come from, e.g. "kNN (k 200)" or "linear evaluation". */
  source: string;
  file: string;
  top1: number;
  classNames: string[];
  perClass: { name: string; count: number; correct: number; accuracy: number | null }[];
  confusion: number[][];
}

export interface LinclsCurve {
  dir: string;
  epochs: { epoch: number; loss: number; trainTop1: number; valTop1: number }[];
  top1: number | null;
}

export interface RunRecord {
  dir: string;
  /** A short name for legends: the folder's name (made unique by the caller). */
  name: string;
  config: Record<string, unknown>;
  steps: StepPoint[];
  knn: KnnPoint[];
  summary: Record<string, unknown> | null;
  checkpoint: string | null;
  classResults: ClassResults[];
  lincls: LinclsCurve[];
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as unknown;
  } catch (error) {
    throw new ReportInputError(`${path}: not readable JSON: ${(error as Error).message}`);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The records of a JSON-lines file; a truncated last line (a run still writing) is skipped. */
function readJsonLines(path: string): Record<string, unknown>[] {
  const lines = readFileSync(path, "utf8").split("\n");
  const records: Record<string, unknown>[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      if (i >= lines.length - 2) return; // the line being written when we read
      throw new ReportInputError(`${path}: line ${i + 1} is not JSON`);
    }
    if (isRecord(value)) records.push(value);
  });
  return records;
}

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function stepPoint(r: Record<string, unknown>): StepPoint | null {
  const step = num(r["step"]);
  const loss = num(r["loss"]);
  if (step === null || loss === null) return null;
  return {
    step,
    epoch: num(r["epoch"]) ?? 0,
    loss,
    top1: num(r["top1"]) ?? NaN,
    lr: num(r["lr"]) ?? NaN,
    imagesPerSec: num(r["imagesPerSec"]) ?? NaN,
  };
}

/** knn.json (moco knn) or a lincls summary with the same per-class fields; null when it has none. */
function classResultsOf(value: unknown, file: string, source: string): ClassResults | null {
  if (!isRecord(value)) return null;
  const perClass = value["perClass"];
  const confusion = value["confusion"];
  if (!Array.isArray(perClass) || !Array.isArray(confusion)) return null;
  const n = perClass.length;
  if (
    !confusion.every((row) => Array.isArray(row) && row.length === n && row.every((x) => typeof x === "number")) ||
    confusion.length !== n ||
    !perClass.every((c) => isRecord(c) && typeof c["name"] === "string")
  )
    throw new ReportInputError(`${file}: perClass and confusion do not agree (${n} classes)`);
  const classes = perClass as Record<string, unknown>[];
  const top1 = num(value["top1"]) ?? num(value["acc1"]) ?? NaN;
  return {
    source,
    file,
    top1,
    classNames: classes.map((c) => c["name"] as string),
    perClass: classes.map((c) => ({
      name: c["name"] as string,
      count: num(c["count"]) ?? 0,
      correct: num(c["correct"]) ?? 0,
      accuracy: num(c["accuracy"]),
    })),
    confusion: confusion as number[][],
  };
}

function knnSource(value: unknown): string {
  if (!isRecord(value)) return "kNN";
  const k = num(value["k"]);
  const baseline = value["baseline"];
  const parts = [
    k === null ? null : `k ${k}`,
    value["vote"] === "majority" ? "majority vote" : null,
    baseline === "pixels" ? "raw pixels" : baseline === "random" ? "random init" : null,
  ].filter((part) => part !== null);
  return parts.length === 0 ? "kNN" : `kNN (${parts.join(", ")})`;
}

/** What kind of folder `dir` is, by the files it holds. */
export function folderKind(dir: string): "run" | "knn" | "lincls" | null {
  const has = (file: string) => existsSync(join(dir, file));
  if (has("knn.json")) return has("config.json") && has("checkpoint.pth.tar") ? "run" : "knn";
  if (has("metrics.jsonl") && has("config.json")) {
    const config = readJson(join(dir, "config.json"));
    if (isRecord(config) && "pretrained" in config && !("mocoK" in config)) return "lincls";
    return "run";
  }
  return null;
}

function readLincls(dir: string): { curve: LinclsCurve; classes: ClassResults | null } {
  const epochs = existsSync(join(dir, "metrics.jsonl"))
    ? readJsonLines(join(dir, "metrics.jsonl")).flatMap((r) => {
        const epoch = num(r["epoch"]);
        const valTop1 = num(r["valTop1"]);
        if (epoch === null || valTop1 === null) return [];
        return [{ epoch, loss: num(r["loss"]) ?? NaN, trainTop1: num(r["trainTop1"]) ?? NaN, valTop1 }];
      })
    : [];
  const summaryPath = join(dir, "summary.json");
  const summary = existsSync(summaryPath) ? readJson(summaryPath) : null;
  const top1 = isRecord(summary) ? num(summary["top1"]) : null;
  return {
    curve: { dir, epochs, top1 },
    classes: summary === null ? null : classResultsOf(summary, summaryPath, "linear evaluation"),
  };
}

/** Adds a kNN or lincls output folder (or knn.json file) to `run`. */
export function attachEvaluation(run: RunRecord, path: string): void {
  const stat = existsSync(path) ? statSync(path) : null;
  if (stat === null) throw new ReportInputError(`${path}: no such file or folder`);
  if (stat.isFile()) {
    // Given explicitly and also found inside the run folder: show it once.
    if (run.classResults.some((c) => resolve(c.file) === resolve(path))) return;
    const value = readJson(path);
    const classes = classResultsOf(value, path, knnSource(value));
    if (classes === null) throw new ReportInputError(`${path}: no perClass/confusion (not a moco knn output)`);
    run.classResults.push(classes);
    return;
  }
  const kind = folderKind(path);
  if (kind === "knn") {
    attachEvaluation(run, join(path, "knn.json"));
  } else if (kind === "lincls") {
    if (run.lincls.some((l) => resolve(l.dir) === resolve(path))) return;
    const { curve, classes } = readLincls(path);
    run.lincls.push(curve);
    if (classes !== null) run.classResults.push(classes);
  } else {
    throw new ReportInputError(`${path}: not a moco knn or moco lincls output folder`);
  }
}

/** Reads a pretraining run folder and the evaluations stored inside it. */
export function readRun(dir: string): RunRecord {
  const configPath = join(dir, "config.json");
  const metricsPath = join(dir, "metrics.jsonl");
  if (!existsSync(configPath) || !existsSync(metricsPath))
    throw new ReportInputError(`${dir}: not a moco pretrain run folder (needs config.json and metrics.jsonl)`);
  const config = readJson(configPath);
  if (!isRecord(config)) throw new ReportInputError(`${configPath}: expected a JSON object`);
  const steps: StepPoint[] = [];
  const knn: KnnPoint[] = [];
  const records = readJsonLines(metricsPath);
  const timeOf = (r: Record<string, unknown>): number | null => {
    const t = typeof r["time"] === "string" ? Date.parse(r["time"]) : NaN;
    return Number.isFinite(t) ? t : null;
  };
  const times = records.map(timeOf).filter((t): t is number => t !== null);
  const start = times.length === 0 ? null : Math.min(...times);
  // A resume record ends a pause that began at the record before it (the log is in time order).
  let paused = 0;
  let last: number | null = null;
  for (const r of records) {
    const time = timeOf(r);
    if (r["type"] === "resume" && time !== null && last !== null) paused += Math.max(0, time - last);
    if (time !== null) last = time;
    if (r["type"] === "step") {
      const p = stepPoint(r);
      if (p !== null) steps.push(p);
    } else if (r["type"] === "knn") {
      const top1 = num(r["top1"]);
      if (top1 !== null)
        knn.push({
          epoch: num(r["epoch"]) ?? 0,
          step: num(r["step"]) ?? 0,
          top1,
          features: typeof r["features"] === "string" ? r["features"] : "backbone",
          minutes: start === null || time === null ? null : (time - start - paused) / 60000,
        });
    }
  }
  const summaryPath = join(dir, "summary.json");
  const summary = existsSync(summaryPath) ? readJson(summaryPath) : null;
  const checkpoint = join(dir, "checkpoint.pth.tar");
  const run: RunRecord = {
    dir: resolve(dir),
    name: basename(resolve(dir)),
    config,
    steps,
    knn,
    summary: isRecord(summary) ? summary : null,
    checkpoint: existsSync(checkpoint) ? checkpoint : null,
    classResults: [],
    lincls: [],
  };
  for (const inside of ["knn.json", "knn", "lincls"]) {
    const path = join(dir, inside);
    if (existsSync(path) && (inside === "knn.json" || folderKind(path) !== null)) attachEvaluation(run, path);
  }
  return run;
}

/**
 * Reads the report's inputs: run folders, each optionally followed by kNN/lincls output folders (or
 * knn.json files) that belong to it, e.g. `runs/a runs/a-knn runs/b`.
 */
export function readRuns(paths: readonly string[]): RunRecord[] {
  if (paths.length === 0) throw new ReportInputError("report: give at least one run folder");
  const runs: RunRecord[] = [];
  for (const path of paths) {
    const isDir = existsSync(path) && statSync(path).isDirectory();
    const kind = isDir ? folderKind(path) : null;
    if (kind === "run") {
      runs.push(readRun(path));
      continue;
    }
    const last = runs.at(-1);
    if (last === undefined)
      throw new ReportInputError(
        `${path}: ${existsSync(path) ? "not a pretraining run folder (evaluation outputs follow the run they belong to)" : "no such file or folder"}`,
      );
    attachEvaluation(last, path);
  }
  // Legends need distinct names: two runs called "run" become "run", "run (2)".
  const seen = new Map<string, number>();
  for (const run of runs) {
    const n = (seen.get(run.name) ?? 0) + 1;
    seen.set(run.name, n);
    if (n > 1) run.name = `${run.name} (${n})`;
  }
  return runs;
}
