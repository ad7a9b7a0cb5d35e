// MoCo pretraining: main_moco.py's recipe (SGD, the lr set per epoch, a checkpoint every epoch) over
// batched augmentation, with a kNN monitor, a metrics log and exact resume, as one configuration of
// the training loop (loop.ts): a state, a step function and hooks.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";

import { TwoViewAugment, evalTransform } from "../data/augment.js";
import { DataLoader, type Batch } from "../data/loader.js";
import { Random, type RandomState } from "../data/random.js";
import type { SubsetRecord } from "../data/subset.js";
import type { FeatureFunction } from "../encoder/features.js";
import { pixelFeatures } from "../encoder/pixels.js";
import type { EncoderInput } from "../encoder/input.js";
import { knnAccuracy } from "../eval/monitor.js";
import {
  MoCo,
  MoCoSettingsError,
  checkBatchAgainstSettings,
  type ContrastiveLogits,
  type MoCoOptions,
  type MoCoSettings,
  type PhaseTimer,
} from "../moco/index.js";
import { RESNET_ARCHS, onDevice, resnet, splitBatchNorm, type ResNet, type ResNetArch } from "../nn/index.js";
import type { ResNetLayout } from "../encoder/layout.js";
import { GradScaler, SGD, cosineSchedule, stepSchedule, withWarmup, type LrSchedule } from "../optim/index.js";
import {
  F,
  asFloat32,
  cuda,
  inLayout,
  manualSeed,
  resolvePrecision,
  setNumThreads,
  withPrecision,
  type CpuCapabilities,
  type ResolvedPrecision,
  type Tensor,
} from "../torch/index.js";
import {
  TrainingState,
  checkpointHook,
  currentLr,
  disposeStateDict,
  lrScheduleHook,
  nonFiniteLossGuard,
  onRank0,
  runLoop,
  topkCorrect,
  type LoopHooks,
  type LoopPosition,
} from "../loop/index.js";
import {
  readCheckpoint,
  disposeCheckpoint,
  writeCheckpoint,
  CHECKPOINT_FORMAT,
  type PretrainCheckpoint,
} from "./checkpoint.js";
import { ConfigError, RESOLVED_PRECISION_KEY, type PretrainConfig } from "./config.js";
import { openPretrainData, type PretrainData } from "./data.js";
import { MetricsLog, type KnnRecord } from "./metrics.js";
import { formatHeader, pretrainHeader, type RunHeader } from "./run-header.js";
import { initialiseBackbone } from "./init-backbone.js";
import type { DataParallel } from "./parallel.js";
import {
  keptCheckpointsHook,
  knnMonitorHook,
  metricsHook,
  type KnnAccuracy,
  type PretrainStepOutput,
} from "./pretrain-hooks.js";
import { silentProgress, type ProgressReporter } from "../loop/progress.js";

export { NonFiniteLossError } from "../loop/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic-file.js";
import {
  LATEST_CHECKPOINT,
  checkRunFolder,
  clearRunFolder,
  epochCheckpointName,
  resolveResume,
} from "../util/run-folder.js";

export const CHECKPOINT_FILE = LATEST_CHECKPOINT;
/** The checkpoint of the best kNN top-1 so far (main_moco.py's name for the best). */
export const BEST_CHECKPOINT = "model_best.pth.tar";

export interface PretrainOptions {
  progress?: ProgressReporter;
  /** Continue the run saved in this checkpoint (a file, or a run folder: its latest checkpoint). */
  resume?: string;
  /**
   * Replace the run already in `config.out` (its files are removed first). Without it, a folder that
   * holds a checkpoint of another run is refused before any work.
   */
  overwrite?: boolean;
  /** Aborting stops the run between steps and writes a checkpoint to resume from. */
  signal?: AbortSignal;
  /**
   * Run as one rank of a data-parallel job: `batchSize` is then the global batch, split evenly over
   * the ranks, and rank 0 alone writes the run folder, logs and measures kNN.
   */
  parallel?: DataParallel;
  /** The CPU the precision decision sees for `auto` (default: this machine's /proc/cpuinfo). */
  cpu?: CpuCapabilities;
}

export interface KnnSummary {
  /** The trained encoder, at the end. */
  trained: number | null;
  /** The same network at its random initialisation (measured before the first step). */
  random: number | null;
  /** Raw pixels as features. */
  pixels: number | null;
}

export interface PretrainResult {
  runDir: string;
  checkpoint: string;
  epochsDone: number;
  steps: number;
  interrupted: boolean;
  knn: KnnSummary;
  seconds: number;
  /** What the run was: data, network, method, schedule, device, warnings (also in run.json). */
  header: RunHeader;
}

function mocoSettings(config: PretrainConfig): MoCoSettings {
  return {
    dim: config.mocoDim,
    K: config.mocoK,
    m: config.mocoM,
    T: config.mocoT,
    mlp: config.mlp,
    symmetric: config.symmetric,
  };
}

/**
 * The per-rank batch and BN splits of a run over `worldSize` processes. The BN groups keep their size
 * (global batch / bnSplits), so a W-process run computes what one process with the global batch does;
 * bnSplits 1 means BN over each process's batch, as the official multi-GPU code.
 */
export function rankLayout(config: PretrainConfig, worldSize: number): { batchSize: number; bnSplits: number } {
  if (worldSize === 1) return { batchSize: config.batchSize, bnSplits: config.bnSplits };
  if (config.batchSize % worldSize !== 0) {
    throw new MoCoSettingsError(
      `batch size (${config.batchSize}, the global batch) must be divisible by the ${worldSize} processes`,
    );
  }
  if (config.bnSplits !== 1 && config.bnSplits % worldSize !== 0) {
    throw new MoCoSettingsError(
      `BN splits (${config.bnSplits}) must be a multiple of the ${worldSize} processes, or 1 (BN over each process's batch)`,
    );
  }
  return { batchSize: config.batchSize / worldSize, bnSplits: Math.max(1, config.bnSplits / worldSize) };
}

export function buildModel(config: PretrainConfig, inChannels: number, parallel?: DataParallel): MoCo {
  const { bnSplits } = rankLayout(config, parallel?.worldSize ?? 1);
  const normLayer = bnSplits > 1 ? splitBatchNorm(bnSplits) : undefined;
  const encoder = (outputs: number): ResNet =>
    resnet(config.arch as ResNetArch, {
      numClasses: outputs,
      width: config.width,
      cifarStem: config.cifarStem,
      inChannels,
      ...(normLayer === undefined ? {} : { normLayer }),
    });
  const options: MoCoOptions =
    parallel === undefined ? {} : { shuffle: parallel.shuffle, gatherKeys: parallel.gatherKeys };
  // Built on the CPU (the same random initialisation everywhere), then moved to the run's device.
  return new MoCo(encoder, mocoSettings(config), options).toDevice(config.device ?? "cpu");
}

/**
 * The layout of the query encoder `buildModel` makes for `config` on `inChannels`-channel images
 * (torchvision's names): what `moco knn/lincls --baseline random --preset NAME` initialises.
 */
export function queryEncoderLayout(
  config: Pick<PretrainConfig, "arch" | "width" | "cifarStem" | "mlp" | "mocoDim">,
  inChannels: number,
): ResNetLayout {
  const arch = config.arch as ResNetArch;
  const { block, layers } = RESNET_ARCHS[arch];
  const featureDim = config.width * 8 * (block === "bottleneck" ? 4 : 1);
  return {
    arch,
    block,
    layers,
    width: config.width,
    inChannels,
    cifarStem: config.cifarStem,
    featureDim,
    head: config.mlp
      ? { kind: "mlp", inFeatures: featureDim, hidden: featureDim, outFeatures: config.mocoDim }
      : { kind: "linear", inFeatures: featureDim, outFeatures: config.mocoDim },
  };
}

function lrSchedule(config: PretrainConfig): LrSchedule {
  const base = config.cos
    ? cosineSchedule({ lr: config.lr, epochs: config.epochs })
    : stepSchedule({ lr: config.lr, milestones: config.schedule });
  return config.warmupEpochs > 0 ? withWarmup(base, { epochs: config.warmupEpochs }) : base;
}

/** Top-1 and top-5 pretext accuracy (%): how often the positive (label 0) ranks first / in the top 5. */
function pretextAccuracy(output: ContrastiveLogits): { top1: number; top5: number } {
  const n = output.logits.shape[0] ?? 1;
  const hits = topkCorrect(output.logits, output.labels);
  return { top1: (hits.top1 / n) * 100, top5: (hits.top5 / n) * 100 };
}

/** The kNN monitor's features: un-augmented images through the query encoder, on its device. */
function knnFeatureFunction(
  model: MoCo,
  data: PretrainData,
  config: PretrainConfig,
  precision: ResolvedPrecision,
): FeatureFunction {
  const stats = data.train.stats;
  const device = model.device;
  return (images) => {
    const x = inLayout(precision, onDevice(evalTransform(images, { size: data.imageSize, stats }), device));
    const encoder = model.encoderQ;
    // The run's precision for the forward pass; the bank and similarities in float32.
    return asFloat32(
      withPrecision(precision, device, () =>
        config.knnFeatures === "head" ? encoder.forward(x) : encoder.forwardFeatures(x),
      ),
    );
  };
}

async function measureKnn(
  model: MoCo,
  data: PretrainData,
  config: PretrainConfig,
  precision: ResolvedPrecision,
): Promise<KnnAccuracy | null> {
  if (data.knnBank === null || data.knnTest === null) return null;
  const wasTraining = model.training;
  model.eval();
  try {
    const result = await knnAccuracy(
      { bank: data.knnBank, test: data.knnTest, k: config.knnK, t: config.knnT },
      knnFeatureFunction(model, data, config, precision),
    );
    result.predictions.dispose();
    return { top1: result.top1 * 100, top5: result.top5 * 100 };
  } finally {
    model.train(wasTraining);
  }
}

async function measurePixelKnn(data: PretrainData, config: PretrainConfig): Promise<KnnAccuracy | null> {
  if (data.knnBank === null || data.knnTest === null) return null;
  const stats = data.train.stats;
  const result = await knnAccuracy(
    { bank: data.knnBank, test: data.knnTest, k: config.knnK, t: config.knnT },
    pixelFeatures({ size: data.imageSize, stats }),
  );
  result.predictions.dispose();
  return { top1: result.top1 * 100, top5: result.top5 * 100 };
}

/** Every rank starts from rank 0's weights; rank 0 may spend a while on kNN and checkpoints first. */
function parallelHook(parallel: DataParallel, model: MoCo): LoopHooks<unknown> {
  return {
    started() {
      parallel.broadcastState(model);
      parallel.barrier();
    },
    epochCompleted() {
      parallel.barrier();
    },
  };
}

/** Loads a checkpoint into the state; a run over another number of processes restarts the augmentation streams. */
function restore(
  state: TrainingState<RandomState>,
  resumed: PretrainCheckpoint,
  rank: number,
  worldSize: number,
  log: (line: string) => void,
  scaler: GradScaler | null,
): void {
  if (scaler !== null && resumed.moco_ts.gradScaler !== undefined) scaler.loadStateDict(resumed.moco_ts.gradScaler);
  const byRank = resumed.moco_ts.augmentRngByRank;
  const sameLayout = (byRank?.length ?? 1) === worldSize;
  if (!sameLayout) {
    log(
      `the checkpoint is of a run over ${byRank?.length ?? 1} process(es), this one has ${worldSize}: ` +
        "the augmentation streams restart (the run continues, but not exactly as it would have)",
    );
  }
  state.loadStateDict({
    model: resumed.state_dict,
    optimizer: resumed.optimizer,
    torchRng: resumed.moco_ts.torchRng,
    streams: sameLayout ? { augment: byRank?.[rank] ?? resumed.moco_ts.augmentRng } : {},
    epoch: resumed.epoch,
    epochStep: resumed.moco_ts.epochStep,
    step: resumed.moco_ts.step,
  });
}

/**
 * Writes the state in the official layout (checkpoint.ts). Collective in a distributed run: every
 * rank's augmentation state goes into rank 0's file.
 */
function checkpointWriter(
  state: TrainingState<RandomState>,
  views: TwoViewAugment,
  config: PretrainConfig,
  path: string,
  parallel: DataParallel | undefined,
  input: EncoderInput,
  scaler: GradScaler | null,
): (position: LoopPosition) => void {
  return (position) => {
    const augmentStates = (parallel?.gather(views.getState()) ?? [views.getState()]) as unknown as RandomState[];
    if ((parallel?.rank ?? 0) !== 0) return;
    const dict = state.stateDict();
    try {
      writeCheckpoint(path, {
        epoch: position.epoch,
        arch: config.arch,
        state_dict: dict.model,
        optimizer: dict.optimizer,
        moco_ts: {
          format: CHECKPOINT_FORMAT,
          config,
          step: position.step,
          epochStep: position.epochStep,
          torchRng: dict.torchRng as Tensor,
          augmentRng: views.getState(),
          ...(parallel === undefined ? {} : { augmentRngByRank: augmentStates }),
          input,
          ...(scaler === null ? {} : { gradScaler: scaler.stateDict() }),
        },
      });
    } finally {
      disposeStateDict(dict);
    }
  };
}

/**
 * One MoCo step: two views of the batch, Algorithm 1's logits, InfoNCE (summed over both directions
 * when symmetric), SGD. A non-finite loss takes no step (the guard then stops the run). On a GPU the
 * batch goes there first (pinned, non-blocking) and is augmented there. In float16 the loss is scaled
 * (`scaler`): a step whose gradients overflowed is skipped and the scale backs off. `phases`, if
 * given, is told as each phase of the step ends (the benchmark's profiler; nothing else changes).
 */
export function pretrainStep(
  model: MoCo,
  views: TwoViewAugment,
  optimizer: SGD,
  parallel: DataParallel | undefined,
  precision: ResolvedPrecision,
  scaler: GradScaler | null = null,
  phases?: PhaseTimer,
): (batch: Batch) => PretrainStepOutput {
  const device = model.device;
  const averageGradients = parallel?.gradientAverager(model.parameters());
  return (batch) => {
    const { query, key } =
      batch.views === undefined
        ? views.apply(cuda.copyToDevice(batch.images, device))
        : views.applyDecoded(batch.views);
    const imQ = inLayout(precision, onDevice(query, device));
    const imK = inLayout(precision, onDevice(key, device));
    phases?.lap("data");
    // torch's AMP recipe: the forward pass and the loss inside autocast, the backward pass outside.
    // The loss is float32 (cross-entropy is on autocast's float32 list; the cast makes it explicit).
    const { outputs, loss } = withPrecision(precision, device, () => {
      const outputs = model.forward(imQ, imK, phases);
      const losses = outputs.map((o) => F.crossEntropy(o.logits.float(), o.labels));
      const loss = losses.length === 1 ? (losses[0] as Tensor) : losses.reduce((a, b) => a.add(b));
      return { outputs, loss };
    });
    const local = [loss.item(), ...Object.values(pretextAccuracy(outputs[0] as ContrastiveLogits))];
    // The ranks' means: every rank sees the same values and so stops together on a NaN.
    const [value = NaN, top1 = NaN, top5 = NaN] = parallel === undefined ? local : parallel.mean(local);
    phases?.lap("loss");
    if (Number.isFinite(value)) {
      optimizer.zeroGrad();
      (scaler === null ? loss : scaler.scale(loss)).backward();
      phases?.lap("backward");
      averageGradients?.();
      if (scaler === null) optimizer.step();
      else {
        scaler.step(optimizer);
        scaler.update();
      }
      phases?.lap("optimizer");
    }
    return { loss: value, top1, top5 };
  };
}

/**
 * How far a run is, in words: epochs at an epoch's end, steps inside one (a --max-steps run stops
 * there: "after 0 epoch(s)" would be wrong).
 */
export function progressWords(position: LoopPosition): string {
  if (position.step === 0) return "before training";
  return position.epochStep === 0 ? `after ${position.epoch} epoch(s)` : `after ${position.step} step(s)`;
}

/** A kNN result into the metrics log and the console. */
function knnRecorder(append: MetricsLog["append"], progress: ProgressReporter) {
  return (position: LoopPosition, features: string, result: KnnAccuracy): void => {
    const record: KnnRecord = {
      type: "knn",
      epoch: position.epoch,
      step: position.step,
      top1: result.top1,
      top5: result.top5,
      features,
      time: new Date().toISOString(),
    };
    append(record);
    progress.log(`kNN top-1 (${features}) ${progressWords(position)}: ${result.top1.toFixed(2)}%`);
  };
}

/** The subset.json beside a checkpoint, when there is one: the images the run was using. */
function savedSubset(checkpoint: string): SubsetRecord | null {
  const path = join(dirname(checkpoint), "subset.json");
  if (!existsSync(path)) return null;
  const record = JSON.parse(readFileSync(path, "utf8")) as SubsetRecord;
  return Array.isArray(record.indices) && typeof record.of === "number" ? record : null;
}

/**
 * The loader workers `--workers` auto gives a process with `cores` cores. On the CPU none: the
 * training step's libtorch threads already take every core, and a worker beside them did not make a
 * run faster (2 cores, ResNet-18 width 16 at 224 on JPEGs: 64–70 images/s with one worker, 66–71
 * without; docs/results.md), only bigger.
 * On a GPU the step leaves the cores to the data: one worker per core but the training thread's, at
 * most 8 (each holds a batch of float views in flight).
 */
export function loaderWorkers(cores: number, device: string): number {
  return device.startsWith("cuda") ? Math.min(8, Math.max(1, cores - 1)) : 0;
}

/** Runs (or resumes) MoCo pretraining as configured; the run folder gets config, metrics and checkpoints. */
export async function pretrain(config: PretrainConfig, options: PretrainOptions = {}): Promise<PretrainResult> {
  const started = Date.now();
  const parallel = options.parallel;
  const rank = parallel?.rank ?? 0;
  const lead = rank === 0;
  const progress = lead ? (options.progress ?? silentProgress) : silentProgress;
  // Processes on one machine share its cores.
  const cores = Math.max(1, Math.floor(availableParallelism() / (parallel?.localWorldSize ?? 1)));
  const threads = config.threads ?? cores;
  setNumThreads(threads);
  const resumePath = options.resume === undefined ? null : resolveResume(options.resume, config.out);
  if (lead) {
    checkRunFolder(config.out, { resume: resumePath, overwrite: options.overwrite === true });
    if (options.overwrite === true && resumePath === null) clearRunFolder(config.out);
  }
  const resumed = resumePath === null ? null : readCheckpoint(resumePath);
  if (resumed !== null && resumed.moco_ts.config.arch !== config.arch) {
    disposeCheckpoint(resumed);
    throw new Error(`${resumePath}: checkpoint of a ${resumed.arch}, the configuration asks for ${config.arch}`);
  }
  checkBatchAgainstSettings(mocoSettings(config), config.batchSize, config.bnSplits);
  const layout = rankLayout(config, parallel?.worldSize ?? 1);
  const precision = resolvePrecision(config, options.cpu);
  if (lead) {
    mkdirSync(config.out, { recursive: true });
    // What this run decided next to what it was asked; a resumed run decides again on its machine.
    writeJsonAtomic(join(config.out, "config.json"), { ...config, [RESOLVED_PRECISION_KEY]: precision }, "pretrain");
    progress.log(precision.reason);
  }
  const metrics = new MetricsLog(join(config.out, "metrics.jsonl"));
  const checkpointPath = join(config.out, CHECKPOINT_FILE);

  manualSeed(config.seed);
  const data = await openPretrainData(config, resumePath === null ? null : savedSubset(resumePath));
  // Which images the run uses: reproduced from the seed on resume, recorded to be seen and checked.
  if (lead && data.subset !== null) writeJsonAtomic(join(config.out, "subset.json"), data.subset, "pretrain");
  const model = buildModel(config, data.train.channels, parallel);
  // In place: the optimizer's parameters, and the checkpoint's values, are the same tensors.
  if (precision.channelsLast) model.to({ memoryFormat: "channelsLast" });
  const optimizer = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.wd });
  const scaler = precision.dtype === "float16" ? new GradScaler() : null;
  // cuDNN's autotuner: the batch shape stays fixed, so timing the algorithms once pays on every step.
  if (cuda.cudaIndex(model.device) !== null) cuda.setCudnnBenchmark(config.cudnnBenchmark);
  if (data.train.length < layout.batchSize) {
    data.dispose();
    model.dispose();
    optimizer.dispose();
    throw new ConfigError(
      `the ${data.train.length} training images of ${data.train.name} are fewer than one batch ` +
        `(--batch-size ${config.batchSize}): lower --batch-size or use more images`,
    );
  }
  // Each rank augments its images with its own stream; rank 0's is the one-process stream.
  const views = new TwoViewAugment(
    data.augment,
    rank === 0 ? { seed: config.seed } : { rng: new Random(config.seed, rank) },
  );
  // Image folders cut both views while decoding, each crop drawn on the image's own size, in the
  // loader's worker threads.
  const loader = new DataLoader(data.train, {
    batchSize: layout.batchSize,
    seed: config.seed,
    views,
    workers: config.workers ?? loaderWorkers(cores, config.device),
    ...(parallel === undefined ? {} : { sampler: parallel.sampler(data.train.length, config.seed) }),
  });
  const state = new TrainingState<RandomState>(model, optimizer, { augment: views });
  const stepsPerEpoch = loader.batchesPerEpoch;
  const totalSteps =
    config.maxSteps === null ? config.epochs * stepsPerEpoch : Math.min(config.maxSteps, config.epochs * stepsPerEpoch);
  // What the run is, before it spends its time: printed and kept as run.json.
  const header = pretrainHeader(
    config,
    data,
    model.encoderQ.numParameters(),
    { stepsPerEpoch, totalSteps },
    threads,
    precision,
    loader.workers,
  );
  if (lead) {
    for (const line of formatHeader(header)) progress.log(line);
    writeJsonAtomic(join(config.out, "run.json"), header, "pretrain");
  }
  const knn: KnnSummary = { trained: null, random: null, pixels: null };
  // The best kNN top-1 of the trained encoder so far, and whether model_best.pth.tar lags behind it.
  let best = -Infinity;
  let newBest = false;

  try {
    if (resumed !== null) {
      restore(state, resumed, rank, parallel?.worldSize ?? 1, progress.log, scaler);
      if (lead) {
        metrics.truncateAfter(state.step);
        metrics.append({ type: "resume", epoch: state.epoch, step: state.step, time: new Date().toISOString() });
      }
      for (const record of metrics.read()) {
        if (record.type === "knn" && record.features === "pixels") knn.pixels = record.top1;
        if (record.type === "knn" && record.epoch === 0 && record.features !== "pixels") knn.random = record.top1;
        if (record.type === "knn" && record.step > 0 && record.features !== "pixels")
          best = Math.max(best, record.top1);
      }
      progress.log(`resumed ${resumePath} at epoch ${state.epoch}, step ${state.step}`);
    } else {
      if (config.pretrained !== null)
        progress.log(
          `initialised the query and key encoders' backbone: ${initialiseBackbone(model, config.pretrained)}`,
        );
      if (lead) writeFileSync(metrics.path, "");
    }

    const append: MetricsLog["append"] = (record) => metrics.append(record);
    const outcome = await runLoop({
      state,
      epochs: config.epochs,
      maxSteps: totalSteps,
      batches: (epoch, startStep) => loader.batches(epoch, { startStep }),
      step: pretrainStep(model, views, optimizer, parallel, precision, scaler),
      signal: options.signal,
      // Every rank stops at the same step: a Ctrl-C reaches the ranks at different moments.
      ...(parallel === undefined ? {} : { agree: (aborted: boolean) => parallel.any(aborted) }),
      hooks: [
        lrScheduleHook(optimizer, lrSchedule(config), { perStep: config.warmupEpochs > 0, stepsPerEpoch }),
        nonFiniteLossGuard<PretrainStepOutput>(
          (output) => output.loss,
          (value, position) =>
            `loss became ${value} at epoch ${position.epoch + 1}, step ${position.step}: stopping; ` +
            `the last good checkpoint (${checkpointPath}) is intact. Lower --lr or check the data.`,
        ),
        ...onRank0<PretrainStepOutput>(
          rank,
          metricsHook({
            append,
            progress,
            batchSize: config.batchSize,
            epochs: config.epochs,
            stepsPerEpoch,
            totalSteps,
            lr: () => currentLr(optimizer),
          }),
          knnMonitorHook({
            encoder: () => measureKnn(model, data, config, precision),
            pixels: () => measurePixelKnn(data, config),
            baselines: resumed === null,
            every: config.knnEvery,
            epochs: config.epochs,
            totalSteps,
            features: config.knnFeatures,
            record: knnRecorder(append, progress),
            found: (kind, top1) => {
              knn[kind] = top1;
              if (kind === "trained" && top1 > best) {
                best = top1;
                newBest = true;
              }
            },
          }),
        ),
        // The checkpoint before the barrier: the other ranks wait for rank 0's file.
        checkpointHook(
          checkpointWriter(
            state,
            views,
            config,
            checkpointPath,
            parallel,
            {
              size: data.imageSize,
              channels: data.train.channels,
              ...data.train.stats,
            },
            scaler,
          ),
        ),
        ...onRank0(
          rank,
          keptCheckpointsHook({
            saveEvery: config.saveEvery,
            copyLatest: (name) => writeFileAtomic(join(config.out, name), readFileSync(checkpointPath), "pretrain"),
            bestName: BEST_CHECKPOINT,
            epochName: epochCheckpointName,
            takeNewBest: () => {
              const taken = newBest;
              newBest = false;
              return taken;
            },
          }),
        ),
        ...(parallel === undefined ? [] : [parallelHook(parallel, model)]),
      ],
    });
    const summary: PretrainResult = {
      runDir: config.out,
      checkpoint: checkpointPath,
      epochsDone: outcome.position.epoch,
      steps: outcome.position.step,
      interrupted: outcome.interrupted,
      knn,
      seconds: (Date.now() - started) / 1000,
      header,
    };
    if (lead) writeJsonAtomic(join(config.out, "summary.json"), summary, "pretrain");
    return summary;
  } finally {
    await loader.close();
    progress.done();
    if (resumed !== null) disposeCheckpoint(resumed);
    optimizer.dispose();
    model.dispose();
    data.dispose();
  }
}
