// `moco lincls`: linear evaluation of a pretrained encoder, main_lincls.py's protocol and flags.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { embedPrecision, encoderFeatures } from "../encoder/embed.js";
import { loadEncoder } from "../encoder/encoder.js";
import { Preprocessor } from "../encoder/preprocess.js";
import {
  LINCLS_DEFAULTS,
  formatLinclsHeader,
  linclsHeader,
  linclsImageSize,
  linearEvaluation,
  topkCorrect,
  type LinearEvalConfig,
  type LinearEvalState,
} from "../eval/lincls.js";
import type { SGDStateDict } from "../optim/index.js";
import { progressReporter } from "../loop/progress.js";
import { Tensor, getNumThreads, load, noGrad, scope, type Saveable } from "../torch/index.js";
import { collectTensors } from "../encoder/sources.js";
import { DATA_FLAGS, openEvalData } from "./eval-data.js";
import { ENCODER_FLAGS, encoderFromFlags, precisionPolicy, writeJson } from "./encoder-flags.js";
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
  { flag: "seed", kind: "int", help: "seed of the shuffles and augmentations", default: D.seed, bounds: { min: 0 } },
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

Linear evaluation (the MoCo paper's protocol, main_lincls.py): the pretrained backbone frozen in eval
mode, a new fc (N(0, 0.01), zero bias) trained by SGD on RandomResizedCrop + flip of the training
split, top-1/top-5 on Resize + CenterCrop of the test split every epoch. Writes checkpoint.pth.tar and
model_best.pth.tar (main_lincls.py's layout), metrics.jsonl (one line per epoch) and summary.json.

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
  return {
    config: ours["config"] as unknown as LinearEvalConfig,
    pretrained: ours["pretrained"],
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

async function evaluateOnly(flags: FlagReader, argvData: string | undefined): Promise<number> {
  const path = flags.optionalString("resume") ?? flags.string("pretrained");
  const log = (line: string) => console.error(line);
  const classifier = loadEncoder(path);
  try {
    const head = classifier.info.layout.head;
    if (head.kind !== "linear")
      throw new UsageError(`${path}: no linear classifier to evaluate (train one with moco lincls)`);
    const data = await openEvalData(flags, classifier, argvData, ["test"], log);
    try {
      const val = data.splits.get("test");
      if (val?.labels === undefined || val.labels === null) throw new Error("lincls: the test split has no labels");
      const saved = flags.given("resume") ? readLinclsCheckpoint(path) : null;
      saved?.dispose();
      const size =
        flags.optionalNumber("image-size") ??
        saved?.config.imageSize ??
        linclsImageSize(classifier, val, LINCLS_DEFAULTS);
      const preprocessor = new Preprocessor(classifier, val.channels, { size, centerCropRatio: 0.875 });
      // As training validated: the backbone under the policy, the classifier on float32 features.
      const backbone = encoderFeatures(classifier, preprocessor, precisionPolicy(flags, log));
      let top1 = 0;
      let top5 = 0;
      const batchSize = flags.number("batch-size");
      for (let start = 0; start < val.length; start += batchSize) {
        const indices = Int32Array.from({ length: Math.min(batchSize, val.length - start) }, (_, i) => start + i);
        const images = await val.batch(indices);
        const hits = scope(() =>
          noGrad(() =>
            topkCorrect(
              classifier.model.fc.forward(backbone(images)),
              (val.labels as Tensor).narrow(0, start, indices.length),
            ),
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
    const encoder = encoderFromFlags(flags, log, saved?.pretrained ?? null);
    try {
      const pretrained = encoder.info.path;
      const data = await openEvalData(flags, encoder, positionals[0], ["train", "test"], log);
      try {
        const train = data.splits.get("train");
        const val = data.splits.get("test");
        if (train === undefined || val === undefined) throw new Error("lincls: no train or test split");
        mkdirSync(out, { recursive: true });
        const resolved = { ...config, imageSize: config.imageSize ?? data.imageSize };
        writeJson(join(out, "config.json"), {
          ...resolved,
          pretrained,
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
            },
            ...(saved === null ? {} : { resume: saved.state }),
            log,
            progress,
            onEpoch: (record) => appendFileSync(metricsPath, `${JSON.stringify(record)}\n`),
            signal: interrupt.signal,
          });
          const summary = {
            pretrained,
            encoder: encoder.describe(),
            dataset: data.kind,
            ...result,
            seconds: (performance.now() - started) / 1000,
          };
          writeJson(join(out, "summary.json"), summary);
          if (result.backboneTensorsChanged.length > 0)
            throw new Error(
              `sanity check failed: backbone tensors changed during linear evaluation: ${result.backboneTensorsChanged.join(", ")}`,
            );
          console.log(
            `linear eval after ${result.epochs} epochs: top-1 ${result.top1.toFixed(2)}% top-5 ${result.top5.toFixed(2)}% ` +
              `(best top-1 ${result.bestTop1.toFixed(2)}% at epoch ${result.bestEpoch}); ` +
              `sanity check passed: ${result.backboneTensorsChecked} backbone tensors unchanged`,
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
      encoder.dispose();
    }
  } finally {
    saved?.dispose();
  }
}
