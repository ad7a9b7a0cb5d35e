// `moco lincls`: linear evaluation of a pretrained encoder, main_lincls.py's protocol and flags.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { embedPrecision, encoderFeatures } from "../encoder/embed.js";
import { loadEncoder, type Encoder } from "../encoder/encoder.js";
import type { FeatureFunction } from "../encoder/features.js";
import { Preprocessor } from "../encoder/preprocess.js";
import {
  LINCLS_DEFAULTS,
  PIXELS_ARCH,
  describeLinclsInput,
  formatLinclsHeader,
  linclsHeader,
  linclsImageSize,
  linearEvaluation,
  pixelLinclsFeatures,
  topkCorrect,
  type LinearEvalConfig,
  type LinearEvalState,
} from "../eval/lincls.js";
import type { SGDStateDict } from "../optim/index.js";
import { progressReporter } from "../loop/progress.js";
import { F, Tensor, getNumThreads, load, noGrad, scope, type Saveable } from "../torch/index.js";
import { collectTensors } from "../encoder/sources.js";
import { DATA_FLAGS, openEvalData, type EvalDataDefaults } from "./eval-data.js";
import type { ImageDataset } from "../data/dataset.js";
import { BASELINE_FLAGS, baselineRecord, subjectFromFlags, type BaselineRecord } from "./baseline.js";
import { ENCODER_FLAGS, precisionPolicy, writeJson } from "./encoder-flags.js";
import { listenForInterrupt } from "./interrupt.js";
import { checkRunFolder, clearRunFolder, resolveResume } from "../util/run-folder.js";
import {
  CHANNELS_LAST_FLAG,
  DEVICE_FLAG,
  PRECISION_FLAG,
  FlagReader,
  UsageError,
  flagHelp,
  parseCommand,
  type Flag,
} from "./flags.js";

const D = LINCLS_DEFAULTS;
const LINCLS_FLAGS: readonly Flag[] = [
  ...ENCODER_FLAGS,
  ...BASELINE_FLAGS,
  ...DATA_FLAGS,
  DEVICE_FLAG,
  PRECISION_FLAG,
  CHANNELS_LAST_FLAG,
  { flag: "epochs", kind: "int", help: "epochs to train", default: D.epochs, bounds: { min: 1 } },
  {
    flag: "batch-size",
    short: "b",
    kind: "int",
    help: "images per step",
    default: D.batchSize,
    bounds: { min: 1 },
  },
  {
    flag: "lr",
    kind: "float",
    help: "initial learning rate",
    aliases: ["learning-rate"],
    default: D.lr,
    bounds: { min: 0, minExclusive: true },
  },
  {
    flag: "schedule",
    kind: "list",
    help: "epochs where the lr drops x0.1 (without --cos)",
    default: D.schedule,
    bounds: { min: 0 },
  },
  { flag: "cos", kind: "bool", help: "cosine learning-rate schedule", default: D.cos },
  { flag: "momentum", kind: "float", help: "SGD momentum", default: D.momentum, bounds: { min: 0 } },
  {
    flag: "wd",
    kind: "float",
    help: "weight decay",
    aliases: ["weight-decay"],
    default: D.wd,
    bounds: { min: 0 },
  },
  {
    flag: "precompute-features",
    kind: "bool",
    help: "no train augmentation: compute the training features once (much faster on a CPU)",
    default: D.precomputeFeatures,
  },
  {
    flag: "seed",
    kind: "int",
    help: "seed of the shuffles, augmentations, --subset's sample and --baseline random's initialisation",
    default: D.seed,
    bounds: { min: 0 },
  },
  {
    flag: "resume",
    kind: "string",
    meta: "FILE|DIR|auto",
    help: "continue from a lincls checkpoint (its settings, overridden by flags given): a file, a run folder, or auto (--out's run if there is one, else a fresh start)",
  },
  {
    flag: "overwrite",
    kind: "bool",
    help: "replace the run already in --out (a folder with a checkpoint is otherwise refused)",
    default: false,
  },
  {
    flag: "evaluate",
    short: "e",
    kind: "bool",
    help: "only evaluate the classifier of --resume (or a lincls --pretrained)",
    default: false,
  },
  {
    flag: "out",
    kind: "string",
    meta: "DIR",
    help: "run folder: checkpoints, metrics.jsonl, summary.json",
    default: "runs/lincls",
  },
];

export const LINCLS_HELP = `Usage: moco lincls --pretrained FILE [DATA] [options]
       moco lincls --baseline pixels [--pretrained FILE] [DATA] [options]
       moco lincls --baseline random (--pretrained FILE | --preset NAME) [DATA] [options]

Linear evaluation (the MoCo paper's protocol, main_lincls.py): the pretrained backbone frozen in eval
mode, a new fc (N(0, 0.01), zero bias) trained by SGD on RandomResizedCrop + flip of the training
split, top-1/top-5 on Resize + CenterCrop of the test split every epoch. Writes checkpoint.pth.tar and
model_best.pth.tar (main_lincls.py's layout), metrics.jsonl (one line per epoch) and summary.json.
Baselines through the same protocol and splits: --baseline pixels (a linear probe on the pixels,
each standardised with the training split's mean and std; lr 30 is far too large for it, try
--lr 0.01), --baseline random (the same network at its random initialisation, manualSeed(--seed)).

${flagHelp(LINCLS_FLAGS)}`;

const CONFIG_FLAGS: readonly [keyof LinearEvalConfig, string][] = [
  ["epochs", "epochs"],
  ["batchSize", "batch-size"],
  ["lr", "lr"],
  ["schedule", "schedule"],
  ["cos", "cos"],
  ["momentum", "momentum"],
  ["wd", "wd"],
  ["precomputeFeatures", "precompute-features"],
  ["seed", "seed"],
  ["imageSize", "image-size"],
];

interface SavedRun {
  config: LinearEvalConfig;
  pretrained: string;
  /** The baseline the run evaluated (null: the pretrained encoder). */
  baseline: BaselineRecord | null;
  /** A raw-pixel classifier's standardisation (`module.pixels.mean`, `module.pixels.std`). */
  pixels: { mean: Tensor; std: Tensor } | null;
  state: LinearEvalState;
  /** Frees every tensor the checkpoint held. */
  dispose(): void;
}

const isObject = (v: unknown): v is Record<string, Saveable> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Map) && !(v instanceof Tensor);

/** Reads what --resume needs from a checkpoint written by `moco lincls`. */
function readLinclsCheckpoint(path: string): SavedRun {
  const root = load(path);
  const tensors = collectTensors(root, path);
  const dispose = () => {
    for (const tensor of tensors) tensor.dispose();
  };
  const fail = (why: string): never => {
    dispose();
    throw new UsageError(`${path}: not a moco lincls checkpoint (${why})`);
  };
  if (!isObject(root)) return fail("no dict at the top");
  const ours = root["moco_ts"];
  if (!isObject(ours) || !isObject(ours["config"]) || typeof ours["pretrained"] !== "string")
    return fail("no moco_ts.config / moco_ts.pretrained");
  const stateDict = root["state_dict"];
  const entry = (key: string) =>
    stateDict instanceof Map ? stateDict.get(key) : isObject(stateDict) ? stateDict[key] : undefined;
  const weight = entry("module.fc.weight");
  const bias = entry("module.fc.bias");
  if (!(weight instanceof Tensor) || !(bias instanceof Tensor)) return fail("no module.fc.weight / module.fc.bias");
  const epoch = root["epoch"];
  const best = root["best_acc1"];
  if (typeof epoch !== "number" || typeof best !== "number") return fail("no epoch / best_acc1");
  const bestEpoch = ours["best_epoch"];
  const baseline = baselineRecord(ours["baseline"]);
  const mean = entry("module.pixels.mean");
  const std = entry("module.pixels.std");
  if (baseline?.kind === "pixels" && !(mean instanceof Tensor && std instanceof Tensor))
    return fail("a raw-pixel classifier without module.pixels.mean / module.pixels.std");
  return {
    config: ours["config"] as unknown as LinearEvalConfig,
    pretrained: ours["pretrained"],
    baseline,
    pixels: mean instanceof Tensor && std instanceof Tensor ? { mean, std } : null,
    state: {
      epoch,
      bestTop1: best, // percent, as written
      bestEpoch: typeof bestEpoch === "number" ? bestEpoch : epoch,
      fc: { weight, bias },
      optimizer: root["optimizer"] as unknown as SGDStateDict,
    },
    dispose,
  };
}

function configFromFlags(flags: FlagReader, saved: LinearEvalConfig | null): LinearEvalConfig {
  const config: Record<string, unknown> = { ...LINCLS_DEFAULTS, ...(saved ?? {}) };
  for (const [key, flag] of CONFIG_FLAGS) {
    if (saved !== null && !flags.given(flag)) continue;
    config[key] =
      flag === "schedule"
        ? flags.list(flag)
        : flag === "cos" || flag === "precompute-features"
          ? flags.bool(flag)
          : flag === "image-size"
            ? flags.optionalNumber(flag)
            : flags.number(flag);
  }
  // The precision policy, like the device: kept from a resumed run unless given.
  if (saved === null || flags.given("precision") || config["precision"] === undefined)
    config["precision"] = flags.string("precision");
  if (saved === null || flags.given("channels-last") || config["channelsLast"] === undefined)
    config["channelsLast"] = flags.string("channels-last");
  // Where the network runs: kept from a resumed run unless given (the library's config names it `device`).
  if (saved === null || flags.given("device") || config["device"] === undefined)
    config["device"] = flags.optionalString("device") ?? "cpu";
  return config as unknown as LinearEvalConfig;
}

/** A lincls checkpoint of ours, or null for any other file (main_lincls.py's, a pretraining checkpoint). */
function linclsCheckpointOrNull(path: string): SavedRun | null {
  try {
    return readLinclsCheckpoint(path);
  } catch {
    return null; // loadEncoder then says what the file is not
  }
}

/** The classifier of a checkpoint as features and an fc: a network's backbone, or the raw-pixel baseline's. */
interface Classifier {
  /** For openEvalData's defaults. */
  defaults: Encoder | EvalDataDefaults;
  /** uint8 images → features, once the validation split and crop size are known. */
  features(val: ImageDataset, size: number): FeatureFunction;
  fc(features: Tensor): Tensor;
  /** The crop size when neither --image-size nor the checkpoint says. */
  defaultSize(val: ImageDataset): number;
  dispose(): void;
}

function classifierOf(
  path: string,
  saved: SavedRun | null,
  flags: FlagReader,
  log: (line: string) => void,
): Classifier {
  const pixels = saved?.pixels ?? null;
  if (saved !== null && saved.baseline?.kind === "pixels" && pixels !== null) {
    const config = saved.config as LinearEvalConfig & { dataset?: unknown; data?: unknown };
    const trainedOn =
      typeof config.dataset === "string"
        ? {
            dataset: config.dataset,
            data: typeof config.data === "string" ? config.data : null,
            imageSize: config.imageSize,
          }
        : null;
    return {
      defaults: { trainedOn, cifarStem: false },
      features: (val, size) => {
        const dim = val.channels * size * size;
        if (pixels.mean.shape[0] !== dim)
          throw new UsageError(
            `${path}: a raw-pixel classifier of ${pixels.mean.shape[0]} features, but ${val.channels}×${size}×${size} ` +
              `images give ${dim} (--image-size as in training)`,
          );
        return pixelLinclsFeatures({ channels: val.channels, size, stats: val.stats, standardization: pixels });
      },
      fc: (x) => {
        const weight = saved.state.fc.weight;
        return F.linear(x, weight, saved.state.fc.bias);
      },
      defaultSize: (val) => val.height,
      dispose: () => saved.dispose(),
    };
  }
  const classifier = loadEncoder(path);
  const head = classifier.info.layout.head;
  if (head.kind !== "linear") {
    classifier.dispose();
    saved?.dispose();
    throw new UsageError(`${path}: no linear classifier to evaluate (train one with moco lincls)`);
  }
  return {
    defaults: classifier,
    features: (val, size) => {
      const preprocessor = new Preprocessor(classifier, val.channels, { size, centerCropRatio: 0.875 });
      // As training validated: the backbone under the policy, the classifier on float32 features.
      return encoderFeatures(classifier, preprocessor, precisionPolicy(flags, log));
    },
    fc: (x) => classifier.model.fc.forward(x),
    defaultSize: (val) => linclsImageSize(classifier, val, LINCLS_DEFAULTS),
    dispose: () => {
      classifier.dispose();
      saved?.dispose();
    },
  };
}

async function evaluateOnly(flags: FlagReader, argvData: string | undefined): Promise<number> {
  for (const flag of ["baseline", "preset"])
    if (flags.given(flag))
      throw new UsageError(
        `--${flag} is for training a classifier; --evaluate evaluates the one in --resume (or --pretrained), a baseline's included`,
      );
  const path = flags.optionalString("resume") ?? flags.string("pretrained");
  const log = (line: string) => console.error(line);
  const saved = flags.given("resume") ? readLinclsCheckpoint(path) : linclsCheckpointOrNull(path);
  const classifier = classifierOf(path, saved, flags, log);
  try {
    const data = await openEvalData(flags, classifier.defaults, argvData, ["test"], log);
    try {
      const val = data.splits.get("test");
      if (val?.labels === undefined || val.labels === null) throw new Error("lincls: the test split has no labels");
      const size = flags.optionalNumber("image-size") ?? saved?.config.imageSize ?? classifier.defaultSize(val);
      const features = classifier.features(val, size);
      let top1 = 0;
      let top5 = 0;
      const batchSize = flags.number("batch-size");
      for (let start = 0; start < val.length; start += batchSize) {
        const indices = Int32Array.from({ length: Math.min(batchSize, val.length - start) }, (_, i) => start + i);
        const images = await val.batch(indices);
        const hits = scope(() =>
          noGrad(() =>
            topkCorrect(classifier.fc(features(images)), (val.labels as Tensor).narrow(0, start, indices.length)),
          ),
        );
        images.dispose();
        top1 += hits.top1;
        top5 += hits.top5;
      }
      console.log(
        `Acc@1 ${((top1 / val.length) * 100).toFixed(3)} Acc@5 ${((top5 / val.length) * 100).toFixed(3)} (${val.length} images)`,
      );
      return 0;
    } finally {
      data.dispose();
    }
  } finally {
    classifier.dispose();
  }
}

export async function runLincls(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "lincls",
    flags: LINCLS_FLAGS,
    help: LINCLS_HELP,
    positionals: { max: 1, what: "one data folder" },
  });
  if (command === null) return 0;
  const { flags, positionals } = command;
  if (flags.bool("evaluate")) return evaluateOnly(flags, positionals[0]);
  // A live progress line on a terminal; every other line goes through it so they do not collide.
  const progress = progressReporter(process.stderr, 10);
  const log = (line: string) => progress.log(line);

  const out = flags.string("out");
  const resumeGiven = flags.optionalString("resume");
  const resumePath = resumeGiven === null ? null : resolveResume(resumeGiven, out);
  // Before the encoder and the data are read: another run's files are never replaced silently.
  checkRunFolder(out, { resume: resumePath, overwrite: flags.bool("overwrite") });
  if (resumePath === null && flags.bool("overwrite")) clearRunFolder(out);
  const saved = resumePath === null ? null : readLinclsCheckpoint(resumePath);
  try {
    const config = configFromFlags(flags, saved?.config ?? null);
    const subject = subjectFromFlags(flags, log, {
      seed: config.seed,
      saved: saved === null ? null : { pretrained: saved.pretrained, baseline: saved.baseline },
    });
    try {
      // A raw-pixel run without --pretrained is tied to no file.
      const pretrained = subject.source ?? PIXELS_ARCH;
      const baseline = subject.baseline;
      const data = await openEvalData(flags, subject.defaults, positionals[0], ["train", "test"], log);
      try {
        const train = data.splits.get("train");
        const val = data.splits.get("test");
        if (train === undefined || val === undefined) throw new Error("lincls: no train or test split");
        const encoder = subject.input(train.channels);
        mkdirSync(out, { recursive: true });
        const resolved = { ...config, imageSize: config.imageSize ?? data.imageSize };
        writeJson(join(out, "config.json"), {
          ...resolved,
          pretrained,
          baseline,
          dataset: data.kind,
          resolvedPrecision: embedPrecision(resolved),
        });
        if (data.subset !== null) writeJson(join(out, "subset.json"), data.subset);
        const metricsPath = join(out, "metrics.jsonl");
        if (saved === null) writeFileSync(metricsPath, "");
        const header = linclsHeader(encoder, train, val, resolved, getNumThreads());
        for (const line of formatLinclsHeader(header)) log(line);
        writeJson(join(out, "run.json"), header);
        const interrupt = listenForInterrupt("stopping after this epoch and writing a checkpoint");
        const started = performance.now();
        try {
          const result = await linearEvaluation({
            encoder,
            train,
            val,
            config: resolved,
            outDir: out,
            // dataset and data make the checkpoint self-describing, as a pretraining checkpoint is.
            checkpointInfo: {
              config: { ...resolved, dataset: data.kind, data: data.root } as unknown as Saveable,
              pretrained,
              // What --resume rebuilds, and --evaluate reads a raw-pixel classifier by.
              ...(baseline === null ? {} : { baseline: baseline as unknown as Saveable }),
            },
            ...(saved === null ? {} : { resume: saved.state }),
            log,
            progress,
            onEpoch: (record) => appendFileSync(metricsPath, `${JSON.stringify(record)}\n`),
            signal: interrupt.signal,
          });
          const summary = {
            pretrained,
            baseline: baseline?.kind ?? null,
            ...(baseline?.kind === "random" ? { seed: baseline.seed } : {}),
            encoder: describeLinclsInput(encoder, train, resolved),
            dataset: data.kind,
            ...result,
            seconds: (performance.now() - started) / 1000,
          };
          writeJson(join(out, "summary.json"), summary);
          if (result.backboneTensorsChanged.length > 0)
            throw new Error(
              `sanity check failed: backbone tensors changed during linear evaluation: ${result.backboneTensorsChanged.join(", ")}`,
            );
          const what = baseline === null ? "" : ` (${baseline.kind === "pixels" ? "raw pixels" : "random init"})`;
          const frozen = encoder === "pixels" ? "pixel standardisation tensors" : "backbone tensors";
          console.log(
            `linear eval${what} after ${result.epochs} epochs: top-1 ${result.top1.toFixed(2)}% top-5 ${result.top5.toFixed(2)}% ` +
              `(best top-1 ${result.bestTop1.toFixed(2)}% at epoch ${result.bestEpoch}); ` +
              `sanity check passed: ${result.backboneTensorsChecked} ${frozen} unchanged`,
          );
          console.log(`run folder: ${out}`);
          return result.interrupted ? 130 : 0;
        } finally {
          progress.done(); // clears a live line left by a failed run too
          interrupt.release();
        }
      } finally {
        data.dispose();
      }
    } finally {
      subject.dispose();
    }
  } finally {
    saved?.dispose();
  }
}
