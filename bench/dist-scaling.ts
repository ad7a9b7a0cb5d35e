// Issue 6's benchmark: what data parallelism over processes costs on one machine. (a) MoCo training
// throughput of moco-fmnist-step's global workload (batch 256) run as `moco pretrain
// --nproc-per-node 2` runs it: 2 ranks over Gloo on 127.0.0.1, each with half the threads and half
// the batch, shuffle BN and key gather across the ranks, gradients averaged in 25 MB buckets
// (bench/dist-scaling-worker.ts). Its bound is moco-fmnist-step's throughput, one process with all
// the threads (2 × 1 against 1 × 2 by default), so ours/bound is the scaling ratio. (b) The share of
// the 2-process step time spent inside collectives (all-reduce, all-gather, broadcast), averaged over
// the ranks; a collective's time includes its wait for the other rank. (c) The all-reduce bandwidth of a ResNet-50-sized
// gradient (25.6 M float32) between the 2 processes, as nccl-tests' all_reduce_perf reports it:
// algorithm bandwidth, bytes / time, and bus bandwidth, 2(n−1)/n · bytes / time. (b) and (c) have
// neither a Python side nor a bound: they are shown as ours alone.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { WorkerPlan, WorkerReport } from "./dist-scaling-worker.js";
import { median, type BenchEntry } from "./framework.js";
import { FMNIST } from "./moco-train-step.js";
import { freePort } from "../src/dist/free-port.js";

const here = dirname(fileURLToPath(import.meta.url));
const WORLD_SIZE = 2;
/** ResNet-50's parameter count: the gradient of the all-reduce measurement. */
const RESNET50_PARAMS = 25_600_000;
/** The rendezvous waits this long for the other rank to start; a collective, for the other rank to arrive. */
const RANK_TIMEOUT_MS = 60_000;
/** Every rank is killed after this long, well within the bench's limit for this entry's process. */
const JOB_DEADLINE_MS = 4 * 60_000;

interface Exit {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs the worker as the ranks of a job on 127.0.0.1 and returns their reports. When a rank fails
 * or the deadline passes, the ranks still running are killed; it settles only once all have exited.
 */
async function runRanks(plan: WorkerPlan): Promise<WorkerReport[]> {
  const port = await freePort();
  const threads = String(plan.threads);
  const ranks = Array.from({ length: WORLD_SIZE }, (_, rank) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(here, "dist-scaling-worker.ts"), JSON.stringify(plan)],
      {
        env: {
          ...process.env,
          MASTER_ADDR: "127.0.0.1",
          MASTER_PORT: String(port),
          RANK: String(rank),
          WORLD_SIZE: String(WORLD_SIZE),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(WORLD_SIZE),
          OMP_NUM_THREADS: threads,
          MKL_NUM_THREADS: threads,
          OPENBLAS_NUM_THREADS: threads,
          MOCO_BENCH_SUPERVISOR_PID: String(process.pid),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<Exit>((resolve) => {
      child.on("error", (error) => {
        stderr += error.message;
        resolve({ rank, code: null, signal: null });
      });
      child.on("close", (code, signal) => resolve({ rank, code, signal }));
    });
    return { child, exited, output: () => ({ stdout, stderr }) };
  });

  const killAll = () => {
    for (const { child } of ranks) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  const job = { timedOut: false, failures: [] as Exit[] };
  const deadline = setTimeout(() => {
    job.timedOut = true;
    killAll();
  }, JOB_DEADLINE_MS);
  // The first failure ends the job: the other rank would otherwise wait for it until its timeout.
  await Promise.all(
    ranks.map(({ exited }) =>
      exited.then((result) => {
        if (result.code === 0) return;
        job.failures.push(result);
        killAll();
      }),
    ),
  );
  clearTimeout(deadline);
  const [failure] = job.failures;
  if (failure !== undefined) {
    const { rank, code, signal } = failure;
    const { stderr } = ranks[rank]?.output() ?? { stderr: "" };
    const why = job.timedOut
      ? `the ranks did not finish within ${JOB_DEADLINE_MS / 1000} s and were killed`
      : `rank ${rank} exited with ${code ?? signal ?? "no status"}`;
    throw new Error(
      `dist-scaling: ${why}; rank ${rank}'s stderr ends with:\n${stderr.trim().split("\n").slice(-15).join("\n")}`,
    );
  }
  return ranks.map(({ output }, rank) => {
    const line = output().stdout.trim().split("\n").pop() ?? "";
    try {
      return JSON.parse(line) as WorkerReport;
    } catch {
      throw new Error(`dist-scaling: rank ${rank} printed no JSON report; its output ended with: ${line.slice(-300)}`);
    }
  });
}

/** Element-wise maximum over the ranks: a collective job's step lasts as long as its slowest rank's. */
function slowest(perRank: readonly (readonly number[])[]): number[] {
  return (perRank[0] ?? []).map((_, i) => Math.max(...perRank.map((values) => values[i] ?? Number.NaN)));
}

export const distScaling: BenchEntry = {
  name: "dist-scaling",
  description:
    `moco-fmnist-step's workload (global batch ${FMNIST.batch}) over ${WORLD_SIZE} processes on Gloo/127.0.0.1 ` +
    `(vs 1 process), time in collectives, all-reduce of 25.6 M float32`,
  rounds: 2,
  metrics: [
    {
      key: "images_per_s",
      label: `training throughput, ${WORLD_SIZE} processes × threads/${WORLD_SIZE}`,
      unit: "images/s",
      better: "higher",
      digits: 1,
      informational: true,
      bound: { entry: "moco-fmnist-step", key: "images_per_s", label: "1 process × threads (moco-fmnist-step)" },
    },
    {
      key: "collective_pct",
      label: `share of the ${WORLD_SIZE}-process step in collectives`,
      unit: "%",
      better: "lower",
      digits: 1,
      informational: true,
    },
    {
      key: "allreduce_gb_per_s",
      label: `all-reduce 25.6 M float32, ${WORLD_SIZE} processes: algorithm bandwidth`,
      unit: "GB/s",
      better: "higher",
      digits: 2,
      informational: true,
    },
    {
      key: "allreduce_bus_gb_per_s",
      label: `all-reduce 25.6 M float32, ${WORLD_SIZE} processes: bus bandwidth`,
      unit: "GB/s",
      better: "higher",
      digits: 2,
      informational: true,
    },
  ],
  async runOurs({ threads, quick }) {
    const plan: WorkerPlan = {
      threads: Math.max(1, Math.floor(threads / WORLD_SIZE)),
      warmupSteps: quick ? 1 : 2,
      steps: quick ? 2 : 12,
      allReduceValues: RESNET50_PARAMS,
      allReduceRepeats: quick ? 3 : 20,
      timeoutMs: RANK_TIMEOUT_MS,
    };
    const reports = await runRanks(plan);
    const stepSeconds = slowest(reports.map((r) => r.stepSeconds));
    const allReduceSeconds = slowest(reports.map((r) => r.allReduceSeconds));
    const bytes = RESNET50_PARAMS * 4;
    const algorithmBandwidth = bytes / median(allReduceSeconds) / 1e9;
    const collectiveShares = reports.map(
      (r) => r.collectiveSeconds.reduce((a, b) => a + b, 0) / r.stepSeconds.reduce((a, b) => a + b, 0),
    );
    return {
      values: {
        images_per_s: FMNIST.batch / median(stepSeconds),
        collective_pct: (100 * collectiveShares.reduce((a, b) => a + b, 0)) / collectiveShares.length,
        allreduce_gb_per_s: algorithmBandwidth,
        allreduce_bus_gb_per_s: ((2 * (WORLD_SIZE - 1)) / WORLD_SIZE) * algorithmBandwidth,
      },
      details: {
        world_size: WORLD_SIZE,
        threads_per_rank: reports.map((r) => r.threads),
        global_batch: FMNIST.batch,
        batch_per_rank: FMNIST.batch / WORLD_SIZE,
        bn_splits_per_rank: FMNIST.bnSplits / WORLD_SIZE,
        moco: FMNIST.settings,
        warmup: plan.warmupSteps,
        steps: plan.steps,
        step_seconds_slowest_rank: stepSeconds,
        collective_pct_by_rank: collectiveShares.map((s) => 100 * s),
        gradient_bytes: reports[0]?.gradientBytes,
        allreduce_bytes: bytes,
        allreduce_repeats: plan.allReduceRepeats,
        allreduce_seconds_slowest_rank: allReduceSeconds,
        ranks: reports,
      },
    };
  },
};
