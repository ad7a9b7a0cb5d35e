// Run folders (pretraining's and linear evaluation's `--out`): a folder that already holds a run is
// never replaced silently. A new run into it is refused before any work, with the ways on named;
// `--overwrite` clears it; `--resume DIR` / `--resume auto` name its checkpoint.
import { existsSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

import { UsageError } from "../errors.js";

/** The latest checkpoint of a run, in every run folder (main_moco.py's and main_lincls.py's name). */
export const LATEST_CHECKPOINT = "checkpoint.pth.tar";

/**
 * The files a run writes. `--overwrite` removes these and nothing else: `--out` may point at a
 * folder that holds other things (a mistyped path, the data itself), which must survive.
 */
const RUN_FILES = new Set([
  "config.json",
  "metrics.jsonl",
  "summary.json",
  "run.json",
  "subset.json",
  LATEST_CHECKPOINT,
  "model_best.pth.tar",
]);
const EPOCH_CHECKPOINT = /^checkpoint_\d{4,}\.pth\.tar$/;

/** main_moco.py's name for the checkpoint kept after the epoch of 0-based index `epochIndex`. */
export function epochCheckpointName(epochIndex: number): string {
  return `checkpoint_${String(epochIndex).padStart(4, "0")}.pth.tar`;
}

/** Whether `dir` holds a run: its latest checkpoint exists. */
export function holdsRun(dir: string): boolean {
  return existsSync(join(dir, LATEST_CHECKPOINT));
}

/**
 * Refuses a run into `out` that would replace another run's files: `out` holds a checkpoint and the
 * run neither continues it (`resume` is a checkpoint in `out`) nor was told to `overwrite` it.
 */
export function checkRunFolder(out: string, options: { resume: string | null; overwrite: boolean }): void {
  if (options.overwrite || !holdsRun(out)) return;
  if (options.resume !== null && resolve(dirname(options.resume)) === resolve(out)) return;
  const continuing =
    options.resume === null
      ? `continue it with --resume ${out} (or --resume auto)`
      : `continue that run instead with --resume ${out}`;
  throw new UsageError(
    `${out} already holds a run (${LATEST_CHECKPOINT}); ${continuing}, replace it with --overwrite, ` +
      "or write this run elsewhere with --out DIR",
  );
}

/** Removes the files of a run from `out` (see RUN_FILES); the folder and anything else in it stay. */
export function clearRunFolder(out: string): void {
  if (!existsSync(out)) return;
  for (const name of readdirSync(out)) {
    if (RUN_FILES.has(name) || EPOCH_CHECKPOINT.test(name)) rmSync(join(out, name), { force: true });
  }
}

/**
 * What `--resume` names, as a checkpoint file: a file as is, a run folder's latest checkpoint, or
 * with "auto" the `out` folder's latest checkpoint when there is one (null: start afresh).
 */
export function resolveResume(resume: string, out: string): string | null {
  if (resume === "auto") return holdsRun(out) ? join(out, LATEST_CHECKPOINT) : null;
  if (existsSync(resume) && statSync(resume).isDirectory()) {
    if (!holdsRun(resume)) throw new UsageError(`--resume ${resume}: no ${LATEST_CHECKPOINT} in that folder`);
    return join(resume, LATEST_CHECKPOINT);
  }
  return resume;
}
