// One process of the distributed MoCo tests (dist-moco.test.ts): a tiny MoCo trained for a few
// steps, either in one process with a 2× batch and split BN ("single"), or as one rank of several
// ("ranks", env://). Prints one JSON line: losses, final parameters, queue, live tensors.
import {
  GradientAverager,
  broadcastState,
  crossRankKeyGather,
  crossRankShuffle,
  initDistributed,
  type ProcessGroup,
} from "../../src/dist/index.js";
import { MoCo, noShuffle, singleProcessGather, type MoCoOptions } from "../../src/moco/index.js";
import { resnet, splitBatchNorm, type ResNet } from "../../src/nn/index.js";
import { SGD } from "../../src/optim/index.js";
import {
  F,
  arange,
  liveTensors,
  manualSeed,
  noGrad,
  randn,
  scope,
  setNumThreads,
  type Tensor,
} from "../../src/torch/index.js";

setNumThreads(1);
// Arguments: single|ranks, shuffle|noshuffle, steps, lr. 16×16 images: at 8×8 the last stage of a
// CIFAR-stem ResNet sees 1×1 maps, whose BN over 8 values amplifies rounding differences.
const [mode = "single", shuffleArg = "noshuffle", stepsArg = "20", lrArg = "0.02"] = process.argv.slice(2);
const steps = Number(stepsArg);
const globalBatch = 16;
const shuffle = shuffleArg === "shuffle";
const size = 16;

let group: ProcessGroup | null = null;
if (mode === "ranks") group = (await initDistributed({ timeoutMs: 30_000 })).group;
const worldSize = group?.worldSize ?? 1;
const rank = group?.rank ?? 0;

manualSeed(rank === 0 ? 0 : 1000 + rank); // other ranks start elsewhere: the broadcast must fix it
const normLayer = mode === "single" ? splitBatchNorm(2) : undefined;
const encoder = (outputs: number): ResNet =>
  resnet("resnet18", { numClasses: outputs, width: 4, cifarStem: true, ...(normLayer ? { normLayer } : {}) });
const options: MoCoOptions =
  group === null
    ? { shuffle: noShuffle, gatherKeys: singleProcessGather }
    : { shuffle: shuffle ? crossRankShuffle(group) : noShuffle, gatherKeys: crossRankKeyGather(group) };
const model = new MoCo(encoder, { dim: 16, K: globalBatch * 3, m: 0.99, T: 0.2, mlp: true, symmetric: false }, options);
if (group !== null) broadcastState(group, model);
const optimizer = new SGD(model.parameters(), { lr: Number(lrArg), momentum: 0.9, weightDecay: 5e-4 });
const averager = group === null ? null : new GradientAverager(group, model.parameters(), { bucketBytes: 64 * 1024 });

// A fixed pool of 4 global batches of instances, visited in turn; each step shows two noisy views
// of one batch. The queue (3 batches) then never holds keys of the step's own instances.
manualSeed(7);
const pool = noGrad(() => randn([4 * globalBatch, 3, size, size]));
const initial = model.encoderQ.parameters().map((p) => p.clone());
const losses: number[] = [];
let baseline = 0; // taken after the first step, which creates the optimizer's momentum buffers
for (let step = 0; step < steps; step++) {
  if (step === 1) baseline = liveTensors();
  manualSeed(100 + step); // the same views in every process, whatever each drew before
  const loss = scope(() => {
    const noise = (t: Tensor) => t.add(randn(t.shape).mul(0.3));
    // Rank r takes instances r, r + W, r + 2W, … as DistributedSampler does: split BN's split s
    // holds exactly those (its view(-1, C·splits, H, W) interleaves the samples).
    const first = (step % 4) * globalBatch;
    const mine = arange(first + rank, first + globalBatch, worldSize, { dtype: "int64" });
    const batch = pool.narrow(0, first, globalBatch);
    const q = noise(batch).indexSelect(0, mine.sub(first));
    const k = noise(batch).indexSelect(0, mine.sub(first));
    manualSeed(500 + step); // rank 0's shuffle permutation is then the same in every run
    const [out] = model.forward(q, k);
    if (out === undefined) throw new Error("no output");
    const l = F.crossEntropy(out.logits, out.labels);
    optimizer.zeroGrad();
    l.backward();
    averager?.average();
    optimizer.step();
    return l.item();
  });
  losses.push(loss);
}
const live = liveTensors() - baseline;
const moved = Math.max(
  ...model.encoderQ.parameters().map((p, i) =>
    p
      .sub(initial[i] as Tensor)
      .abs()
      .max()
      .item(),
  ),
);
const flat = (ts: [string, Tensor][]) => Object.fromEntries(ts.map(([name, t]) => [name, t.toArray()]));
console.log(
  JSON.stringify({
    rank,
    losses,
    live,
    moved,
    buckets: averager?.buckets.length ?? 0,
    params: flat(model.namedParameters()),
    queue: model.queue.toArray(),
    queuePtr: model.queuePtr.item(),
  }),
);
group?.dispose();
