// The phase timer of the training step (src/moco/phases.ts): told each phase once per step, in order,
// and without effect on what the step computes.
import assert from "node:assert/strict";
import { test } from "node:test";

import { mocoV2Config, TwoViewAugment } from "../src/data/augment.js";
import { TensorImageDataset } from "../src/data/dataset.js";
import { DataLoader } from "../src/data/loader.js";
import { MoCo, PhaseClock, STEP_PHASES, type MoCoSettings, type StepPhase } from "../src/moco/index.js";
import { resnet18, splitBatchNorm } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import {
  fromTypedArray,
  manualSeed,
  randn,
  resolvePrecision,
  scope,
  type ResolvedPrecision,
  type Tensor,
} from "../src/torch/index.js";
import { pretrainStep } from "../src/train/pretrain.js";

const SETTINGS: MoCoSettings = { dim: 8, K: 32, m: 0.9, T: 0.2, mlp: true, symmetric: false };
const BATCH = 8;
const FP32 = resolvePrecision({ precision: "fp32", channelsLast: "off" });
const AUTO = resolvePrecision({ precision: "auto", channelsLast: "auto" });

function images(n: number): TensorImageDataset {
  const pixels = new Uint8Array(n * 16 * 16);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 37 + (i >> 4) * 11) % 256;
  return new TensorImageDataset({
    name: "test images",
    images: fromTypedArray(pixels, [n, 1, 16, 16], "uint8"),
    labels: null,
    classNames: [],
    stats: { mean: [0.5], std: [0.25] },
  });
}

interface Run {
  losses: number[];
  state: Map<string, Tensor>;
  momentum: Tensor[];
  dispose(): void;
}

/** `steps` steps of pretrain.ts's step from a fixed seed, with `phases` passed to it (or none). */
async function train(
  steps: number,
  precision: ResolvedPrecision,
  phases?: { lap(phase: StepPhase): void; start?(): void },
  settings: Partial<MoCoSettings> = {},
): Promise<Run> {
  manualSeed(3);
  const model = new MoCo(
    (outputs) =>
      resnet18({ numClasses: outputs, width: 4, cifarStem: true, inChannels: 1, normLayer: splitBatchNorm(2) }),
    { ...SETTINGS, ...settings },
  ).train();
  if (precision.channelsLast) model.to({ memoryFormat: "channelsLast" });
  const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const dataset = images(2 * BATCH);
  const views = new TwoViewAugment(mocoV2Config({ size: 16, stats: dataset.stats, scale: [0.5, 1] }), { seed: 1 });
  const loader = new DataLoader(dataset, { batchSize: BATCH, seed: 2 });
  const step = pretrainStep(model, views, optimizer, undefined, precision, null, phases);
  const losses: number[] = [];
  for (let epoch = 0; losses.length < steps; epoch++) {
    for await (const batch of loader.batches(epoch)) {
      phases?.start?.();
      losses.push(scope(() => step(batch)).loss);
      batch.dispose();
      if (losses.length === steps) break;
    }
  }
  dataset.dispose();
  const momentum = model.parameters().flatMap((p) => {
    const buf = optimizer.stateOf(p)?.momentum_buffer;
    return buf === null || buf === undefined ? [] : [buf];
  });
  return {
    losses,
    state: model.stateDict(),
    momentum,
    dispose: () => {
      optimizer.dispose();
      model.dispose();
    },
  };
}

function assertSameBits(a: Run, b: Run): void {
  assert.deepEqual(a.losses, b.losses);
  assert.deepEqual([...a.state.keys()], [...b.state.keys()]);
  for (const [name, t] of a.state) assert.ok(t.equal(b.state.get(name) as Tensor), `${name} differs`);
  assert.equal(a.momentum.length, b.momentum.length);
  a.momentum.forEach((t, i) => assert.ok(t.equal(b.momentum[i] as Tensor), `momentum buffer ${i} differs`));
}

test("the phase timer is told each phase once per step, in the step's order", async () => {
  const calls: StepPhase[] = [];
  const run = await train(3, FP32, { lap: (phase) => calls.push(phase) });
  run.dispose();
  assert.deepEqual(calls, [...STEP_PHASES, ...STEP_PHASES, ...STEP_PHASES]);
});

test("with the symmetric loss, query, key and logits are told once per direction", async () => {
  const calls: StepPhase[] = [];
  const run = await train(1, FP32, { lap: (phase) => calls.push(phase) }, { symmetric: true, K: 32 });
  run.dispose();
  assert.deepEqual(calls, [
    "data",
    "momentum",
    ...["query", "key", "logits"],
    ...["query", "key", "logits"],
    "enqueue",
    "loss",
    "backward",
    "optimizer",
  ]);
});

for (const [name, precision] of [
  ["float32", FP32],
  ["auto precision", AUTO],
] as const) {
  test(`the step gives the same bits with and without a phase timer (${name})`, async () => {
    const without = await train(3, precision);
    const clock = new PhaseClock();
    const withTimer = await train(3, precision, clock);
    try {
      assertSameBits(without, withTimer);
      for (const phase of STEP_PHASES) {
        assert.equal(clock.laps.get(phase), 3, `${phase}: one lap per step`);
        assert.ok((clock.seconds.get(phase) ?? -1) >= 0);
      }
    } finally {
      without.dispose();
      withTimer.dispose();
    }
  });
}

test("PhaseClock waits for the device (sync) before each reading and sums laps per phase", () => {
  let syncs = 0;
  const clock = new PhaseClock({ sync: () => syncs++ });
  clock.start();
  scope(() => randn([64, 64]).mm(randn([64, 64])));
  clock.lap("query");
  clock.lap("key");
  clock.start();
  clock.lap("query");
  assert.equal(syncs, 5);
  assert.equal(clock.laps.get("query"), 2);
  assert.equal(clock.laps.get("key"), 1);
  assert.ok((clock.seconds.get("query") ?? 0) > 0);
  clock.reset();
  assert.equal(clock.laps.size, 0);
});
