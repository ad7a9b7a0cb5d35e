// Runs a script as the ranks of a distributed job on 127.0.0.1: one Node child per rank, with the
// env:// variables set, as torchrun would.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/dist/free-port.js";

export { freePort };

export const HELPERS = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HELPERS, "..", "..");

export interface RankResult {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Seconds from the spawn to the exit. */
  seconds: number;
}

export interface SpawnRanksOptions {
  worldSize: number;
  /** Only these ranks are started (default all): the others never show up. */
  ranks?: number[];
  env?: Record<string, string>;
  /** Kills every child after this long (default 60 s). */
  killAfterMs?: number;
}

/** Starts `script` (a .ts file in test/helpers) once per rank and resolves when all have exited. */
export async function spawnRanks(script: string, args: string[], options: SpawnRanksOptions): Promise<RankResult[]> {
  const port = await freePort();
  const ranks = options.ranks ?? Array.from({ length: options.worldSize }, (_, r) => r);
  const children = ranks.map((rank) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["--import", "tsx", join(HELPERS, script), ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        MASTER_ADDR: "127.0.0.1",
        MASTER_PORT: String(port),
        RANK: String(rank),
        WORLD_SIZE: String(options.worldSize),
        LOCAL_RANK: String(rank),
        OMP_NUM_THREADS: "1",
        ...options.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.killAfterMs ?? 60_000);
    return new Promise<RankResult>((resolve) => {
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ rank, code, signal, stdout, stderr, seconds: (Date.now() - started) / 1000 });
      });
    });
  });
  return Promise.all(children);
}

/** The last line of a rank's stdout, parsed as JSON (workers report that way). */
export function report<T>(result: RankResult): T {
  const lines = result.stdout.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(
      `rank ${result.rank} (exit ${String(result.code)}) printed no JSON report:\n${result.stdout}\n${result.stderr}`,
    );
  }
}
