// MoCo pretraining: the loop of main_moco.py (SGD, the lr set per epoch, checkpoints every epoch)
// over batched augmentation, with a kNN monitor, a metrics log and exact resume.
import { mkdirSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";

import { TwoViewAugment, evalTransform } from "../data/augment.js";
import { DataLoader } from "../data/loader.js";
import { Random, type RandomState } from "../data/random.js";
import { knnAccuracy, type FeatureFunction } from "../eval/monitor.js";
import {
  MoCo,
  MoCoSettingsError,
  checkBatchAgainstSettings,
  type ContrastiveLogits,
  type MoCoOptions,
  type MoCoSettings,
} from "../moco/index.js";
import { resnet, splitBatchNorm, type ResNet, type ResNetArch } from "../nn/index.js";
import { SGD, cosineSchedule, setLr, stepSchedule, withWarmup, type LrSchedule } from "../optim/index.js";
import { F, getRngState, manualSeed, scope, setNumThreads, setRngState, type Tensor } from "../torch/index.js";
import { readCheckpoint, disposeCheckpoint, writeCheckpoint, CHECKPOINT_FORMAT } from "./checkpoint.js";
import type { PretrainConfig } from "./config.js";
import { openPretrainData, type PretrainData } from "./data.js";
import { MetricsLog, type KnnRecord } from "./metrics.js";
import { initialiseBackbone } from "./init-backbone.js";
import type { DataParallel } from "./parallel.js";
import { silentProgress, formatDuration, type ProgressReporter } from "./progress.js";
import { MocoError } from "../errors.js";

export const CHECKPOINT_FILE = "checkpoint.pth.tar";

export interface PretrainOptions {
  progress?: ProgressReporter;
  /** Continue the run saved in this checkpoint. */
  resume?: string;
  /** Aborting stops the run between steps and writes a checkpoint to resume from. */
  signal?: AbortSignal;
  /**
   * Run as one rank of a data-parallel job: `batchSize` is then the global batch, split evenly over
   * the ranks, and rank 0 alone writes the run folder, logs and measures kNN.
   */
  parallel?: DataParallel;
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
}

export class NonFiniteLossError extends MocoError {
  override name = "NonFiniteLossError";
  constructor(message: string) {
    super("ERR_NON_FINITE_LOSS", message);
  }
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
  return new MoCo(encoder, mocoSettings(config), options);
}

function lrSchedule(config: PretrainConfig): LrSchedule {
  const base = config.cos
    ? cosineSchedule({ lr: config.lr, epochs: config.epochs })
    : stepSchedule({ lr: config.lr, milestones: config.schedule });
  return config.warmupEpochs > 0 ? withWarmup(base, { epochs: config.warmupEpochs }) : base;
}

/** Top-1 and top-5 pretext accuracy (%): how often the positive (index 0) ranks first / in the top 5. */
function pretextAccuracy(output: ContrastiveLogits): { top1: number; top5: number } {
  return scope(() => {
    const n = output.logits.shape[0] ?? 1;
    const k = Math.min(5, output.logits.shape[1] ?? 1);
    const hits = output.logits.topk(k, 1).indices.eq(0);
    return {
      top1: (hits.narrow(1, 0, 1).sum().item() / n) * 100,
      top5: (hits.sum().item() / n) * 100,
    };
  });
}

function knnFeatureFunction(model: MoCo, data: PretrainData, config: PretrainConfig): FeatureFunction {
  const stats = data.train.stats;
  return (images) => {
    const x = evalTransform(images, { size: data.imageSize, stats });
    const encoder = model.encoderQ;
    const features = config.knnFeatures === "head" ? encoder.forward(x) : encoder.forwardFeatures(x);
    x.dispose();
    return features;
  };
}

async function measureKnn(
  model: MoCo,
  data: PretrainData,
  config: PretrainConfig,
): Promise<{ top1: number; top5: number } | null> {
  if (data.knnBank === null || data.knnTest === null) return null;
  const wasTraining = model.training;
  model.eval();
  try {
    const result = await knnAccuracy(
      { bank: data.knnBank, test: data.knnTest, k: config.knnK, t: config.knnT },
      knnFeatureFunction(model, data, config),
    );
    result.predictions.dispose();
    return { top1: result.top1 * 100, top5: result.top5 * 100 };
  } finally {
    model.train(wasTraining);
  }
}

async function measurePixelKnn(
  data: PretrainData,
  config: PretrainConfig,
): Promise<{ top1: number; top5: number } | null> {
  if (data.knnBank === null || data.knnTest === null) return null;
  const stats = data.train.stats;
  const result = await knnAccuracy(
    { bank: data.knnBank, test: data.knnTest, k: config.knnK, t: config.knnT },
    (images) => evalTransform(images, { size: data.imageSize, stats }),
  );
  result.predictions.dispose();
  return { top1: result.top1 * 100, top5: result.top5 * 100 };
}

function now(): string {
  return new Date().toISOString();
}

/** Runs (or resumes) MoCo pretraining as configured; the run folder gets config, metrics and checkpoints. */
export async function pretrain(config: PretrainConfig, options: PretrainOptions = {}): Promise<PretrainResult> {
  const started = Date.now();
  const parallel = options.parallel;
  const rank = parallel?.rank ?? 0;
  const lead = rank === 0;
  const progress = lead ? (options.progress ?? silentProgress) : silentProgress;
  // Processes on one machine share its cores.
  setNumThreads(config.threads ?? Math.max(1, Math.floor(availableParallelism() / (parallel?.localWorldSize ?? 1))));
  const resumed = options.resume === undefined ? null : readCheckpoint(options.resume);
  if (resumed !== null && resumed.moco_ts.config.arch !== config.arch) {
    disposeCheckpoint(resumed);
    throw new Error(`${options.resume}: checkpoint of a ${resumed.arch}, the configuration asks for ${config.arch}`);
  }
  checkBatchAgainstSettings(mocoSettings(config), config.batchSize, config.bnSplits);
  const layout = rankLayout(config, parallel?.worldSize ?? 1);
  if (lead) {
    mkdirSync(config.out, { recursive: true });
    writeFileSync(join(config.out, "config.json"), JSON.stringify(config, null, 2) + "\n");
  }
  const metrics = new MetricsLog(join(config.out, "metrics.jsonl"));
  const checkpointPath = join(config.out, CHECKPOINT_FILE);

  manualSeed(config.seed);
  const data = await openPretrainData(config);
  const model = buildModel(config, data.train.channels, parallel);
  const optimizer = new SGD(model.parameters(), { lr: config.lr, momentum: config.momentum, weightDecay: config.wd });
  const loader = new DataLoader(data.train, {
    batchSize: layout.batchSize,
    seed: config.seed,
    ...(parallel === undefined ? {} : { sampler: parallel.sampler(data.train.length, config.seed) }),
  });
  // Each rank augments its images with its own stream; rank 0's is the one-process stream.
  const views = new TwoViewAugment(
    data.augment,
    rank === 0 ? { seed: config.seed } : { rng: new Random(config.seed, rank) },
  );
  const averageGradients = parallel?.gradientAverager(model.parameters());
  const schedule = lrSchedule(config);
  const stepsPerEpoch = loader.batchesPerEpoch;
  const knn: KnnSummary = { trained: null, random: null, pixels: null };
  const append: MetricsLog["append"] = (record) => {
    if (lead) metrics.append(record);
  };
  const recordKnn = (epoch: number, step: number, features: string, result: { top1: number; top5: number }) => {
    const record: KnnRecord = { type: "knn", epoch, step, top1: result.top1, top5: result.top5, features, time: now() };
    append(record);
    progress.log(`kNN top-1 (${features}) after ${epoch} epoch(s): ${result.top1.toFixed(2)}%`);
  };

  let epoch = 0;
  let epochStep = 0;
  let step = 0;
  let interrupted = false;
  try {
    if (resumed !== null) {
      model.loadStateDict(resumed.state_dict, { strict: true });
      optimizer.loadStateDict(resumed.optimizer);
      setRngState(resumed.moco_ts.torchRng);
      const byRank = resumed.moco_ts.augmentRngByRank;
      const worldSize = parallel?.worldSize ?? 1;
      if ((byRank?.length ?? 1) !== worldSize) {
        progress.log(
          `the checkpoint is of a run over ${byRank?.length ?? 1} process(es), this one has ${worldSize}: ` +
            "the augmentation streams restart (the run continues, but not exactly as it would have)",
        );
      } else {
        views.setState(byRank?.[rank] ?? resumed.moco_ts.augmentRng);
      }
      epoch = resumed.epoch;
      epochStep = resumed.moco_ts.epochStep;
      step = resumed.moco_ts.step;
      if (lead) metrics.truncateAfter(step);
      for (const record of metrics.read()) {
        if (record.type === "knn" && record.features === "pixels") knn.pixels = record.top1;
        if (record.type === "knn" && record.epoch === 0 && record.features !== "pixels") knn.random = record.top1;
      }
      progress.log(`resumed ${options.resume} at epoch ${epoch}, step ${step}`);
    } else {
      if (config.pretrained !== null)
        progress.log(
          `initialised the query and key encoders' backbone: ${initialiseBackbone(model, config.pretrained)}`,
        );
    }
    if (resumed === null && lead) {
      writeFileSync(metrics.path, "");
      if (data.knnBank !== null) {
        const pixels = await measurePixelKnn(data, config);
        if (pixels !== null) {
          knn.pixels = pixels.top1;
          recordKnn(0, 0, "pixels", pixels);
        }
        const random = await measureKnn(model, data, config);
        if (random !== null) {
          knn.random = random.top1;
          recordKnn(0, 0, config.knnFeatures, random);
        }
      }
    }

    parallel?.broadcastState(model);
    parallel?.barrier();

    // Collective in a distributed run (every rank's augmentation state goes into rank 0's file).
    const save = (completedEpochs: number, stepsIntoEpoch: number) => {
      const augmentStates = (parallel?.gather(views.getState()) ?? [views.getState()]) as unknown as RandomState[];
      if (!lead) return;
      const stateDict = model.stateDict();
      const torchRng = getRngState();
      try {
        writeCheckpoint(checkpointPath, {
          epoch: completedEpochs,
          arch: config.arch,
          state_dict: stateDict,
          optimizer: optimizer.stateDict(),
          moco_ts: {
            format: CHECKPOINT_FORMAT,
            config,
            step,
            epochStep: stepsIntoEpoch,
            torchRng,
            augmentRng: views.getState(),
            ...(parallel === undefined ? {} : { augmentRngByRank: augmentStates }),
          },
        });
      } finally {
        for (const tensor of stateDict.values()) tensor.dispose();
        torchRng.dispose();
      }
    };

    const totalSteps =
      config.maxSteps === null
        ? config.epochs * stepsPerEpoch
        : Math.min(config.maxSteps, config.epochs * stepsPerEpoch);
    let rate = 0;
    training: for (; epoch < config.epochs; epoch++) {
      const epochStart = Date.now();
      const sums = { loss: 0, top1: 0, top5: 0, n: 0 };
      let lr = schedule(epoch);
      let last = Date.now();
      for await (const batch of loader.batches(epoch, { startStep: epochStep })) {
        try {
          // Every rank stops at the same step: a Ctrl-C reaches the ranks at different moments.
          const aborted = options.signal?.aborted === true;
          const stop = parallel === undefined ? aborted : parallel.any(aborted);
          if (stop || step >= totalSteps) {
            interrupted = stop;
            save(epoch, batch.step);
            break training;
          }
          if (config.warmupEpochs > 0) lr = schedule(epoch + batch.step / stepsPerEpoch);
          setLr(optimizer, lr);
          const result = scope(() => {
            const { query, key } = views.apply(batch.images);
            const outputs = model.forward(query, key);
            const losses = outputs.map((o) => F.crossEntropy(o.logits, o.labels));
            const loss = losses.length === 1 ? (losses[0] as Tensor) : losses.reduce((a, b) => a.add(b));
            const local = [loss.item(), ...Object.values(pretextAccuracy(outputs[0] as ContrastiveLogits))];
            // The ranks' means: every rank sees the same values and so stops together on a NaN.
            const [value = NaN, top1 = NaN, top5 = NaN] = parallel === undefined ? local : parallel.mean(local);
            if (!Number.isFinite(value)) {
              throw new NonFiniteLossError(
                `loss became ${value} at epoch ${epoch + 1}, step ${step + 1}: stopping; ` +
                  `the last good checkpoint (${checkpointPath}) is intact. Lower --lr or check the data.`,
              );
            }
            optimizer.zeroGrad();
            loss.backward();
            averageGradients?.();
            optimizer.step();
            return { loss: value, top1, top5 };
          });
          step++;
          epochStep = batch.step + 1;
          const t = Date.now();
          const instant = (config.batchSize * 1000) / Math.max(1, t - last);
          rate = rate === 0 ? instant : 0.9 * rate + 0.1 * instant;
          last = t;
          sums.loss += result.loss;
          sums.top1 += result.top1;
          sums.top5 += result.top5;
          sums.n++;
          append({ type: "step", epoch, step, ...result, lr, imagesPerSec: instant, time: now() });
          progress.update({
            epoch,
            epochs: config.epochs,
            stepInEpoch: epochStep,
            stepsPerEpoch,
            loss: result.loss,
            top1: result.top1,
            lr,
            imagesPerSec: rate,
            etaSeconds: ((totalSteps - step) * config.batchSize) / Math.max(rate, 1e-9),
          });
        } finally {
          batch.dispose();
        }
        // In-memory batches resolve as microtasks: without a turn of the event loop, Ctrl-C (and
        // the finalizers of forgotten tensors) would wait for the end of the run.
        await new Promise((resolve) => setImmediate(resolve));
      }
      epochStep = 0;
      const seconds = (Date.now() - epochStart) / 1000;
      const mean = (v: number) => (sums.n === 0 ? NaN : v / sums.n);
      append({
        type: "epoch",
        epoch: epoch + 1,
        step,
        loss: mean(sums.loss),
        top1: mean(sums.top1),
        top5: mean(sums.top5),
        lr,
        seconds,
        imagesPerSec: (sums.n * config.batchSize) / Math.max(seconds, 1e-9),
        time: now(),
      });
      progress.log(
        `epoch ${epoch + 1}/${config.epochs}: loss ${mean(sums.loss).toFixed(4)}, pretext top-1 ${mean(sums.top1).toFixed(1)}%, ` +
          `${formatDuration(seconds)}`,
      );
      const isLastEpoch = epoch + 1 === config.epochs || step >= totalSteps;
      if (lead && (isLastEpoch || (config.knnEvery > 0 && (epoch + 1) % config.knnEvery === 0))) {
        const result = await measureKnn(model, data, config);
        if (result !== null) {
          recordKnn(epoch + 1, step, config.knnFeatures, result);
          knn.trained = result.top1;
        }
      }
      save(epoch + 1, 0);
      parallel?.barrier();
      if (step >= totalSteps && epoch + 1 < config.epochs) {
        epoch++;
        break;
      }
    }
    if (lead && knn.trained === null && !interrupted) {
      const result = await measureKnn(model, data, config);
      if (result !== null) {
        recordKnn(epoch, step, config.knnFeatures, result);
        knn.trained = result.top1;
      }
    }
    const summary: PretrainResult = {
      runDir: config.out,
      checkpoint: checkpointPath,
      epochsDone: epoch,
      steps: step,
      interrupted,
      knn,
      seconds: (Date.now() - started) / 1000,
    };
    if (lead) writeFileSync(join(config.out, "summary.json"), JSON.stringify(summary, null, 2) + "\n");
    return summary;
  } finally {
    progress.done();
    if (resumed !== null) disposeCheckpoint(resumed);
    optimizer.dispose();
    model.dispose();
    data.dispose();
  }
}
