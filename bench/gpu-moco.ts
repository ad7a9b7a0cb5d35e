// Issue #14's figures, on a GPU: ours against PyTorch eager on the same GPU (bench/py/gpu-moco.py),
// side by side in one invocation.
// - gpu-moco-v2-r50: the MoCo v2 step, ResNet-50 at 224×224, batch 256 (the paper's total batch, its
//   BN statistics over 8 splits of 32 as 8 GPUs of 32 have them), K 65536, m 0.999, T 0.2, MLP head.
// - gpu-moco-cifar: the CIFAR-10 demo's step, ResNet-18 (CIFAR stem), batch 512, 32×32, K 4096,
//   m 0.99, T 0.1, split BN 8.
// Both in float32 (TF32 convolutions, libtorch's default as PyTorch's) and as `--precision auto`
// decides on a GPU (bf16 autocast + channels-last) against torch.autocast("cuda", bfloat16) +
// channels_last; cuDNN's autotuner on for both; each step ends with the loss read on the host (the
// one synchronisation, as main_moco.py's loss.item()), and the clock is read after a synchronize.
// - gpu-cifar-epoch: the demo's epoch, data included: ours is `pretrain()` of the cifar preset on the
//   GPU (augmentation on the GPU), its second epoch's time; Python is the demo's DataLoader
//   (CIFAR10Pair, one worker per core, pin_memory) with the same step under bf16 autocast. The data
//   are synthetic CIFAR-10 binaries (no download on a GPU machine), the same bytes on both sides.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import type { MoCo } from "../src/moco/index.js";
import { SGD } from "../src/optim/index.js";
import {
  F,
  buildInfo,
  cuda,
  inLayout,
  manualSeed,
  randn,
  resolvePrecision,
  scope,
  withPrecision,
  type ResolvedPrecision,
  type Tensor,
} from "../src/torch/index.js";
import { COMMAND_LINE, resolveConfig, type PresetName } from "../src/train/config.js";
import type { BenchEntry, MetricSpec } from "./framework.js";
import { median, now } from "./framework.js";

const GPU = "cuda:0";
const SYNTHETIC_CIFAR = join(tmpdir(), "moco-bench-cifar10-synthetic");

const THROUGHPUT: MetricSpec = {
  key: "images_per_s",
  label: "training throughput, fp32 (TF32) both",
  unit: "images/s",
  better: "higher",
  target: 1.0,
  digits: 0,
};
const THROUGHPUT_AMP: MetricSpec = {
  ...THROUGHPUT,
  key: "images_per_s_auto",
  label: "training throughput, ours auto (bf16+CL) vs python bf16 autocast+CL",
};

async function noGpu(): Promise<string | null> {
  return buildInfo().cudaAvailable ? null : "no CUDA device (run scripts/device-check.sh on a GPU machine)";
}

interface StepShape {
  preset: PresetName;
  batch: number;
  size: number;
  bnSplits: number;
  lr: number;
  wd: number;
}

function model(shape: StepShape): Promise<MoCo> {
  return import("../src/train/pretrain.js").then(({ buildModel }) => {
    const config = resolveConfig(shape.preset, [
      {
        source: COMMAND_LINE,
        values: { device: GPU, bnSplits: shape.bnSplits, batchSize: shape.batch, imageSize: shape.size, out: "unused" },
      },
    ]);
    manualSeed(0);
    return buildModel(config, 3).train();
  });
}

/** Seconds per step (median) of the training step in `precision`, timed between synchronizes. */
async function stepSeconds(
  shape: StepShape,
  precision: ResolvedPrecision,
  warmup: number,
  steps: number,
): Promise<number[]> {
  const m = await model(shape);
  if (precision.channelsLast) m.to({ memoryFormat: "channelsLast" });
  const optimizer = new SGD(m.parameters(), { lr: shape.lr, momentum: 0.9, weightDecay: shape.wd });
  const q = inLayout(precision, randn([shape.batch, 3, shape.size, shape.size], { device: GPU }));
  const k = inLayout(precision, randn([shape.batch, 3, shape.size, shape.size], { device: GPU }));
  const seconds: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    cuda.synchronize(GPU);
    const t0 = now();
    scope(() => {
      const loss = withPrecision(precision, GPU, () => {
        const [out] = m.forward(q, k);
        return F.crossEntropy((out as { logits: Tensor }).logits.float(), (out as { labels: Tensor }).labels);
      });
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      return loss.item();
    });
    cuda.synchronize(GPU);
    if (i >= warmup) seconds.push(now() - t0);
  }
  for (const t of [q, k]) t.dispose();
  optimizer.dispose();
  m.dispose();
  return seconds;
}

function stepEntry(name: string, description: string, pythonConfig: string, shape: StepShape): BenchEntry {
  return {
    name,
    description,
    python: "gpu-moco.py",
    pythonArgs: ["--config", pythonConfig],
    rounds: 1,
    metrics: [THROUGHPUT, THROUGHPUT_AMP],
    unavailable: noGpu,
    async runOurs({ quick }) {
      cuda.setCudnnBenchmark(true);
      const warmup = quick ? 1 : pythonConfig === "r50" ? 3 : 5;
      const steps = quick ? 2 : pythonConfig === "r50" ? 10 : 20;
      const fp32 = resolvePrecision({ precision: "fp32", channelsLast: "off", device: GPU });
      const auto = resolvePrecision({ precision: "auto", channelsLast: "auto", device: GPU });
      const fp32Seconds = await stepSeconds(shape, fp32, warmup, steps);
      const autoSeconds = await stepSeconds(shape, auto, warmup, steps);
      return {
        values: {
          images_per_s: shape.batch / median(fp32Seconds),
          images_per_s_auto: shape.batch / median(autoSeconds),
        },
        details: { ...shape, fp32_step_seconds: fp32Seconds, auto_step_seconds: autoSeconds, auto: auto.reason },
      };
    },
  };
}

export const gpuMocoV2R50 = stepEntry(
  "gpu-moco-v2-r50",
  "GPU: MoCo v2 step, ResNet-50 224×224, batch 256 (BN over 8 splits), K 65536, m 0.999, T 0.2, MLP head",
  "r50",
  { preset: "moco-v2", batch: 256, size: 224, bnSplits: 8, lr: 0.03, wd: 1e-4 },
);

export const gpuMocoCifar = stepEntry(
  "gpu-moco-cifar",
  "GPU: the CIFAR-10 demo's MoCo step, ResNet-18 (CIFAR stem), batch 512, 32×32, K 4096, split BN 8",
  "cifar",
  { preset: "cifar", batch: 512, size: 32, bnSplits: 8, lr: 0.06, wd: 5e-4 },
);

/** CIFAR-10 binaries of synthetic images, the same bytes bench/py/gpu-moco.py makes. */
export function writeSyntheticCifar(dir: string): void {
  if (existsSync(join(dir, "test_batch.bin"))) return;
  mkdirSync(dir, { recursive: true });
  const files: [string, number][] = [
    ...[1, 2, 3, 4, 5].map((i): [string, number] => [`data_batch_${i}.bin`, (i - 1) * 10000]),
    ["test_batch.bin", 50000],
  ];
  for (const [name, first] of files) {
    const bytes = new Uint8Array(10000 * 3073);
    for (let j = 0; j < 10000; j++) {
      const r = first + j;
      const o = j * 3073;
      bytes[o] = r % 10;
      for (let p = 0; p < 3072; p++) bytes[o + 1 + p] = (r * 131 + p * 7 + Math.floor(p / 96) * r) % 256;
    }
    writeFileSync(join(dir, name), bytes);
  }
}

export const gpuCifarEpoch: BenchEntry = {
  name: "gpu-cifar-epoch",
  description: "GPU: the CIFAR-10 demo's epoch (50 000 images, batch 512, data pipeline included; bf16 autocast)",
  python: "gpu-moco.py",
  pythonArgs: ["--config", "epoch", "--data", SYNTHETIC_CIFAR],
  rounds: 1,
  metrics: [
    { key: "epoch_seconds", label: "epoch time (2nd epoch)", unit: "s", better: "lower", target: 1.0, digits: 1 },
  ],
  unavailable: noGpu,
  async runOurs() {
    writeSyntheticCifar(SYNTHETIC_CIFAR);
    const out = mkdtempSync(join(tmpdir(), "moco-bench-epoch-"));
    try {
      const { pretrain } = await import("../src/train/pretrain.js");
      const config = resolveConfig("cifar", [
        {
          source: COMMAND_LINE,
          values: { data: SYNTHETIC_CIFAR, device: GPU, epochs: 2, knnEvery: 0, report: false, out },
        },
      ]);
      await pretrain(config);
      const epochs = readFileSync(join(out, "metrics.jsonl"), "utf8")
        .split("\n")
        .filter((line) => line.includes('"type":"epoch"'))
        .map((line) => JSON.parse(line) as { seconds: number; imagesPerSec: number });
      const last = epochs[epochs.length - 1];
      if (last === undefined) throw new Error("gpu-cifar-epoch: no epoch record in metrics.jsonl");
      return { values: { epoch_seconds: last.seconds }, details: { epochs } };
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  },
};
