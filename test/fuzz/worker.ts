// One fuzzing process: runs targets in turn for their time, reporting findings as JSON lines on
// stdout and its position (target, input) in a progress file that the supervisor (run.ts) watches,
// so that a hang or a crash of this process still names the input that caused it.
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { mutate } from "./mutate.js";
import { TARGETS } from "./targets.js";

export interface WorkerJob {
  readonly targets: readonly string[];
  readonly seedsDir: string;
  readonly seed: number;
  /** First input per target. */
  readonly starts: Readonly<Record<string, number>>;
  /** Per target, how long to run it (from when this process starts it). */
  readonly budgetsMs: Readonly<Record<string, number>>;
  readonly progressPath: string;
  /** An input that returns after more than this is a finding (a hang the supervisor catches). */
  readonly timeLimitMs: number;
  /** Resident memory above the process's start by more than this is a finding. */
  readonly memoryLimitBytes: number;
}

export type FindingKind = "crash" | "hang" | "memory";

export interface Finding {
  readonly kind: FindingKind;
  readonly target: string;
  readonly iteration: number;
  readonly message: string;
}

/** Errors the engine throws for bugs, never ones a reader means to throw about a file. */
const ENGINE_ERRORS = [RangeError, TypeError, ReferenceError, SyntaxError, EvalError, URIError];

/** Why an exception is not a clean refusal, or null when it is one. */
export function unclean(error: unknown, label: string): string | null {
  if (!(error instanceof Error)) return `threw a non-Error: ${String(error)}`;
  const name = error.constructor.name;
  if (ENGINE_ERRORS.some((cls) => error.constructor === cls)) return `${name}: ${error.message}`;
  if (!error.message.includes(label)) return `${name} without the file's name: ${error.message}`;
  return null;
}

function main(job: WorkerJob): void {
  const progress = openSync(job.progressPath, "r+");
  const position = new Float64Array(2);
  const work = mkdtempSync(join(tmpdir(), "moco-fuzz-"));
  const baseline = process.memoryUsage.rss();
  const report = (line: object): void => void process.stdout.write(`${JSON.stringify(line)}\n`);
  try {
    for (const [index, name] of job.targets.entries()) {
      const target = TARGETS.find((t) => t.name === name);
      if (target === undefined) throw new Error(`no fuzz target '${name}'`);
      const seeds = target.seeds.map((file) => {
        const bytes = new Uint8Array(readFileSync(join(job.seedsDir, file)));
        return target.derive?.(bytes) ?? bytes;
      });
      const end = Date.now() + (job.budgetsMs[name] ?? 0);
      report({ start: name });
      let iteration = job.starts[name] ?? 0;
      for (; Date.now() < end; iteration++) {
        position[0] = index;
        position[1] = iteration;
        writeSync(progress, position, 0, 16, 0);
        const input = mutate(seeds, job.seed, name, iteration);
        const started = performance.now();
        let problem: { kind: FindingKind; message: string } | null = null;
        try {
          const label = target.run(input, work);
          void label;
        } catch (error) {
          const label = name === "checkpoint" || name === "pickle" ? "fuzz-input.pt" : work;
          const why = unclean(error, label);
          if (why !== null) problem = { kind: "crash", message: why };
        }
        const ms = performance.now() - started;
        if (problem === null && ms > job.timeLimitMs) problem = { kind: "hang", message: `took ${Math.round(ms)} ms` };
        const grown = process.memoryUsage.rss() - baseline;
        if (problem === null && grown > job.memoryLimitBytes) {
          problem = { kind: "memory", message: `resident memory grew by ${Math.round(grown / 2 ** 20)} MB` };
        }
        if (problem !== null) {
          report({ finding: { ...problem, target: name, iteration } });
          if (problem.kind === "memory") {
            report({ restart: name, next: iteration + 1 });
            return; // a fresh process starts from the next input
          }
        }
      }
      report({ done: name, next: iteration });
    }
  } finally {
    closeSync(progress);
    rmSync(work, { recursive: true, force: true });
  }
}

if (process.argv[2] !== undefined) main(JSON.parse(process.argv[2]) as WorkerJob);
