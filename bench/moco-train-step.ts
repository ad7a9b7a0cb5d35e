// Issue 4's benchmark: one MoCo training step, as src/train/pretrain.ts runs it, with both views
// already augmented (fixed random tensors: the augmentation is measured by data-pipeline): momentum
// update of the key encoder, query forward, key forward on the shuffled batch (split BN, 8 splits),
// InfoNCE logits against the queue, enqueue, cross-entropy, backward, SGD step (momentum 0.9, weight
// decay 5e-4). Two configurations: (a) resnet18 with the CIFAR stem at batch 64 on 32×32 RGB, the
// official CIFAR demo's MoCo settings (K 4096, m 0.99, T 0.1, linear head); (b) the default
// Fashion-MNIST preset's network and MoCo settings (width-16 resnet18, CIFAR stem, 1 channel) at batch
// 256 on 28×28 (K 4096, m 0.99, T 0.2, MLP head). Loss not symmetric (builder.py's). The Python side
// (bench/py/moco-train-step.py) is builder.py's MoCo with the CIFAR demo's single-process shuffle and
// SplitBatchNorm. Metrics as resnet18-train-step: images/s from the median step's wall time, images per
// CPU-second from its process CPU time, and the process's peak resident memory.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { MoCo, MoCoSettings } from "../src/moco/index.js";
import { SGD } from "../src/optim/index.js";
import * as torch from "../src/torch/index.js";
import { F, withPrecision, type ResolvedPrecision } from "../src/torch/index.js";
import {
  autoPrecisionMetric,
  median,
  now,
  peakRssMiB,
  rssMiB,
  PEAK_RSS_METRIC,
  PRECISIONS,
  type BenchEntry,
  type MetricSpec,
} from "./framework.js";

const srcDir = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

export interface MoCoStepConfig {
  /** Entry name, and the Python side's --config. */
  name: string;
  config: "cifar" | "fmnist";
  batch: number;
  size: number;
  inChannels: number;
  width: number;
  bnSplits: number;
  settings: MoCoSettings;
  /** The preset's base lr (irrelevant to the speed; kept realistic). */
  lr: number;
}

const CIFAR: MoCoStepConfig = {
  name: "moco-cifar-step",
  config: "cifar",
  batch: 64,
  size: 32,
  inChannels: 3,
  width: 64,
  bnSplits: 8,
  settings: { dim: 128, K: 4096, m: 0.99, T: 0.1, mlp: false, symmetric: false },
  lr: 0.06,
};

export const FMNIST: MoCoStepConfig = {
  name: "moco-fmnist-step",
  config: "fmnist",
  batch: 256,
  size: 28,
  inChannels: 1,
  width: 16,
  bnSplits: 8,
  settings: { dim: 128, K: 4096, m: 0.99, T: 0.2, mlp: true, symmetric: false },
  lr: 0.03,
};

const THROUGHPUT: MetricSpec = {
  key: "images_per_s",
  label: "training throughput",
  unit: "images/s",
  better: "higher",
  target: 1.0,
  digits: 1,
};

const METRICS: MetricSpec[] = [
  THROUGHPUT,
  autoPrecisionMetric(THROUGHPUT),
  {
    key: "images_per_cpu_s",
    label: "images per CPU-second",
    unit: "images/CPU-s",
    better: "higher",
    digits: 1,
    informational: true,
  },
  PEAK_RSS_METRIC,
];

/**
 * The step of pretrain.ts, less the augmentation and the metrics; `averageGradients` runs between the
 * backward pass and the update, as in a distributed run; the forward pass and the loss run under
 * `precision` (the views already in its layout), as pretrain.ts's step. Returns the loss.
 */
export function mocoStep(
  model: MoCo,
  optimizer: SGD,
  imQ: torch.Tensor,
  imK: torch.Tensor,
  averageGradients?: () => void,
  precision: ResolvedPrecision = PRECISIONS.fp32,
): number {
  return torch.scope(() => {
    const l = withPrecision(precision, "cpu", () => {
      const outputs = model.forward(imQ, imK);
      const losses = outputs.map((o) => F.crossEntropy(o.logits.float(), o.labels));
      return losses.length === 1 ? (losses[0] as torch.Tensor) : losses.reduce((a, b) => a.add(b));
    });
    const loss = l.item();
    optimizer.zeroGrad();
    l.backward();
    averageGradients?.();
    optimizer.step();
    return loss;
  });
}

function describe(c: MoCoStepConfig): string {
  const s = c.settings;
  const net = c.width === 64 ? "resnet18" : `width-${c.width} resnet18`;
  return (
    `MoCo step, ${net} (CIFAR stem, ${c.inChannels} ch), batch ${c.batch}, ${c.size}×${c.size}: ` +
    `K ${s.K}, m ${s.m}, T ${s.T}, ${s.mlp ? "MLP" : "linear"} head, split BN ${c.bnSplits}, SGD(m 0.9, wd 5e-4)`
  );
}

function mocoStepEntry(c: MoCoStepConfig): BenchEntry {
  return {
    name: c.name,
    description: describe(c),
    python: "moco-train-step.py",
    pythonArgs: ["--config", c.config],
    rounds: 2,
    metrics: METRICS,
    async unavailable() {
      if (!existsSync(join(srcDir, "moco", "index.ts"))) return "src/moco not available";
      if (!existsSync(join(srcDir, "nn", "index.ts"))) return "src/nn not available";
      return null;
    },
    async runOurs({ quick }) {
      const { MoCo, checkBatchAgainstSettings } = await import("../src/moco/index.js");
      const { resnet18, splitBatchNorm } = await import("../src/nn/index.js");
      checkBatchAgainstSettings(c.settings, c.batch, c.bnSplits);
      const warmup = quick ? 1 : 2;
      const steps = quick ? 2 : 5;
      torch.manualSeed(0);
      // As src/train/pretrain.ts's buildModel.
      const normLayer = c.bnSplits > 1 ? splitBatchNorm(c.bnSplits) : undefined;
      const model = new MoCo(
        (outputs) =>
          resnet18({
            numClasses: outputs,
            width: c.width,
            cifarStem: true,
            inChannels: c.inChannels,
            ...(normLayer === undefined ? {} : { normLayer }),
          }),
        c.settings,
      ).train();
      const imQ = torch.randn([c.batch, c.inChannels, c.size, c.size]);
      const imK = torch.randn([c.batch, c.inChannels, c.size, c.size]);
      const opt = new SGD(model.parameters(), { lr: c.lr, momentum: 0.9, weightDecay: 5e-4 });
      const rssBefore = rssMiB();
      const cpuTimes: number[] = [];
      let loss = 0;
      const measure = (precision: ResolvedPrecision): number[] => {
        if (precision.channelsLast) model.to({ memoryFormat: "channelsLast" });
        const q = torch.inLayout(precision, imQ);
        const k = torch.inLayout(precision, imK);
        const seconds: number[] = [];
        for (let i = 0; i < warmup + steps; i++) {
          const t0 = now();
          const c0 = process.cpuUsage();
          loss = mocoStep(model, opt, q, k, undefined, precision);
          if (i >= warmup) {
            seconds.push(now() - t0);
            const cpu = process.cpuUsage(c0);
            if (precision === PRECISIONS.fp32) cpuTimes.push((cpu.user + cpu.system) / 1e6);
          }
        }
        if (q !== imQ) q.dispose();
        if (k !== imK) k.dispose();
        return seconds;
      };
      const times = measure(PRECISIONS.fp32);
      const autoTimes = measure(PRECISIONS.auto);
      const result = {
        values: {
          images_per_s: c.batch / median(times),
          images_per_s_auto: c.batch / median(autoTimes),
          images_per_cpu_s: c.batch / median(cpuTimes),
          peak_rss_mib: peakRssMiB(),
        },
        details: {
          batch: c.batch,
          size: c.size,
          in_channels: c.inChannels,
          width: c.width,
          bn_splits: c.bnSplits,
          moco: c.settings,
          warmup,
          steps,
          step_seconds: times,
          step_seconds_auto: autoTimes,
          auto: PRECISIONS.auto.reason,
          step_cpu_seconds: cpuTimes,
          best_images_per_s: c.batch / Math.min(...times),
          rss_mib_after_setup: rssBefore,
          rss_mib_end: rssMiB(),
          last_loss: loss,
          queue_ptr_end: torch.scope(() => model.queuePtr.item()),
          live_tensors_end: torch.liveTensors(),
        },
      };
      opt.dispose();
      model.dispose();
      imQ.dispose();
      imK.dispose();
      return result;
    },
  };
}

export const mocoCifarStep = mocoStepEntry(CIFAR);
export const mocoFmnistStep = mocoStepEntry(FMNIST);
