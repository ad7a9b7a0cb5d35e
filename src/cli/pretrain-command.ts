// `moco pretrain`: MoCo v1/v2 pretraining. Flag names follow the official main_moco.py (its
// spellings are accepted as aliases); each flag sets one key of the configuration, so preset ←
// config file ← flags resolve and are checked in one place (train/config.ts).
import { join } from "node:path";

import { readCheckpoint, disposeCheckpoint } from "../train/checkpoint.js";
import {
  COMMAND_LINE,
  PRESETS,
  readConfigLayer,
  resolveConfig,
  type ConfigLayer,
  type PresetName,
  type PretrainConfig,
} from "../train/config.js";
import { CHECKPOINT_FILE, pretrain, rankLayout, type PretrainResult } from "../train/pretrain.js";
import { progressReporter } from "../loop/progress.js";
import { DATASETS, DATASET_NAMES, datasetRoot } from "../data/registry.js";
import { RESNET_ARCHS } from "../nn/index.js";
import { explainFailure, joinJob } from "./distributed.js";
import { checkDevice } from "./encoder-flags.js";
import {
  CHANNELS_LAST_FLAG,
  DEVICE_FLAG,
  PRECISION_FLAG,
  THREADS_FLAG,
  UsageError,
  flagHelp,
  parseFlags,
  type Flag,
  type FlagValue,
} from "./flags.js";
import { listenForInterrupt } from "./interrupt.js";
import { launchWorkers, type LaunchValues } from "./launch.js";
import { checkRunFolder, resolveResume } from "../util/run-folder.js";

/** The flags that set a configuration key (`key`); help texts give no defaults (the preset's are shown). */
export const PRETRAIN_FLAGS: readonly Flag[] = [
  { flag: "dataset", key: "dataset", kind: "string", choices: DATASET_NAMES, help: DATASET_NAMES.join(" | ") },
  { flag: "out", key: "out", kind: "string", meta: "DIR", help: "run folder (config, metrics.jsonl, checkpoints)" },
  {
    flag: "subset",
    key: "subset",
    kind: "nullableInt",
    help: "train on N training images, a random sample (seeded by --seed, stratified by class; indices in subset.json); none: all. A preset's subset applies only to its own data",
  },
  {
    flag: "image-size",
    key: "imageSize",
    kind: "nullableInt",
    help: "crop size fed to the network; none: the images' own size (folders: 224, or 64 with --cifar-stem)",
  },
  { flag: "crop-min-scale", key: "cropMinScale", kind: "float", help: "RandomResizedCrop's smallest area fraction" },
  { flag: "aug-plus", key: "augPlus", kind: "bool", help: "MoCo v2 augmentation (jitter p 0.8, blur)" },
  {
    flag: "color-jitter",
    key: "colorJitter",
    kind: "float",
    help: "brightness, contrast and saturation range of the colour jitter (the official 0.4); 0: none",
  },
  {
    flag: "skip-bad-images",
    key: "skipBadImages",
    kind: "bool",
    help: "leave out unreadable images of a folder (reported)",
  },
  {
    flag: "arch",
    key: "arch",
    kind: "string",
    choices: Object.keys(RESNET_ARCHS),
    help: Object.keys(RESNET_ARCHS).join(" | "),
    short: "a",
  },
  { flag: "width", key: "width", kind: "int", help: "base width of the ResNet (64 = torchvision's)" },
  { flag: "cifar-stem", key: "cifarStem", kind: "bool", help: "3x3 stride-1 stem without max-pool, for small images" },
  {
    flag: "pretrained",
    key: "pretrained",
    kind: "string",
    meta: "FILE",
    help: "start the backbone from a checkpoint (MoCo, lincls, torchvision .pth, safetensors) instead of random weights",
  },
  { flag: "moco-dim", key: "mocoDim", kind: "int", help: "feature dimension" },
  { flag: "moco-k", key: "mocoK", kind: "int", help: "queue size (negative keys)" },
  { flag: "moco-m", key: "mocoM", kind: "float", help: "key encoder momentum" },
  { flag: "moco-t", key: "mocoT", kind: "float", help: "softmax temperature" },
  { flag: "mlp", key: "mlp", kind: "bool", help: "MoCo v2 MLP head" },
  { flag: "symmetric", key: "symmetric", kind: "bool", help: "symmetric loss (the official CIFAR demo's option)" },
  {
    flag: "bn-splits",
    key: "bnSplits",
    kind: "int",
    help: "split BN: BN statistics per batch/N samples (shuffle BN in one process)",
  },
  { flag: "epochs", key: "epochs", kind: "int", help: "epochs to train" },
  { flag: "batch-size", key: "batchSize", kind: "int", help: "images per step", short: "b" },
  { flag: "lr", key: "lr", kind: "float", help: "initial learning rate", aliases: ["learning-rate"] },
  {
    flag: "schedule",
    key: "schedule",
    kind: "list",
    help: "epochs where the lr drops x0.1 (without --cos), e.g. 120,160",
  },
  { flag: "cos", key: "cos", kind: "bool", help: "cosine learning-rate schedule" },
  { flag: "warmup-epochs", key: "warmupEpochs", kind: "float", help: "linear lr warmup (epochs)" },
  { flag: "momentum", key: "momentum", kind: "float", help: "SGD momentum" },
  { flag: "wd", key: "wd", kind: "float", help: "weight decay", aliases: ["weight-decay"] },
  { flag: "knn-k", key: "knnK", kind: "int", help: "kNN monitor: neighbours" },
  { flag: "knn-t", key: "knnT", kind: "float", help: "kNN monitor: temperature" },
  { flag: "knn-every", key: "knnEvery", kind: "int", help: "kNN monitor every N epochs (0: at the end only)" },
  { flag: "knn-features", key: "knnFeatures", kind: "string", choices: ["backbone", "head"], help: "backbone | head" },
  { flag: "knn-bank", key: "knnBank", kind: "nullableInt", help: "training images in the kNN bank; none: all" },
  { flag: "knn-test", key: "knnTest", kind: "nullableInt", help: "test images the kNN monitor classifies; none: all" },
  {
    flag: "print-freq",
    key: "printFreq",
    kind: "int",
    short: "p",
    help: "log a line every N steps when not on a terminal",
  },
  { flag: "seed", key: "seed", kind: "int", help: "seed of every random stream" },
  {
    flag: "threads",
    key: "threads",
    kind: "nullableInt",
    help: "intra-op threads; none: all cores",
    bounds: THREADS_FLAG.bounds ?? {},
  },
  {
    flag: "workers",
    key: "workers",
    kind: "nullableInt",
    short: "j",
    help: "image folders: loader worker threads that decode and augment batches beside the training thread (0: in it); none: 0 on the CPU, one per core but one (at most 8) on a GPU",
    bounds: { min: 0, max: 64 },
  },
  { ...DEVICE_FLAG, key: "device" },
  { ...PRECISION_FLAG, key: "precision" },
  { ...CHANNELS_LAST_FLAG, key: "channelsLast" },
  {
    flag: "cudnn-benchmark",
    key: "cudnnBenchmark",
    kind: "bool",
    help: "on a GPU, let cuDNN time its convolution algorithms once and keep the fastest (torch.backends.cudnn.benchmark)",
  },
  { flag: "max-steps", key: "maxSteps", kind: "nullableInt", help: "stop after N steps in all (quick trials)" },
  {
    flag: "save-every",
    key: "saveEvery",
    kind: "int",
    help: "also keep checkpoint_%04d.pth.tar (main_moco.py's name: the 0-based epoch) every N epochs; 0: the latest only",
  },
  {
    flag: "report",
    key: "report",
    kind: "bool",
    help: "write report.html (curves, per class, embedding map; moco report) into the run folder at the end",
  },
];

const RUN_FLAGS: readonly Flag[] = [
  { flag: "preset", kind: "string", choices: Object.keys(PRESETS), help: Object.keys(PRESETS).join(" | ") },
  {
    flag: "config",
    kind: "string",
    meta: "FILE",
    help: "JSON or YAML file of options (keys as in config.json, or snake_case like main_moco.py's moco_k); flags override it, it overrides the preset",
  },
  {
    flag: "resume",
    kind: "string",
    meta: "FILE|DIR|auto",
    help: "continue a run from its checkpoint (its configuration, overridden by flags given here): a checkpoint file, a run folder, or auto (the --out folder's run if there is one, else a fresh start)",
  },
  {
    flag: "overwrite",
    kind: "bool",
    help: "replace the run already in --out (a run folder with a checkpoint is otherwise refused)",
    default: false,
  },
];

// ---- launching several processes (like torchrun) ---------------------------------------------

/** Only the launcher reads these; they are removed from the workers' arguments. */
const LAUNCHER_ONLY = new Set(["nproc-per-node", "nnodes", "node-rank", "master-addr", "master-port"]);

const LAUNCH_FLAGS: readonly Flag[] = [
  {
    flag: "nproc-per-node",
    kind: "int",
    help: "start N worker processes on this machine (like torchrun)",
    bounds: { min: 1, max: 4096 },
  },
  { flag: "nnodes", kind: "int", help: "machines in the job", default: 1, bounds: { min: 1, max: 65536 } },
  { flag: "node-rank", kind: "int", help: "this machine's index in [0, nnodes)", default: 0, bounds: { min: 0 } },
  {
    flag: "master-addr",
    kind: "string",
    meta: "HOST",
    help: "address of the node-rank-0 machine",
    default: "127.0.0.1",
  },
  {
    flag: "master-port",
    kind: "int",
    help: "a free TCP port on that machine",
    default: 29500,
    bounds: { min: 1, max: 65535 },
  },
  {
    flag: "dist-timeout",
    kind: "float",
    meta: "SECONDS",
    help: "seconds a worker waits for the others before stopping",
    default: 300,
    bounds: { min: 0, minExclusive: true },
  },
];

/** Every flag `moco pretrain` takes. */
export const PRETRAIN_COMMAND_FLAGS: readonly Flag[] = [...RUN_FLAGS, ...PRETRAIN_FLAGS, ...LAUNCH_FLAGS];

/** The launcher's options, checked (their ranges by the flag table, the rest here). */
function launchValues(flags: ReadonlyMap<string, FlagValue>, given: ReadonlySet<string>): LaunchValues {
  const int = (flag: string) => flags.get(flag) as number;
  const nnodes = int("nnodes");
  const nodeRank = int("node-rank");
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank must be < --nnodes (${nnodes}), got ${nodeRank}`);
  const masterAddr = (flags.get("master-addr") as string).trim();
  if (masterAddr === "") throw new UsageError("--master-addr expects a host name or address");
  const nprocPerNode = given.has("nproc-per-node") ? int("nproc-per-node") : null;
  const launcherFlag = [...given].find((flag) => LAUNCHER_ONLY.has(flag) && flag !== "nproc-per-node");
  if (nprocPerNode === null && launcherFlag !== undefined)
    throw new UsageError(`--${launcherFlag} needs --nproc-per-node (the launcher)`);
  return {
    nprocPerNode,
    nnodes,
    nodeRank,
    masterAddr,
    masterPort: int("master-port"),
    distTimeout: flags.get("dist-timeout") as number,
  };
}

/** The arguments minus the launcher-only flags (`--flag value` and `--flag=value`). */
export function stripLaunchFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const name = arg.startsWith("--") ? (arg.slice(2).split("=", 1)[0] as string) : "";
    if (!LAUNCHER_ONLY.has(name)) out.push(arg);
    else if (!arg.includes("=")) i++;
  }
  return out;
}

// ---- the command --------------------------------------------------------------------------------

function pretrainHelp(preset: PresetName): string {
  const defaults = { ...PRESETS[preset], out: `runs/${preset}` } as Record<string, unknown>;
  const shown = (spec: Flag): { value: Flag["default"] } | undefined => {
    if (spec.flag === "preset") return { value: preset };
    if (spec.key === undefined) return undefined;
    return { value: defaults[spec.key] as Flag["default"] };
  };
  return `Usage: moco pretrain [DATA] [options]

MoCo v1/v2 pretraining. Writes the run folder (--out): config.json, metrics.jsonl (one JSON object
per line: steps, epochs, kNN), checkpoint.pth.tar (official MoCo layout, loads in torch.load) and
summary.json. Ctrl-C writes a checkpoint; --resume continues it exactly. DATA is the data folder
(an image folder unless --dataset says otherwise).

${flagHelp([...RUN_FLAGS, ...PRETRAIN_FLAGS], shown)}

Several processes (data-parallel; --batch-size is then the global batch; see README "Multi-process runs"):
${flagHelp(LAUNCH_FLAGS)}

Defaults shown are the ${preset} preset's.`;
}

function summaryLine(result: PretrainResult, config: PretrainConfig): string {
  const show = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(2)}%`);
  const start = config.pretrained === null ? "at random init" : "at its --pretrained start";
  return (
    `kNN top-1 — trained encoder: ${show(result.knn.trained)} | same network ${start}: ${show(result.knn.random)} | ` +
    `raw pixels: ${show(result.knn.pixels)}`
  );
}

/** What `moco pretrain ARGS` would run: the configuration and launch options, everything checked. */
export function pretrainPlan(argv: readonly string[]): {
  config: PretrainConfig;
  launch: LaunchValues;
  /** The checkpoint to continue (`--resume` FILE, a run folder's, or auto's); null: a fresh run. */
  resume: string | null;
  /** `--overwrite`: replace the run already in `--out`. */
  overwrite: boolean;
  /** How the user asked for `subset` ("--subset", "run.yaml: subset"); null when it is the preset's. */
  subsetAskedAs: string | null;
} {
  const parsed = parseFlags(argv, PRETRAIN_COMMAND_FLAGS, "pretrain");
  const presetName = (parsed.values.get("preset") ?? "fashion-mnist") as PresetName;
  if (parsed.positionals.length > 1)
    throw new UsageError(`pretrain takes one data folder, got ${parsed.positionals.length} arguments`);
  const values: Record<string, unknown> = {};
  const names: Record<string, string> = {};
  for (const spec of PRETRAIN_FLAGS) {
    if (spec.key === undefined || !parsed.given.has(spec.flag)) continue;
    values[spec.key] = parsed.values.get(spec.flag);
    names[spec.key] = parsed.spelled.get(spec.flag) ?? `--${spec.flag}`;
  }
  const resumeGiven = (parsed.values.get("resume") as string | undefined) ?? null;
  const configFile = parsed.values.get("config") as string | undefined;
  const fileLayer = configFile === undefined ? null : readConfigLayer(configFile);
  const subsetAskedAs =
    names["subset"] ??
    (fileLayer !== null && "subset" in fileLayer.values
      ? `${fileLayer.source}: ${fileLayer.names?.["subset"] ?? "subset"}`
      : null);
  const [dataDir] = parsed.positionals;
  const configFor = (resume: string | null): PretrainConfig => {
    const flagValues = { ...values };
    const flagNames = { ...names };
    if (dataDir !== undefined) {
      flagValues["data"] = dataDir;
      flagNames["data"] = "DATA";
      if (flagValues["dataset"] === undefined && resume === null && PRESETS[presetName].dataset === "fashion-mnist")
        flagValues["dataset"] = "folder";
    }
    const layers: ConfigLayer[] = [
      ...(fileLayer === null ? [] : [fileLayer]),
      { source: COMMAND_LINE, values: flagValues, names: flagNames },
    ];
    if (resume === null) return resolveConfig(presetName, layers);
    const checkpoint = readCheckpoint(resume);
    const saved = checkpoint.moco_ts.config;
    disposeCheckpoint(checkpoint);
    return resolveConfig(presetName, [{ source: `${resume} (saved configuration)`, values: { ...saved } }, ...layers]);
  };
  // "auto" needs the run folder, which the fresh configuration names (flags, config file or preset).
  const resume =
    resumeGiven === null ? null : resolveResume(resumeGiven, resumeGiven === "auto" ? configFor(null).out : "");
  const config = configFor(resume);
  return {
    config,
    launch: launchValues(parsed.values, parsed.given),
    resume,
    overwrite: parsed.values.get("overwrite") === true,
    subsetAskedAs,
  };
}

/**
 * A subset the user asked for that is larger than the training set is a mistake, not "all of it":
 * refused before the run starts (the data is opened once to count it; folders are only listed).
 */
export async function checkSubset(config: PretrainConfig, askedAs: string | null): Promise<void> {
  if (askedAs === null || config.subset === null) return;
  const entry = DATASETS[config.dataset];
  const root = datasetRoot(config.dataset, config.data);
  const dataset = await entry.open(root, entry.splits(root).flat ? undefined : "train", { size: 8 });
  try {
    if (config.subset > dataset.length)
      throw new UsageError(
        `${askedAs} ${config.subset} is more than the ${dataset.length} training images of ${dataset.name}`,
      );
  } finally {
    dataset.dispose();
  }
}

export async function runPretrain(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    // The help shows the defaults of the preset named on the same line.
    const at = argv.indexOf("--preset");
    const preset = (at >= 0 ? argv[at + 1] : undefined) ?? "fashion-mnist";
    if (!Object.hasOwn(PRESETS, preset))
      throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(", ")}, got '${preset}'`);
    console.log(pretrainHelp(preset as PresetName));
    return 0;
  }
  const { config, launch, resume, overwrite, subsetAskedAs } = pretrainPlan(argv);
  checkDevice(config.device);
  // Before the data is even opened: another run's files are never replaced silently.
  checkRunFolder(config.out, { resume, overwrite });
  await checkSubset(config, subsetAskedAs);
  if (launch.nprocPerNode !== null) {
    rankLayout(config, launch.nnodes * launch.nprocPerNode); // refused here, before any worker starts
    return launchWorkers(stripLaunchFlags(argv), launch);
  }
  const worker = await joinJob(launch.distTimeout);
  const lead = (worker?.group.rank ?? 0) === 0;

  const interrupt = listenForInterrupt("stopping after this step and writing a checkpoint");
  try {
    const result = await pretrain(config, {
      progress: progressReporter(process.stderr, config.printFreq),
      signal: interrupt.signal,
      ...(resume === null ? {} : { resume }),
      overwrite,
      ...(worker === null ? {} : { parallel: worker.parallel }),
    }).catch((error: unknown) => {
      throw worker === null ? error : explainFailure(error, worker.group, join(config.out, CHECKPOINT_FILE));
    });
    if (!lead) return result.interrupted ? 130 : 0;
    console.log(summaryLine(result, config));
    console.log(
      `run folder: ${result.runDir} (checkpoint ${result.checkpoint}, ${result.steps} steps, ${result.seconds.toFixed(0)} s)`,
    );
    if (result.interrupted) {
      console.log(`interrupted: continue with  moco pretrain --resume ${result.checkpoint}`);
      return 130;
    }
    if (config.report) {
      // Loaded only here: vega and umap-js cost ~0.2 s to import, which no other path should pay.
      const { writeRunReport } = await import("../report/index.js");
      const report = await writeRunReport([result.runDir], {
        out: join(result.runDir, "report.html"),
        log: (line) => console.error(line),
      });
      console.log(`report: ${report.path}`);
    }
    return 0;
  } finally {
    interrupt.release();
    worker?.dispose();
  }
}
