// The fuzz supervisor: runs worker.ts in a child process and watches it. An input that runs past
// the time limit is a hang (the child is killed), a child that dies is a crash, one whose resident
// memory passes the hard cap is a memory excess; each names its input, which is then rebuilt from
// (seed, target, iteration) and, when asked, saved as a regression file under test/.
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

import { mutate } from "./mutate.js";
import { TARGETS } from "./targets.js";
import type { Finding, WorkerJob } from "./worker.js";

const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

export interface FuzzOptions {
  readonly seedsDir: string;
  readonly targets?: readonly string[];
  /** Seconds per target. */
  readonly secondsPerTarget: number;
  readonly seed?: number;
  /** Per-input time limit (default 5 s). */
  readonly timeLimitMs?: number;
  /** Resident-memory growth that counts as an excess (default 1 GiB). */
  readonly memoryLimitBytes?: number;
  /** Where to save each finding's input (e.g. test/fuzz-regressions); none when absent. */
  readonly saveDir?: string;
}

export interface FuzzResult {
  readonly inputs: Record<string, number>;
  readonly findings: (Finding & { saved?: string })[];
  readonly seconds: number;
}

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = /VmRSS:\s+(\d+)/.exec(status);
    return kb === null ? 0 : Number(kb[1]) * 1024;
  } catch {
    return 0;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzResult> {
  const seed = options.seed ?? 1;
  const timeLimitMs = options.timeLimitMs ?? 5000;
  const memoryLimitBytes = options.memoryLimitBytes ?? 2 ** 30;
  const started = Date.now();
  const names = options.targets ?? TARGETS.map((t) => t.name);
  // Time left per target; a worker's start-up is not counted, a restarted target keeps its rest.
  const budgetsMs: Record<string, number> = Object.fromEntries(names.map((n) => [n, options.secondsPerTarget * 1000]));
  const startedAt: Record<string, number> = {};
  const starts: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const findings: (Finding & { saved?: string })[] = [];
  const progressPath = join(tmpdir(), `moco-fuzz-progress-${process.pid}-${Date.now()}`);
  let remaining = [...names];

  while (remaining.length > 0) {
    writeFileSync(progressPath, new Uint8Array(16).fill(0xff));
    const job: WorkerJob = {
      targets: remaining,
      seedsDir: options.seedsDir,
      seed,
      starts,
      budgetsMs,
      progressPath,
      timeLimitMs,
      memoryLimitBytes,
    };
    const child = spawn(process.execPath, ["--import", "tsx", WORKER, JSON.stringify(job)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    let buffered = "";
    const finished = new Set<string>();
    child.stderr.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child.stdout.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffered.slice(0, newline)) as {
          finding?: Finding;
          start?: string;
          done?: string;
          restart?: string;
          next?: number;
        };
        buffered = buffered.slice(newline + 1);
        if (line.finding !== undefined) findings.push(line.finding);
        if (line.start !== undefined) startedAt[line.start] = Date.now();
        if (line.done !== undefined) {
          finished.add(line.done);
          starts[line.done] = line.next ?? 0;
        }
        if (line.restart !== undefined) {
          starts[line.restart] = line.next ?? 0;
          budgetsMs[line.restart] =
            (budgetsMs[line.restart] ?? 0) - (Date.now() - (startedAt[line.restart] ?? Date.now()));
        }
      }
    });
    const readPosition = (): [number, number] => {
      const fd = openSync(progressPath, "r");
      const position = new Float64Array(2);
      readSync(fd, position, 0, 16, 0);
      closeSync(fd);
      return [position[0]!, position[1]!];
    };
    let last = readPosition();
    let lastChange = Date.now();
    const killed: { for: "hang" | "memory" | null } = { for: null };
    const watch = setInterval(() => {
      const now = readPosition();
      if (now[0] !== last[0] || now[1] !== last[1]) {
        last = now;
        lastChange = Date.now();
      } else if (!Number.isNaN(now[1]) && Date.now() - lastChange > timeLimitMs) {
        killed.for = "hang";
        child.kill("SIGKILL");
      }
      if (child.pid !== undefined && rssOf(child.pid) > 2 * memoryLimitBytes + 512 * 2 ** 20) {
        killed.for = "memory";
        child.kill("SIGKILL");
      }
    }, 100);
    const code = await new Promise<number | null>((resolve) => child.once("close", (c) => resolve(c)));
    clearInterval(watch);
    const [targetIndex, iteration] = readPosition();
    const target = remaining[targetIndex];
    if (code !== 0 && target !== undefined && !Number.isNaN(iteration)) {
      const kind = killed.for ?? "crash";
      const message =
        kind === "hang"
          ? `no progress for ${timeLimitMs} ms`
          : kind === "memory"
            ? "resident memory past the hard cap"
            : `the process died (${code}): ${stderr.trim().split("\n").slice(-3).join(" | ")}`;
      findings.push({ kind, target, iteration, message });
      starts[target] = iteration + 1;
      budgetsMs[target] = (budgetsMs[target] ?? 0) - (Date.now() - (startedAt[target] ?? Date.now()));
      remaining = remaining.slice(targetIndex);
    } else if (code !== 0) {
      throw new Error(`fuzz worker failed before its first input (${code}): ${stderr}`);
    } else {
      remaining = remaining.filter((name) => !finished.has(name));
      // A worker that stopped for a memory restart continues where it left off.
    }
    remaining = remaining.filter((name) => (budgetsMs[name] ?? 0) > 0);
  }

  if (options.saveDir !== undefined) {
    mkdirSync(options.saveDir, { recursive: true });
    for (const finding of findings) {
      const target = TARGETS.find((t) => t.name === finding.target)!;
      const seeds = target.seeds.map((file) => {
        const bytes = new Uint8Array(readFileSync(join(options.seedsDir, file)));
        return target.derive?.(bytes) ?? bytes;
      });
      const path = join(options.saveDir, `${finding.target}-${finding.kind}-s${seed}-i${finding.iteration}.bin`);
      writeFileSync(path, mutate(seeds, seed, finding.target, finding.iteration));
      finding.saved = path;
    }
  }
  const inputs = Object.fromEntries(names.map((name) => [name, starts[name] ?? 0]));
  return { inputs, findings, seconds: (Date.now() - started) / 1000 };
}
