// One rank of the dist-scaling bench (bench/dist-scaling.ts), which starts it with the env://
// variables set. It trains moco-fmnist-step's workload as `moco pretrain --nproc-per-node N` does
// (its share of the global batch, BN splits per rank, shuffle BN and key gather across the ranks,
// bucketed gradient average), timing each step and the collectives inside it; then it times
// all-reduces of a ResNet-50-sized gradient. Prints one JSON line (WorkerReport).
//
// Argument: a WorkerPlan as JSON.
import { setImmediate as eventLoopTurn } from "node:timers/promises";

import { dataParallel, initDistributed, type ProcessGroup } from "../src/dist/index.js";
import { MoCo } from "../src/moco/index.js";
import { resnet18, splitBatchNorm } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import * as torch from "../src/torch/index.js";
import { now, peakRssMiB } from "./framework.js";
import { FMNIST, mocoStep } from "./moco-train-step.js";

export interface WorkerPlan {
  /** Intra-op threads of this rank. */
  threads: number;
  warmupSteps: number;
  steps: number;
  /** float32 values of the all-reduce measurement. */
  allReduceValues: number;
  allReduceRepeats: number;
  /** Rendezvous and collective timeout. */
  timeoutMs: number;
}

type Collective = "allReduce" | "allGather" | "broadcast";
type CollectiveTotals = Record<Collective, { seconds: number; calls: number }>;

export interface WorkerReport {
  rank: number;
  worldSize: number;
  threads: number;
  /** Wall time of each measured training step. */
  stepSeconds: number[];
  /** Time inside collectives during each measured step (waits for the other ranks included). */
  collectiveSeconds: number[];
  /** Over the measured steps, per kind of collective. */
  byCollective: CollectiveTotals;
  /** Gradient bytes averaged per step. */
  gradientBytes: number;
  /** Wall time of each measured all-reduce of plan.allReduceValues float32 values. */
  allReduceSeconds: number[];
  lastLoss: number;
  peakRssMiB: number;
  liveTensorsEnd: number;
}

function zeroTotals(): CollectiveTotals {
  return {
    allReduce: { seconds: 0, calls: 0 },
    allGather: { seconds: 0, calls: 0 },
    broadcast: { seconds: 0, calls: 0 },
  };
}

/**
 * Adds the time spent inside the group's collectives to `totals`, by wrapping this one instance's
 * methods: the shuffle, the key gather and the gradient average reach the other ranks only through
 * the group, so every collective of a step is counted and src/dist needs no hook.
 */
function timeCollectives(group: ProcessGroup, totals: CollectiveTotals): void {
  const timed = <R>(kind: Collective, run: () => R): R => {
    const t0 = now();
    try {
      return run();
    } finally {
      totals[kind].seconds += now() - t0;
      totals[kind].calls++;
    }
  };
  const { allReduce, allGather, broadcast } = group;
  group.allReduce = (...args) => timed("allReduce", () => allReduce.apply(group, args));
  group.allGather = (...args) => timed("allGather", () => allGather.apply(group, args));
  group.broadcast = (...args) => timed("broadcast", () => broadcast.apply(group, args));
}

function parsePlan(arg: string | undefined): WorkerPlan {
  const plan = JSON.parse(arg ?? "null") as Partial<WorkerPlan> | null;
  const keys = ["threads", "warmupSteps", "steps", "allReduceValues", "allReduceRepeats", "timeoutMs"] as const;
  if (plan === null || keys.some((k) => !Number.isSafeInteger(plan[k]) || (plan[k] as number) < 0)) {
    throw new Error(`dist-scaling-worker: expected a plan with integer ${keys.join(", ")}; got ${String(arg)}`);
  }
  return plan as WorkerPlan;
}

const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);

const plan = parsePlan(process.argv[2]);
// Started by the bench: when it dies (even by SIGKILL), this rank must not stay behind. The loops
// below await an event-loop turn before each step so that this check runs between steps.
const supervisor = Number(process.env["MOCO_BENCH_SUPERVISOR_PID"]);
if (Number.isSafeInteger(supervisor)) {
  setInterval(() => {
    if (process.ppid !== supervisor) process.exit(1);
  }, 500).unref();
}

torch.setNumThreads(plan.threads);
const { group } = await initDistributed({ timeoutMs: plan.timeoutMs });
const stepTotals = zeroTotals();
timeCollectives(group, stepTotals);
const parallel = dataParallel(group);
const c = FMNIST;

// As src/train/pretrain.ts's buildModel on each rank: its share of the global batch, and BN groups
// of the same size as one process's (rankLayout).
torch.manualSeed(0);
const normLayer = splitBatchNorm(c.bnSplits / group.worldSize);
const model = new MoCo(
  (outputs) => resnet18({ numClasses: outputs, width: c.width, cifarStem: true, inChannels: c.inChannels, normLayer }),
  c.settings,
  { shuffle: parallel.shuffle, gatherKeys: parallel.gatherKeys },
).train();
parallel.broadcastState(model);
const opt = new SGD(model.parameters(), { lr: c.lr, momentum: 0.9, weightDecay: 5e-4 });
const averageGradients = parallel.gradientAverager(model.parameters());
const gradientBytes = sum(
  model.parameters().flatMap((p) => (p.requiresGrad ? [p.numel * torch.DTYPES[p.dtype].bytes] : [])),
);
const batch = c.batch / group.worldSize;
torch.manualSeed(1 + group.rank);
const imQ = torch.randn([batch, c.inChannels, c.size, c.size]);
const imK = torch.randn([batch, c.inChannels, c.size, c.size]);

const stepSeconds: number[] = [];
const collectiveSeconds: number[] = [];
const byCollective = zeroTotals();
let lastLoss = Number.NaN;
for (let i = 0; i < plan.warmupSteps + plan.steps; i++) {
  await eventLoopTurn();
  // The ranks start each step together, so that no step time holds the other rank's lag from the
  // step before (`moco pretrain`'s per-step stop check, an all-reduce, lines them up the same way).
  group.barrier();
  Object.assign(stepTotals, zeroTotals());
  const t0 = now();
  lastLoss = mocoStep(model, opt, imQ, imK, averageGradients);
  const seconds = now() - t0;
  if (i < plan.warmupSteps) continue;
  stepSeconds.push(seconds);
  collectiveSeconds.push(sum(Object.values(stepTotals).map((t) => t.seconds)));
  for (const [kind, t] of Object.entries(stepTotals) as [Collective, CollectiveTotals[Collective]][]) {
    byCollective[kind].seconds += t.seconds;
    byCollective[kind].calls += t.calls;
  }
}
opt.dispose();
model.dispose();
imQ.dispose();
imK.dispose();

// As nccl-tests' all_reduce_perf at one size, in place: a warm-up, then each repetition timed alone.
const gradient = torch.zeros([plan.allReduceValues]);
const allReduceSeconds: number[] = [];
for (let i = 0; i <= plan.allReduceRepeats; i++) {
  await eventLoopTurn();
  group.barrier();
  const t0 = now();
  group.allReduce(gradient, "sum");
  if (i > 0) allReduceSeconds.push(now() - t0);
}
gradient.dispose();

const report: WorkerReport = {
  rank: group.rank,
  worldSize: group.worldSize,
  threads: torch.getNumThreads(),
  stepSeconds,
  collectiveSeconds,
  byCollective,
  gradientBytes,
  allReduceSeconds,
  lastLoss,
  peakRssMiB: peakRssMiB(),
  liveTensorsEnd: torch.liveTensors(),
};
group.dispose();
console.log(JSON.stringify(report));
