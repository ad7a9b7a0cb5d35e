// The hooks pretraining adds to the loop: the metrics log and progress line, and the kNN monitor.
// Both are rank-0 work (pretrain.ts installs them on rank 0 only).
import type { LoopHooks, LoopPosition } from "../loop/index.js";
import type { MetricsLog } from "./metrics.js";
import { formatDuration, type ProgressReporter } from "../loop/progress.js";

/** What a pretraining step reports: the loss and the pretext top-1/top-5 (%), the ranks' means. */
export interface PretrainStepOutput {
  loss: number;
  top1: number;
  top5: number;
}

const now = () => new Date().toISOString();

/**
 * Step and epoch records in the metrics log, the live progress line and the epoch summary line.
 * Throughput is measured here: images per second of each step, smoothed for the ETA.
 */
export function metricsHook(options: {
  append: MetricsLog["append"];
  progress: ProgressReporter;
  /** The global batch. */
  batchSize: number;
  epochs: number;
  stepsPerEpoch: number;
  totalSteps: number;
  lr: () => number;
}): LoopHooks<PretrainStepOutput> {
  const { append, progress, batchSize } = options;
  let rate = 0;
  let last = Date.now();
  let epochStart = last;
  let sums = { loss: 0, top1: 0, top5: 0, n: 0 };
  const mean = (v: number) => (sums.n === 0 ? NaN : v / sums.n);
  return {
    epochStarted() {
      epochStart = last = Date.now();
      sums = { loss: 0, top1: 0, top5: 0, n: 0 };
    },
    iterationCompleted(position, output) {
      const t = Date.now();
      const instant = (batchSize * 1000) / Math.max(1, t - last);
      rate = rate === 0 ? instant : 0.9 * rate + 0.1 * instant;
      last = t;
      sums.loss += output.loss;
      sums.top1 += output.top1;
      sums.top5 += output.top5;
      sums.n++;
      const lr = options.lr();
      append({
        type: "step",
        epoch: position.epoch,
        step: position.step,
        ...output,
        lr,
        imagesPerSec: instant,
        time: now(),
      });
      progress.update({
        epoch: position.epoch,
        epochs: options.epochs,
        stepInEpoch: position.epochStep,
        stepsPerEpoch: options.stepsPerEpoch,
        loss: output.loss,
        top1: output.top1,
        lr,
        imagesPerSec: rate,
        etaSeconds: ((options.totalSteps - position.step) * batchSize) / Math.max(rate, 1e-9),
      });
    },
    epochCompleted(position) {
      const seconds = (Date.now() - epochStart) / 1000;
      append({
        type: "epoch",
        epoch: position.epoch,
        step: position.step,
        loss: mean(sums.loss),
        top1: mean(sums.top1),
        top5: mean(sums.top5),
        lr: options.lr(),
        seconds,
        imagesPerSec: (sums.n * batchSize) / Math.max(seconds, 1e-9),
        time: now(),
      });
      progress.log(
        `epoch ${position.epoch}/${options.epochs}: loss ${mean(sums.loss).toFixed(4)}, pretext top-1 ${mean(sums.top1).toFixed(1)}%, ` +
          `${formatDuration(seconds)}`,
      );
    },
  };
}

export interface KnnAccuracy {
  top1: number;
  top5: number;
}

/** Measures a kNN accuracy (%), or null when the run has no kNN data. */
export type KnnMeasure = () => Promise<KnnAccuracy | null>;

/**
 * The kNN monitor: on a fresh run the baselines first (raw pixels, the random initialisation), then
 * the encoder every `every` epochs and after the last one (or at the end of a shortened run).
 */
export function knnMonitorHook(options: {
  encoder: KnnMeasure;
  /** Raw pixels as features; measured once with the random network. */
  pixels: KnnMeasure;
  /** Measure the baselines (a fresh run; a resumed one has them in its log). */
  baselines: boolean;
  every: number;
  epochs: number;
  totalSteps: number;
  features: string;
  /** Records a result: what was measured, after how many epochs and steps. */
  record: (position: LoopPosition, features: string, result: KnnAccuracy) => void;
  /** Told each result: the random-initialisation baseline, the pixel baseline, the trained encoder. */
  found: (kind: "random" | "pixels" | "trained", top1: number) => void;
}): LoopHooks<unknown> {
  // Whether this run measured the trained encoder: a run cut short measures it at the end otherwise.
  let trainedMeasured = false;
  const measureEncoder = async (position: LoopPosition, kind: "random" | "trained") => {
    const result = await options.encoder();
    if (result === null) return;
    options.record(position, options.features, result);
    options.found(kind, result.top1);
    if (kind === "trained") trainedMeasured = true;
  };
  return {
    async started() {
      if (!options.baselines) return;
      const pixels = await options.pixels();
      if (pixels !== null) {
        options.record({ epoch: 0, epochStep: 0, step: 0 }, "pixels", pixels);
        options.found("pixels", pixels.top1);
      }
      await measureEncoder({ epoch: 0, epochStep: 0, step: 0 }, "random");
    },
    async epochCompleted(position) {
      const isLast = position.epoch === options.epochs || position.step >= options.totalSteps;
      if (isLast || (options.every > 0 && position.epoch % options.every === 0))
        await measureEncoder(position, "trained");
    },
    async completed(outcome) {
      if (!trainedMeasured && !outcome.interrupted) await measureEncoder(outcome.position, "trained");
    },
  };
}

/**
 * Copies of the latest checkpoint that stay: `checkpoint_%04d.pth.tar` every `saveEvery` epochs (named
 * by the 0-based epoch, as main_moco.py), and the best kNN top-1's `model_best.pth.tar`. Installed
 * after the checkpoint writer and the kNN monitor, so the latest checkpoint is the measured state.
 */
export function keptCheckpointsHook(options: {
  saveEvery: number;
  /** Copies the latest checkpoint to this name in the run folder. */
  copyLatest: (name: string) => void;
  bestName: string;
  epochName: (epochIndex: number) => string;
  /** True once per new best kNN top-1 (then cleared by the call). */
  takeNewBest: () => boolean;
}): LoopHooks<unknown> {
  return {
    epochCompleted(position) {
      if (options.saveEvery > 0 && position.epoch % options.saveEvery === 0)
        options.copyLatest(options.epochName(position.epoch - 1));
      if (options.takeNewBest()) options.copyLatest(options.bestName);
    },
    // A run cut short by --max-steps is measured at its end, after its last checkpoint was written.
    completed(outcome) {
      if (!outcome.interrupted && options.takeNewBest()) options.copyLatest(options.bestName);
    },
  };
}
