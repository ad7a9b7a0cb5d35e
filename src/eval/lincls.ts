// Linear evaluation, the protocol of the MoCo paper (main_lincls.py): the pretrained backbone frozen
// in eval mode (BN statistics included), a new fc initialised N(0, 0.01) with zero bias as the only
// trainable tensor, SGD (lr 30, momentum 0.9, no weight decay, batch 256) for 100 epochs with the lr
// ×0.1 at 60 and 80; train images RandomResizedCrop + flip, validation Resize + CenterCrop, both
// scaled to the dataset's image size; top-1/top-5 every epoch; at the end the check that no
// backbone tensor changed.
//
// The raw-pixel baseline (`encoder: "pixels"`) goes through the same protocol with the images'
// pixels as the frozen "backbone": the same crops and flips, each feature standardised with the
// training split's mean and standard deviation (computed on its un-augmented images), the same fc.
//
// Validation features are computed once: the backbone is frozen and the validation transform
// deterministic, so every epoch would compute the same numbers. With `precomputeFeatures` the
// training features are too (from un-augmented images), which makes a CPU run minutes, not hours.
//
// The training is one configuration of the training loop (train/loop.ts): the classifier and its
// optimizer as the state, a step per batch, and hooks for the schedule, the non-finite guard, the
// per-epoch validation and main_lincls.py's checkpoints.
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { Augment, type AugmentConfig } from "../data/augment.js";
import type { ImageDataset } from "../data/dataset.js";
import { DataLoader, type Batch } from "../data/loader.js";
import { Random } from "../data/random.js";
import { embedPrecision, encoderFeatures } from "../encoder/embed.js";
import type { Encoder } from "../encoder/encoder.js";
import { datasetFeatures, type FeatureFunction } from "../encoder/features.js";
import { featureStandardization, standardize, type FeatureStandardization } from "../encoder/pixels.js";
import type { ChannelStats } from "../data/dataset.js";
import { Preprocessor } from "../encoder/preprocess.js";
import { Linear, onDevice } from "../nn/index.js";
import { normal_, zeros_ } from "../nn/init.js";
import { SGD, cosineSchedule, stepSchedule, type LrSchedule, type SGDStateDict } from "../optim/index.js";
import {
  F,
  asFloat32,
  inLayout,
  keep,
  noGrad,
  save,
  scope,
  withPrecision,
  type ChannelsLastSetting,
  type PrecisionSetting,
  type ResolvedPrecision,
  type Saveable,
  type Tensor,
} from "../torch/index.js";
import { checkpointHook, currentLr, lrScheduleHook, nonFiniteLossGuard } from "../loop/index.js";
import { TrainingState, runLoop, type LoopHooks } from "../loop/index.js";
import { topkCorrect, type ProgressReporter } from "../loop/index.js";

export { topkCorrect };
import { writeFileAtomic } from "../util/atomic-file.js";

export interface LinearEvalConfig {
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  wd: number;
  /** Epochs where the lr drops ×0.1 (without `cos`). */
  schedule: readonly number[];
  cos: boolean;
  /** Train on features of un-augmented images, computed once (no train augmentation). */
  precomputeFeatures: boolean;
  /** Crop size fed to the network (null: the encoder's training size, else the images' own). */
  imageSize: number | null;
  seed: number;
  /**
   * Where the backbone and the classifier run ("cpu", "cuda", "cuda:N"; absent: "cpu"). The encoder's
   * model is moved there and stays there.
   */
  device?: string;
  /** The backbone's forward pass: "fp32" (absent), "bf16" autocast or "auto" (src/torch/precision.ts). */
  precision?: PrecisionSetting;
  /** Channels-last activations and conv weights for the backbone: "off" (absent), "on" or "auto". */
  channelsLast?: ChannelsLastSetting;
}

export const LINCLS_DEFAULTS: LinearEvalConfig = {
  epochs: 100,
  batchSize: 256,
  lr: 30,
  momentum: 0.9,
  wd: 0,
  schedule: [60, 80],
  cos: false,
  precomputeFeatures: false,
  imageSize: null,
  seed: 0,
  device: "cpu",
};

export function checkLinearEvalConfig(config: LinearEvalConfig): void {
  const positiveInt = (v: number, name: string) => {
    if (!(Number.isSafeInteger(v) && v >= 1))
      throw new RangeError(`lincls: ${name} must be a positive integer, got ${v}`);
  };
  positiveInt(config.epochs, "epochs");
  positiveInt(config.batchSize, "batch size");
  if (!(config.lr > 0)) throw new RangeError(`lincls: lr must be > 0, got ${config.lr}`);
  if (!(config.momentum >= 0 && config.momentum < 1))
    throw new RangeError(`lincls: momentum must be in [0, 1), got ${config.momentum}`);
  if (!(config.wd >= 0)) throw new RangeError(`lincls: weight decay must be >= 0, got ${config.wd}`);
  if (config.imageSize !== null) positiveInt(config.imageSize, "image size");
  if (!(Number.isSafeInteger(config.seed) && config.seed >= 0))
    throw new RangeError(`lincls: seed must be a non-negative integer, got ${config.seed}`);
  if (config.device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(config.device))
    throw new RangeError(`lincls: device must be "cpu", "cuda" or "cuda:N", got ${JSON.stringify(config.device)}`);
}

/** RandomResizedCrop (torchvision's default scale 0.08–1) + flip, as main_lincls.py; no normalisation yet. */
export function linclsTrainAugment(size: number): AugmentConfig {
  return {
    steps: [
      { op: "randomResizedCrop", size, scale: [0.08, 1] },
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize: null,
  };
}

/** One epoch of linear evaluation; accuracies in percent, as pretraining's (issue #16). */
export interface EpochRecord {
  type: "epoch";
  epoch: number;
  lr: number;
  loss: number;
  trainTop1: number;
  valTop1: number;
  valTop5: number;
  bestTop1: number;
  seconds: number;
}

export interface LinearEvalState {
  /** Epochs completed. */
  epoch: number;
  /** Percent. */
  bestTop1: number;
  bestEpoch: number;
  /** fc.weight and fc.bias to start from, and the optimizer's state. */
  fc: { weight: Tensor; bias: Tensor };
  optimizer: SGDStateDict;
}

/**
 * What the new fc reads: a loaded encoder's frozen backbone (a trained one, or `randomEncoder`'s), or
 * "pixels": the images' pixels, standardised per feature with the training split's statistics.
 */
export type LinclsInput = Encoder | "pixels";

export interface LinearEvalOptions {
  encoder: LinclsInput;
  train: ImageDataset;
  val: ImageDataset;
  config: LinearEvalConfig;
  /** Where checkpoint.pth.tar and model_best.pth.tar go (null: none written). */
  outDir: string | null;
  /** Extra fields stored in checkpoints under `moco_ts` (e.g. the resolved configuration). */
  checkpointInfo?: Record<string, Saveable>;
  resume?: LinearEvalState;
  log?: (line: string) => void;
  /** Within-epoch progress (step, loss, train accuracy, ETA); `log` lines should go through its `log`. */
  progress?: ProgressReporter;
  onEpoch?: (record: EpochRecord) => void;
  signal?: AbortSignal;
}

/** Accuracies in percent. */
export interface LinearEvalResult {
  epochs: number;
  top1: number;
  top5: number;
  bestTop1: number;
  bestEpoch: number;
  /** Backbone tensors compared bit for bit before and after training, and how many differed. */
  backboneTensorsChecked: number;
  backboneTensorsChanged: string[];
  interrupted: boolean;
}

/** The encoder's input size for this protocol: configured, else its training crop, else the images'. */
export function linclsImageSize(encoder: LinclsInput, dataset: ImageDataset, config: LinearEvalConfig): number {
  return config.imageSize ?? (encoder === "pixels" ? null : encoder.info.trainedOn?.imageSize) ?? dataset.height;
}

/** Features into the fc: the encoder's backbone width, or one per pixel and channel. */
export function linclsFeatureDim(encoder: LinclsInput, dataset: ImageDataset, config: LinearEvalConfig): number {
  const size = linclsImageSize(encoder, dataset, config);
  return encoder === "pixels" ? dataset.channels * size * size : encoder.featureDim;
}

/** The input in words, for headers and summaries. */
export function describeLinclsInput(encoder: LinclsInput, dataset: ImageDataset, config: LinearEvalConfig): string {
  if (encoder !== "pixels") return encoder.describe();
  const size = linclsImageSize(encoder, dataset, config);
  return `raw pixels (${dataset.channels}×${size}×${size}), standardised per feature with the training split's mean and std`;
}

/** The header of a linear evaluation, printed at its start and kept as run.json (issue #16, 3). */
export interface LinclsHeader {
  data: {
    train: string;
    trainImages: number;
    val: string;
    valImages: number;
    classes: number;
    channels: number;
    imageSize: number;
  };
  network: string;
  featureDim: number;
  schedule: { batchSize: number; epochs: number; stepsPerEpoch: number; totalSteps: number; lr: number };
  precomputeFeatures: boolean;
  device: string;
  threads: number;
  warnings: string[];
}

export function linclsHeader(
  encoder: LinclsInput,
  train: ImageDataset,
  val: ImageDataset,
  config: LinearEvalConfig,
  threads: number,
): LinclsHeader {
  const stepsPerEpoch = Math.ceil(train.length / config.batchSize); // every image: no dropLast
  const classes = Math.max(train.numClasses, val.numClasses);
  const warnings: string[] = [];
  if (train.length < classes * 5)
    warnings.push(`${train.length} training images for ${classes} classes: the accuracy will say little`);
  if (val.length < 100)
    warnings.push(`${val.length} validation images: each is ${(100 / val.length).toFixed(1)} points`);
  return {
    data: {
      train: train.name,
      trainImages: train.length,
      val: val.name,
      valImages: val.length,
      classes,
      channels: train.channels,
      imageSize: linclsImageSize(encoder, train, config),
    },
    network: describeLinclsInput(encoder, train, config),
    featureDim: linclsFeatureDim(encoder, train, config),
    schedule: {
      batchSize: config.batchSize,
      epochs: config.epochs,
      stepsPerEpoch,
      totalSteps: stepsPerEpoch * config.epochs,
      lr: config.lr,
    },
    precomputeFeatures: config.precomputeFeatures,
    device: config.device ?? "cpu",
    threads,
    warnings,
  };
}

export function formatLinclsHeader(h: LinclsHeader): string[] {
  const d = h.data;
  return [
    `data: train ${d.train} (${d.trainImages} images), val ${d.val} (${d.valImages} images), ${d.classes} classes, ` +
      `${d.channels} channel(s), ${d.imageSize}×${d.imageSize} crops`,
    `network: ${h.network}, ${h.featureDim} features into the new fc`,
    `schedule: batch ${h.schedule.batchSize}, ${h.schedule.stepsPerEpoch} steps per epoch, ${h.schedule.epochs} epoch(s), ` +
      `${h.schedule.totalSteps} steps in all, lr ${h.schedule.lr}${h.precomputeFeatures ? ", precomputed features" : ""}`,
    `running on ${h.device}, ${h.threads} thread(s)`,
    ...h.warnings.map((w) => `warning: ${w}`),
  ];
}

/**
 * The frozen part of the protocol, whatever it is: features of validation-preprocessed images, features
 * of augmented crops, and the tensors that must not move (checked at the end, saved in checkpoints).
 */
interface FrozenBackbone {
  featureDim: number;
  /** Features [B, D] (float32, not normalised, on the run's device) of stored uint8 images: Resize + CenterCrop. */
  evalFeatures: FeatureFunction;
  /** Features [B, D] of augmented float images in [0, 1] with the data's channels, at the protocol's size. */
  trainFeatures: FeatureFunction;
  /** The frozen tensors by state-dict name (`module.` is prefixed in checkpoints). */
  stateDict(): Map<string, Tensor>;
  /** The checkpoint's `arch`. */
  arch: string;
  dispose(): void;
}

/** A loaded encoder's backbone in eval mode, on the device, under the precision policy. */
function encoderBackbone(
  encoder: Encoder,
  trainPreprocessor: Preprocessor,
  valPreprocessor: Preprocessor,
  config: LinearEvalConfig,
  log: (line: string) => void,
): FrozenBackbone {
  const device = config.device ?? "cpu";
  encoder.model.toDevice(device);
  const policy = { precision: config.precision ?? "fp32", channelsLast: config.channelsLast ?? "off" } as const;
  const precision: ResolvedPrecision = embedPrecision(policy);
  log(precision.reason);
  if (precision.channelsLast) encoder.model.to({ memoryFormat: "channelsLast" });
  encoder.model.eval();
  encoder.model.requiresGrad_(false);
  return {
    featureDim: encoder.featureDim,
    evalFeatures: encoderFeatures(encoder, valPreprocessor, policy),
    trainFeatures: (crops) => {
      const x = inLayout(precision, onDevice(trainPreprocessor.adapt(crops), device));
      // The frozen backbone under the policy; the classifier sees float32 features.
      return asFloat32(withPrecision(precision, device, () => encoder.model.forwardFeatures(x)));
    },
    stateDict: () => {
      const state = new Map<string, Tensor>();
      for (const [key, tensor] of encoder.model.stateDict()) if (!key.startsWith("fc.")) state.set(key, tensor);
      return state;
    },
    arch: encoder.info.layout.arch,
    dispose: () => undefined,
  };
}

/** The checkpoint `arch` of the raw-pixel baseline's linear classifier. */
export const PIXELS_ARCH = "pixels";

/**
 * The raw-pixel baseline's validation features (also its precomputed training features): uint8
 * images [B, C, H, W] → Resize + CenterCrop (ratio 0.875) to `size`, normalised per channel with
 * `stats`, flattened and standardised → [B, C × size × size] on `device`.
 */
export function pixelLinclsFeatures(options: {
  channels: number;
  size: number;
  stats: ChannelStats;
  standardization: FeatureStandardization;
  device?: string;
}): FeatureFunction {
  const preprocessor = new Preprocessor({ inChannels: options.channels }, options.channels, {
    size: options.size,
    centerCropRatio: 0.875,
    stats: options.stats,
  });
  const device = options.device ?? "cpu";
  return (images) => standardize(onDevice(preprocessor.apply(images), device), options.standardization);
}

/**
 * Raw pixels as the backbone: the validation-preprocessed (or augmented and normalised) images,
 * flattened and standardised with the training split's per-feature mean and std, computed here from
 * its un-augmented images (validation preprocessing, as precomputed training features).
 */
async function pixelBackbone(
  train: ImageDataset,
  trainPreprocessor: Preprocessor,
  valPreprocessor: Preprocessor,
  config: LinearEvalConfig,
  log: (line: string) => void,
): Promise<FrozenBackbone> {
  const device = config.device ?? "cpu";
  const pixels: FeatureFunction = (images) => onDevice(valPreprocessor.apply(images), device);
  // A resumed run recomputes them: the same images give the same numbers.
  log(`computing the per-feature mean and std of the ${train.length} training images' pixels`);
  const standardization = await featureStandardization(train, config.batchSize, pixels);
  const size = valPreprocessor.size ?? train.height;
  return {
    featureDim: standardization.mean.shape[0] ?? 0,
    evalFeatures: pixelLinclsFeatures({
      channels: train.channels,
      size,
      stats: valPreprocessor.stats,
      standardization,
      device,
    }),
    trainFeatures: (crops) => standardize(onDevice(trainPreprocessor.adapt(crops), device), standardization),
    stateDict: () =>
      new Map([
        ["pixels.mean", standardization.mean],
        ["pixels.std", standardization.std],
      ]),
    arch: PIXELS_ARCH,
    dispose: () => {
      standardization.mean.dispose();
      standardization.std.dispose();
    },
  };
}

/** Copies of every frozen tensor (parameters and BN statistics), to prove afterwards that none moved. */
function backboneSnapshot(backbone: FrozenBackbone): Map<string, Tensor> {
  return scope(() => {
    const snapshot = new Map<string, Tensor>();
    for (const [key, tensor] of backbone.stateDict()) snapshot.set(key, keep(tensor.clone()));
    return snapshot;
  });
}

function changedTensors(backbone: FrozenBackbone, snapshot: Map<string, Tensor>): string[] {
  return scope(() => {
    const now = backbone.stateDict();
    return [...snapshot]
      .filter(([key, before]) => {
        const after = now.get(key);
        return after === undefined || !after.equal(before);
      })
      .map(([key]) => key);
  });
}

function lrScheduleOf(config: LinearEvalConfig): LrSchedule {
  return config.cos
    ? cosineSchedule({ lr: config.lr, epochs: config.epochs })
    : stepSchedule({ lr: config.lr, milestones: [...config.schedule] });
}

/**
 * The warning for a diverging loss: an epoch's mean loss more than 10× the first epoch's (a loss
 * that climbs 31 → 240 → 720 at lr 30 is the sign of a too-large lr, long before it is NaN); null
 * while it is not.
 */
export function divergenceWarning(firstLoss: number, loss: number, lr: number): string | null {
  if (!(loss > 10 * firstLoss)) return null;
  const ratio = loss / firstLoss;
  return (
    `warning: the training loss is ${ratio.toFixed(0)}× its first epoch's (${firstLoss.toPrecision(3)} → ` +
    `${loss.toPrecision(3)}): it is diverging; lower --lr (now ${lr.toPrecision(3)}), e.g. by 10×`
  );
}

/** What a linear-evaluation step reports: the batch's mean loss, its correct predictions and its size. */
interface LinclsStepOutput {
  loss: number;
  hits: number;
  n: number;
}

/**
 * Runs the protocol; the encoder's own head is left aside (its backbone features feed the new fc). The
 * output folder is made when missing.
 */
export async function linearEvaluation(options: LinearEvalOptions): Promise<LinearEvalResult> {
  const { encoder, train, val, config } = options;
  checkLinearEvalConfig(config);
  const log = options.log ?? (() => undefined);
  for (const dataset of [train, val]) {
    if (dataset.labels === null) throw new Error(`lincls: ${dataset.name} has no labels`);
  }
  const numClasses = Math.max(train.numClasses, val.numClasses);
  const size = linclsImageSize(encoder, train, config);
  // Pixels: the images' own channels, normalised with the training split's per-channel statistics
  // (an affine map the per-feature standardisation absorbs; it keeps one preprocessing for both).
  const target = encoder === "pixels" ? { inChannels: train.channels } : encoder;
  const stats = encoder === "pixels" ? { stats: train.stats } : {};
  const trainPreprocessor = new Preprocessor(target, train.channels, { size, ...stats });
  const valPreprocessor = new Preprocessor(target, val.channels, { size, centerCropRatio: 0.875, ...stats });
  if (trainPreprocessor.note !== null) log(trainPreprocessor.note);
  if (options.outDir !== null) mkdirSync(options.outDir, { recursive: true });

  const device = config.device ?? "cpu";
  const backbone =
    encoder === "pixels"
      ? await pixelBackbone(train, trainPreprocessor, valPreprocessor, config, log)
      : encoderBackbone(encoder, trainPreprocessor, valPreprocessor, config, log);
  // Initialised on the CPU (the same numbers on every device), then moved.
  const fc = new Linear(backbone.featureDim, numClasses);
  if (options.resume === undefined) {
    noGrad(() => {
      normal_(fc.getParameter("weight"), 0, 0.01);
      zeros_(fc.getParameter("bias"));
    });
  }
  fc.toDevice(device);
  const optimizer = new SGD(fc.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.wd });
  // The data order and the augmentation are drawn from (seed, epoch): counters and weights are the state.
  const state = new TrainingState(fc, optimizer, {}, false);
  const snapshot = backboneSnapshot(backbone);
  const loader = new DataLoader(train, { batchSize: config.batchSize, seed: config.seed, dropLast: false });
  const augment = new Augment(linclsTrainAugment(size));
  const valLabels = onDevice(val.labels as Tensor, device);
  let valFeatures: Tensor | null = null;
  let trainFeatures: Tensor | null = null;
  let bestTop1 = options.resume?.bestTop1 ?? 0;
  let bestEpoch = options.resume?.bestEpoch ?? 0;
  let last = { top1: 0, top5: 0 };
  try {
    if (options.resume !== undefined) {
      const resume = options.resume;
      state.loadStateDict({
        model: new Map([
          ["weight", resume.fc.weight],
          ["bias", resume.fc.bias],
        ]),
        optimizer: resume.optimizer,
        torchRng: null,
        streams: {},
        epoch: resume.epoch,
        epochStep: 0,
        step: resume.epoch * loader.batchesPerEpoch,
      });
    }
    log(`computing the features of ${val.length} validation images`);
    valFeatures = await datasetFeatures(val, config.batchSize, backbone.evalFeatures, { normalize: false });
    if (config.precomputeFeatures) {
      log(`computing the features of ${train.length} training images (no train augmentation)`);
      trainFeatures = await datasetFeatures(train, config.batchSize, backbone.evalFeatures, { normalize: false });
    }
    const evaluate = () => evaluateFc(fc, valFeatures as Tensor, valLabels, config.batchSize);
    if (state.epoch > 0) last = evaluate();

    let rng = new Random(config.seed, state.epoch);
    const step = (batch: Batch): LinclsStepOutput => {
      const labels = onDevice(batch.labels as Tensor, device);
      const features =
        trainFeatures === null
          ? noGrad(() => backbone.trainFeatures(augment.apply(batch.images, rng)))
          : trainFeatures.indexSelect(0, onDevice(batch.indices, device));
      const logits = fc.forward(features);
      const loss = F.crossEntropy(logits, labels);
      optimizer.zeroGrad();
      loss.backward();
      optimizer.step();
      return { loss: loss.item(), hits: logits.argmax(1).eq(labels).sum().item(), n: labels.shape[0] ?? 0 };
    };

    // Training loss and accuracy of an epoch, and after it the validation, the best so far and the log.
    let started = 0;
    let sums = { loss: 0, correct: 0, seen: 0 };
    // The first epoch's mean loss of this run, and whether the divergence warning was given.
    let firstLoss: number | null = null;
    let diverged = false;
    // Throughput, smoothed for the ETA of the progress line.
    const progress = options.progress;
    const stepsPerEpoch = loader.batchesPerEpoch;
    let rate = 0;
    let lastStep = performance.now();
    const epochReport: LoopHooks<LinclsStepOutput> = {
      epochStarted(epoch) {
        started = lastStep = performance.now();
        sums = { loss: 0, correct: 0, seen: 0 };
        rng = new Random(config.seed, epoch);
      },
      iterationCompleted(position, output) {
        sums.loss += output.loss * output.n;
        sums.correct += output.hits;
        sums.seen += output.n;
        if (progress === undefined) return;
        const now = performance.now();
        const instant = (output.n * 1000) / Math.max(1, now - lastStep);
        rate = rate === 0 ? instant : 0.9 * rate + 0.1 * instant;
        lastStep = now;
        progress.update({
          epoch: position.epoch,
          epochs: config.epochs,
          stepInEpoch: position.epochStep,
          stepsPerEpoch,
          loss: output.loss,
          top1: (sums.correct / sums.seen) * 100,
          accuracyLabel: "train@1",
          lr: currentLr(optimizer),
          imagesPerSec: rate,
          // Training steps left, at this rate; each epoch's validation adds a little (its features are cached).
          etaSeconds: ((config.epochs * stepsPerEpoch - position.step) * config.batchSize) / Math.max(rate, 1e-9),
        });
      },
      epochCompleted({ epoch }) {
        last = evaluate();
        const valTop1 = (last.top1 / val.length) * 100;
        if (valTop1 > bestTop1 || epoch === 1) {
          bestTop1 = Math.max(bestTop1, valTop1);
          bestEpoch = epoch;
        }
        const lr = currentLr(optimizer);
        const record: EpochRecord = {
          type: "epoch",
          epoch,
          lr,
          loss: sums.loss / sums.seen,
          trainTop1: (sums.correct / sums.seen) * 100,
          valTop1,
          valTop5: (last.top5 / val.length) * 100,
          bestTop1,
          seconds: (performance.now() - started) / 1000,
        };
        options.onEpoch?.(record);
        log(
          `epoch ${epoch}/${config.epochs} lr ${lr.toPrecision(3)} loss ${record.loss.toFixed(4)} ` +
            `train@1 ${record.trainTop1.toFixed(2)}% val@1 ${valTop1.toFixed(2)}% ` +
            `val@5 ${record.valTop5.toFixed(2)}% best ${bestTop1.toFixed(2)}% (${record.seconds.toFixed(1)} s)`,
        );
        firstLoss ??= record.loss;
        const warning = diverged ? null : divergenceWarning(firstLoss, record.loss, lr);
        if (warning !== null) {
          diverged = true;
          log(warning);
        }
      },
    };

    const outDir = options.outDir;
    const outcome = await runLoop({
      state,
      epochs: config.epochs,
      batches: (epoch, startStep) => loader.batches(epoch, { startStep }),
      step,
      signal: options.signal,
      // Its checkpoints record completed epochs only: Ctrl-C takes effect at the next epoch's start.
      stopBetween: "epochs",
      hooks: [
        lrScheduleHook(optimizer, lrScheduleOf(config), { perStep: false, stepsPerEpoch: loader.batchesPerEpoch }),
        nonFiniteLossGuard<LinclsStepOutput>(
          (output) => output.loss,
          (value, position) => `lincls: the loss became ${value} in epoch ${position.epoch + 1}; try a smaller --lr`,
        ),
        epochReport,
        // main_lincls.py saves at epochs' ends only; an interrupted run resumes from the last one.
        ...(outDir === null
          ? []
          : [
              checkpointHook(
                ({ epoch }) =>
                  writeLinclsCheckpoint(
                    options,
                    backbone,
                    outDir,
                    fc,
                    optimizer,
                    { epoch, bestTop1, bestEpoch },
                    bestEpoch === epoch,
                  ),
                { onStop: false },
              ),
            ]),
      ],
    });
    const changed = changedTensors(backbone, snapshot);
    return {
      epochs: outcome.position.epoch,
      top1: (last.top1 / val.length) * 100,
      top5: (last.top5 / val.length) * 100,
      bestTop1,
      bestEpoch,
      backboneTensorsChecked: snapshot.size,
      backboneTensorsChanged: changed,
      interrupted: outcome.interrupted,
    };
  } finally {
    if (valLabels !== val.labels) valLabels.dispose();
    valFeatures?.dispose();
    trainFeatures?.dispose();
    for (const tensor of snapshot.values()) tensor.dispose();
    optimizer.dispose();
    fc.dispose();
    backbone.dispose();
  }
}

function evaluateFc(fc: Linear, features: Tensor, labels: Tensor, batchSize: number): { top1: number; top5: number } {
  let top1 = 0;
  let top5 = 0;
  const total = features.shape[0] ?? 0;
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const hits = scope(() =>
      noGrad(() => topkCorrect(fc.forward(features.narrow(0, start, n)), labels.narrow(0, start, n))),
    );
    top1 += hits.top1;
    top5 += hits.top5;
  }
  return { top1, top5 };
}

export const LINCLS_CHECKPOINT = "checkpoint.pth.tar";
export const LINCLS_BEST = "model_best.pth.tar";

/** main_lincls.py's checkpoint: the whole classifier's state dict (`module.`-prefixed), best_acc1, optimizer. */
function writeLinclsCheckpoint(
  options: LinearEvalOptions,
  backbone: FrozenBackbone,
  outDir: string,
  fc: Linear,
  optimizer: SGD,
  progress: { epoch: number; bestTop1: number; bestEpoch: number },
  isBest: boolean,
): void {
  const path = join(outDir, LINCLS_CHECKPOINT);
  mkdirSync(outDir, { recursive: true }); // a library caller's folder need not exist yet
  scope(() => {
    const stateDict = new Map<string, Tensor>();
    for (const [key, tensor] of backbone.stateDict()) stateDict.set(`module.${key}`, tensor);
    stateDict.set("module.fc.weight", fc.getParameter("weight"));
    stateDict.set("module.fc.bias", fc.getParameter("bias"));
    save(
      {
        epoch: progress.epoch,
        arch: backbone.arch,
        state_dict: stateDict,
        best_acc1: progress.bestTop1, // percent, as main_lincls.py's
        optimizer: optimizer.stateDict() as unknown as Saveable,
        moco_ts: { ...(options.checkpointInfo ?? {}), best_epoch: progress.bestEpoch },
      },
      path,
    );
  });
  if (isBest) writeFileAtomic(join(outDir, LINCLS_BEST), readFileSync(path), "linearEvaluation");
}
