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
// Then, ours only, the phases of the step as `moco pretrain` runs it (src/train/pretrain.ts's
// pretrainStep, fed by the real data pipeline: the loader and the preset's two-view augmentation)
// timed by a PhaseClock (src/moco/phases.ts), in float32 and in auto precision; and the data
// pipeline's own images/s against the faster step's, which it must exceed 3 times.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { ImageDataset } from "../src/data/dataset.js";
import type { AugmentConfig } from "../src/data/augment.js";
import { PhaseClock, STEP_PHASES, type MoCo, type MoCoSettings, type StepPhase } from "../src/moco/index.js";
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
  type Measurement,
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
  /** The preset (src/train/config.ts) whose data and augmentation the phase breakdown uses. */
  preset: "cifar" | "fashion-mnist";
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
  preset: "cifar",
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
  preset: "fashion-mnist",
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

/** The data pipeline must deliver at least this many times what the faster step consumes. */
export const PIPELINE_TARGET = 3;

/** One precision's phase breakdown: mean milliseconds per step of each phase, and of the whole step. */
export interface PhaseBreakdown {
  steps: number;
  /** Mean wall time of a whole step (its scope's disposal included), ms. */
  stepMs: number;
  /** Mean ms per step of each phase (all laps of the phase in a step summed). */
  phaseMs: Record<StepPhase, number>;
  /** What no phase covers (the step's scope freeing its tensors), ms. */
  otherMs: number;
}

/** The training images and the preset's augmentation, as src/train/data.ts opens them. */
async function pipelineData(
  c: MoCoStepConfig,
): Promise<{ dataset: ImageDataset; config: AugmentConfig; what: string }> {
  const { mocoV1Config, mocoV2Config } = await import("../src/data/augment.js");
  const { CIFAR10_STATS, FASHION_MNIST_DIR, TensorImageDataset, openFashionMnist } =
    await import("../src/data/index.js");
  const { PRESETS } = await import("../src/train/config.js");
  const preset = PRESETS[c.preset];
  let dataset: ImageDataset;
  let what: string;
  if (c.preset === "fashion-mnist" && existsSync(join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))) {
    dataset = openFashionMnist({ split: "train" });
    what = "Fashion-MNIST train";
  } else {
    // No CIFAR-10 on the machine (nor a default place for it): random images of its shape and
    // statistics cost the augmentation the same.
    const n = 4 * c.batch;
    const pixels = new Uint8Array(n * c.inChannels * c.size * c.size);
    let x = 12345;
    for (let i = 0; i < pixels.length; i++) pixels[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    dataset = new TensorImageDataset({
      name: "random images",
      images: torch.fromTypedArray(pixels, [n, c.inChannels, c.size, c.size], "uint8"),
      labels: null,
      classNames: [],
      stats: c.inChannels === 3 ? CIFAR10_STATS : { mean: [0.5], std: [0.25] },
    });
    what = `random ${c.size}×${c.size}×${c.inChannels} images`;
  }
  const options = { size: c.size, stats: dataset.stats, scale: [preset.cropMinScale, 1] as const };
  const config = preset.augPlus ? mocoV2Config(options) : mocoV1Config(options);
  return { dataset, config, what: `${what}, the ${c.preset} preset's ${preset.augPlus ? "v2" : "v1"} augmentation` };
}

/**
 * `steps` steps (after `warmup`) of pretrain.ts's own step, fed by the loader and the two views,
 * each phase timed by a PhaseClock. The model must already be in the precision's memory format.
 */
async function phaseBreakdown(
  model: MoCo,
  optimizer: SGD,
  data: { dataset: ImageDataset; config: AugmentConfig },
  batch: number,
  precision: ResolvedPrecision,
  warmup: number,
  steps: number,
): Promise<PhaseBreakdown> {
  const { TwoViewAugment } = await import("../src/data/augment.js");
  const { DataLoader } = await import("../src/data/loader.js");
  const { pretrainStep } = await import("../src/train/pretrain.js");
  // On the CPU every op is done when it returns; a CUDA model would pass its device's synchronize.
  const clock = new PhaseClock();
  const views = new TwoViewAugment(data.config, { seed: 0 });
  const loader = new DataLoader(data.dataset, { batchSize: batch, seed: 0 });
  const step = pretrainStep(model, views, optimizer, undefined, precision, null, clock);
  let done = 0;
  let total = 0;
  for (let epoch = 0; done < warmup + steps; epoch++) {
    for await (const b of loader.batches(epoch)) {
      if (done === warmup) {
        clock.reset();
        total = 0;
      }
      const t0 = now();
      clock.start();
      torch.scope(() => step(b));
      total += now() - t0;
      b.dispose();
      if (++done === warmup + steps) break;
    }
  }
  const ms = (seconds: number) => (seconds * 1000) / steps;
  const phaseMs = Object.fromEntries(STEP_PHASES.map((p) => [p, ms(clock.seconds.get(p) ?? 0)])) as Record<
    StepPhase,
    number
  >;
  const stepMs = ms(total);
  return { steps, stepMs, phaseMs, otherMs: stepMs - Object.values(phaseMs).reduce((a, b) => a + b, 0) };
}

function formatBreakdown(name: string, b: PhaseBreakdown): string[] {
  const pct = (v: number) => `${((100 * v) / b.stepMs).toFixed(1).padStart(5)}%`;
  const rows = [...STEP_PHASES.map((p) => [p, b.phaseMs[p]] as const), ["(other)", b.otherMs] as const];
  return [
    `  ${name}: ${b.stepMs.toFixed(1)} ms per step (mean of ${b.steps})`,
    ...rows.map(([p, v]) => `    ${p.padEnd(10)} ${v.toFixed(2).padStart(8)} ms ${pct(v)}`),
  ];
}

/** The printed part of an entry: the phase breakdown and the pipeline's margin, from the best round. */
function summarize(c: MoCoStepConfig, rounds: Measurement[]): string {
  const best = rounds.reduce((a, b) => ((b.values.images_per_s ?? 0) > (a.values.images_per_s ?? 0) ? b : a));
  const d = best.details as {
    phases?: Record<string, PhaseBreakdown>;
    pipeline?: { images_per_s: number; step_images_per_s: number; ratio: number; data: string };
  };
  const lines = [`${c.name}: phases of pretrain.ts's step (ours; best round; "loss" includes the pretext accuracy):`];
  for (const [name, b] of Object.entries(d.phases ?? {})) lines.push(...formatBreakdown(name, b));
  const p = d.pipeline;
  if (p !== undefined) {
    const verdict =
      p.ratio >= PIPELINE_TARGET
        ? `>= ${PIPELINE_TARGET}× met`
        : `BELOW the ${PIPELINE_TARGET}× target: the data pipeline would hold training back`;
    lines.push(
      `  data pipeline (${p.data}, batch ${c.batch}, two views): ${p.images_per_s.toFixed(1)} images/s vs ` +
        `the faster step's ${p.step_images_per_s.toFixed(1)} images/s: ${p.ratio.toFixed(2)}× (${verdict})`,
    );
  }
  return lines.join("\n");
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
    summary: (rounds) => summarize(c, rounds),
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
      const data = await pipelineData(c);
      const phases: Record<string, PhaseBreakdown> = {};
      const measure = async (precision: ResolvedPrecision): Promise<number[]> => {
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
        const name =
          precision === PRECISIONS.fp32 ? "fp32" : `auto (${precision.dtype}${precision.channelsLast ? "+CL" : ""})`;
        phases[name] = await phaseBreakdown(model, opt, data, c.batch, precision, warmup, steps);
        return seconds;
      };
      const times = await measure(PRECISIONS.fp32);
      const autoTimes = await measure(PRECISIONS.auto);
      const { measureAugmentThroughput } = await import("./augment-throughput.js");
      const pipeline = await measureAugmentThroughput({
        dataset: data.dataset,
        config: data.config,
        batchSize: c.batch,
        batches: quick ? 3 : 10,
        warmup: 2,
      });
      data.dataset.dispose();
      const stepImagesPerS = c.batch / Math.min(median(times), median(autoTimes));
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
          phases,
          pipeline: {
            data: data.what,
            images_per_s: pipeline.imagesPerSecond,
            step_images_per_s: stepImagesPerS,
            ratio: pipeline.imagesPerSecond / stepImagesPerS,
          },
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
