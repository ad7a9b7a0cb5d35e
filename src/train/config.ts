// The pretraining configuration: typed, validated, with presets whose defaults cite their source.
// Unknown or misspelled keys are errors, in config files and flags alike.
import { readFileSync } from "node:fs";
import { extname } from "node:path";

import { parse as parseYaml } from "yaml";
import { z } from "zod";

import { DATASET_NAMES } from "../data/registry.js";
import { MocoError } from "../errors.js";
import { RESNET_ARCHS, type ResNetArch } from "../nn/index.js";
import {
  CHANNELS_LAST_SETTINGS,
  PRECISION_SETTINGS,
  type ChannelsLastSetting,
  type PrecisionSetting,
} from "../torch/index.js";

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

export const pretrainConfigSchema = z
  .object({
    // data
    dataset: z.enum(DATASET_NAMES),
    /** Folder of the data; null = the dataset's default location. */
    data: z.string().nullable(),
    /** Train on N training images: a sample seeded by `seed`, stratified by class (data/subset.ts). */
    subset: positiveInt.nullable(),
    /** Side of the square crops fed to the network; null = the images' own size (224 for folders). */
    imageSize: positiveInt.nullable(),
    /** Lower bound of RandomResizedCrop's area fraction (0.2 in the official recipes). */
    cropMinScale: z.number().gt(0).max(1),
    /** MoCo v2's stronger augmentation (colour jitter p 0.8, blur), as `--aug-plus`. */
    augPlus: z.boolean(),
    /**
     * Brightness, contrast and saturation ranges of the colour jitter (the official 0.4); absent in
     * checkpoints older than the option, which trained with 0.4.
     */
    colorJitter: z.number().nonnegative().default(0.4),
    /** Skip unreadable images of a folder dataset (reported) instead of stopping. */
    skipBadImages: z.boolean(),
    // encoder
    arch: z.enum(Object.keys(RESNET_ARCHS) as [ResNetArch, ...ResNetArch[]]),
    /** Base width of the ResNet (64 = torchvision's; 16 is a small fast model). */
    width: positiveInt,
    /** 3×3 stride-1 first conv and no max-pool, for small images. */
    cifarStem: z.boolean(),
    /** Backbone weights to start from (a MoCo, lincls or torchvision checkpoint, safetensors); null = random. */
    pretrained: z.string().nullable(),
    // MoCo
    mocoDim: positiveInt,
    mocoK: positiveInt,
    mocoM: z.number().min(0).lt(1),
    mocoT: z.number().gt(0),
    mlp: z.boolean(),
    symmetric: z.boolean(),
    /** Split BN: statistics per batch / bnSplits samples (shuffle BN in one process). */
    bnSplits: positiveInt,
    // optimisation
    epochs: positiveInt,
    batchSize: positiveInt,
    lr: z.number().gt(0),
    /** Epochs at which the lr drops ×0.1 (ignored with cos). */
    schedule: z.array(nonNegative),
    cos: z.boolean(),
    warmupEpochs: nonNegative,
    momentum: nonNegative,
    wd: nonNegative,
    // monitoring
    knnK: positiveInt,
    knnT: z.number().gt(0),
    /** Which features the kNN monitor compares: the backbone's pooled ones or the head's output. */
    knnFeatures: z.enum(["backbone", "head"]),
    /** kNN accuracy every N epochs (and at the end); 0 = only at the end. */
    knnEvery: z.number().int().nonnegative(),
    /** Training images in the kNN feature bank; null = all training images used. */
    knnBank: positiveInt.nullable(),
    /** Test images the kNN monitor classifies; null = the whole test split. */
    knnTest: positiveInt.nullable(),
    printFreq: positiveInt,
    // run
    seed: z.number().int().nonnegative(),
    threads: positiveInt.nullable(),
    /**
     * Loader worker threads that decode and augment image-folder batches (PyTorch's --workers); 0: in
     * the training thread; null: auto (loaderWorkers: none on the CPU, one per core but one on a GPU).
     * Other datasets are augmented in the training thread whatever it says. Absent in older
     * checkpoints: auto.
     */
    workers: z.number().int().nonnegative().nullable().default(null),
    /** Where the network runs, named as in PyTorch; absent in checkpoints older than the option: the CPU. */
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?)$/, { message: "must be cpu, cuda or cuda:N" })
      .default("cpu"),
    /**
     * Precision of the forward pass: bfloat16 autocast, float32, or auto (bf16 where the CPU computes
     * it natively; src/torch/precision.ts). Parameters, gradients, optimizer state, the queue, the loss
     * and checkpoints stay float32 whatever it says. Absent in older checkpoints: auto.
     */
    precision: z.enum(PRECISION_SETTINGS as [PrecisionSetting, ...PrecisionSetting[]]).default("auto"),
    /** Activations and conv weights channels-last (NHWC in memory); auto: where measured faster. */
    channelsLast: z.enum(CHANNELS_LAST_SETTINGS as [ChannelsLastSetting, ...ChannelsLastSetting[]]).default("auto"),
    /** cuDNN's autotuner on a GPU (torch.backends.cudnn.benchmark); ignored on the CPU. */
    cudnnBenchmark: z.boolean().default(true),
    /** Stop after this many steps in all (for quick trials). */
    maxSteps: positiveInt.nullable(),
    /** Keep checkpoint_%04d.pth.tar every N epochs besides the latest; 0 = none. Absent in older checkpoints. */
    saveEvery: z.number().int().nonnegative().default(0),
    /** `moco pretrain` writes report.html (moco report) into the run folder when the run completes. */
    report: z.boolean().default(true),
    out: z.string(),
  })
  .strict();

export type PretrainConfig = z.infer<typeof pretrainConfigSchema>;

const COMMON = {
  data: null,
  subset: null,
  imageSize: null,
  cropMinScale: 0.2, // RandomResizedCrop(224, scale=(0.2, 1.)) in main_moco.py
  colorJitter: 0.4, // ColorJitter(0.4, 0.4, 0.4, hue) in main_moco.py
  skipBadImages: false,
  cifarStem: false,
  pretrained: null,
  width: 64,
  mocoDim: 128, // main_moco.py --moco-dim
  warmupEpochs: 0,
  momentum: 0.9, // main_moco.py --momentum
  knnK: 200, // CIFAR demo knn_k
  knnT: 0.1, // CIFAR demo knn_t
  knnFeatures: "backbone",
  knnEvery: 1,
  knnBank: null,
  knnTest: null,
  printFreq: 10,
  seed: 0,
  threads: null,
  workers: null,
  device: "cpu",
  precision: "auto",
  channelsLast: "auto",
  cudnnBenchmark: true,
  maxSteps: null,
  saveEvery: 0,
  report: true,
  symmetric: false,
} satisfies Partial<PretrainConfig>;

/** main_moco.py defaults for MoCo v1 (ResNet-50, ImageNet-style folders). */
const MOCO_V1: Omit<PretrainConfig, "out"> = {
  ...COMMON,
  dataset: "folder",
  arch: "resnet50",
  augPlus: false,
  mocoK: 65536,
  mocoM: 0.999,
  mocoT: 0.07,
  mlp: false,
  bnSplits: 8, // one process: split BN stands in for the multi-GPU shuffle (the official CIFAR-10 demo)
  epochs: 200,
  batchSize: 256,
  lr: 0.03,
  schedule: [120, 160],
  cos: false,
  wd: 1e-4,
  knnEvery: 10,
};

/** MoCo v2 (Chen et al. 2020): MLP head, aug-plus, cosine schedule, τ = 0.2. */
const MOCO_V2: Omit<PretrainConfig, "out"> = { ...MOCO_V1, mlp: true, augPlus: true, cos: true, mocoT: 0.2 };

/** The official CIFAR-10 demo (moco/colab/moco_cifar10_demo.ipynb). */
const CIFAR: Omit<PretrainConfig, "out"> = {
  ...COMMON,
  dataset: "cifar10",
  arch: "resnet18",
  cifarStem: true,
  augPlus: true, // its transform: RandomResizedCrop, ColorJitter p 0.8, grayscale p 0.2, flip (no blur at 32×32)
  mocoK: 4096,
  mocoM: 0.99,
  mocoT: 0.1,
  mlp: false,
  bnSplits: 8,
  epochs: 200,
  batchSize: 512,
  lr: 0.06,
  schedule: [120, 160],
  cos: true,
  wd: 5e-4,
  knnFeatures: "head", // the demo's monitor runs encoder_q, head included
};

/**
 * The default: a quick Fashion-MNIST run chosen by measurement to learn within minutes on a 2-core
 * CPU (docs/recipe.md has the experiments behind each value).
 */
const FASHION_MNIST: Omit<PretrainConfig, "out"> = {
  ...COMMON,
  dataset: "fashion-mnist",
  subset: 10000,
  arch: "resnet18",
  width: 16,
  cifarStem: true,
  // Weaker crops and stronger jitter than the official 0.2 and 0.4: 0.8 and 1.0 give +1.3 points of kNN
  // over 0.5 and 0.4; no jitter -2.5, crops of the whole area -2 (docs/recipe.md, issue #13).
  cropMinScale: 0.8,
  colorJitter: 1.0,
  augPlus: true,
  mocoK: 4096,
  mocoM: 0.99, // 0.9: -13 points at 300 steps
  mocoT: 0.07, // 0.2: -2.7 points, 0.1: -0.5, 0.5: -6 at this budget (docs/recipe.md, issue #13)
  mlp: true,
  bnSplits: 4, // 32 images per split, as 8 splits of 256
  epochs: 30, // 20: -1.6 points; 30 keeps the job with its install within 15 minutes on 2 cores
  batchSize: 128, // twice the steps for the same images: +1.2 points with τ 0.07
  lr: 0.03, // 0.06 and 0.12: within the run-to-run spread over the full cosine schedule
  schedule: [120, 160],
  cos: true,
  wd: 5e-4,
  knnEvery: 5,
  knnBank: 10000,
};

/**
 * A long run that is worth its time (issue #13): all 60 000 training images, 80 epochs (37 440
 * steps of 128; about 2 hours on 2 cores with bf16 autocast, ~720 images/s), crops of 50–100% of the
 * area with the default job's colour jitter 1.0 (harder positives than the default job's 80–100%,
 * since a long run has the epochs to learn them; a judgement: the one run, kNN 86.74%, docs/results.md), a queue
 * of 16 384 keys (128 batches, 27% of the images), the kNN monitor every 10 epochs on the whole
 * training set. `--resume` continues it exactly.
 */
const FASHION_MNIST_LONG: Omit<PretrainConfig, "out"> = {
  ...FASHION_MNIST,
  subset: null,
  cropMinScale: 0.5,
  mocoK: 16384,
  epochs: 80,
  knnEvery: 10,
  knnBank: null,
};

export const PRESETS = {
  "fashion-mnist": FASHION_MNIST,
  "fashion-mnist-long": FASHION_MNIST_LONG,
  cifar: CIFAR,
  "moco-v1": MOCO_V1,
  "moco-v2": MOCO_V2,
} as const;

export type PresetName = keyof typeof PRESETS;

export class ConfigError extends MocoError {
  override name = "ConfigError";
  constructor(message: string) {
    super("ERR_CONFIG", message);
  }
}

/** One source of configuration values, applied over the ones before it. */
export interface ConfigLayer {
  /** Where the values come from, for messages: a file's path, COMMAND_LINE, a checkpoint. */
  source: string;
  /** Values by configuration key (camelCase, as in config.json). */
  values: Record<string, unknown>;
  /** How the user wrote each key there ("--moco-m", "moco_m"), so messages name what they wrote. */
  names?: Readonly<Record<string, string>>;
}

/** The key of config.json that records what `precision` and `channelsLast` resolved to. */
export const RESOLVED_PRECISION_KEY = "resolvedPrecision";

/** The source of the flags' layer: its messages need no "where" (the flag says it). */
export const COMMAND_LINE = "command line";

/**
 * Official spellings (main_moco.py's flags as config keys) that are not the snake_case or
 * kebab-case form of one of ours.
 */
const KEY_ALIASES: Readonly<Record<string, keyof PretrainConfig>> = {
  learningRate: "lr",
  weightDecay: "wd",
  a: "arch",
  b: "batchSize",
};

/** Our key for a name written in a config file: camelCase, snake_case or kebab-case, or an official alias. */
export function configKey(name: string): string {
  const camel = name.replace(/[_-]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return KEY_ALIASES[camel] ?? camel;
}

/** The closest of `candidates` to `name` when it is close enough to be a typo. */
export function closest(name: string, candidates: Iterable<string>): string | null {
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function show(value: unknown): string {
  return typeof value === "number" ? String(value) : JSON.stringify(value);
}

/** A schema issue said as what the value must be, e.g. "must be > 0, got -1". */
function describeIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "too_small":
      if (issue.origin === "number") return `must be ${issue.inclusive === true ? ">=" : ">"} ${String(issue.minimum)}`;
      break;
    case "too_big":
      if (issue.origin === "number") return `must be ${issue.inclusive === true ? "<=" : "<"} ${String(issue.maximum)}`;
      break;
    case "invalid_type":
      if (issue.expected === "int") return "must be an integer";
      if (issue.expected === "boolean") return "must be true or false";
      return `must be ${issue.expected === "array" ? "a list" : `a ${issue.expected}`}`;
    case "invalid_value":
      return `must be one of ${issue.values.map(String).join(", ")}`;
    default:
      break;
  }
  return issue.message;
}

/** The first problem of `value` for `key`, as a message naming `name` (what the user wrote). */
function checkValue(key: keyof PretrainConfig, value: unknown, name: string): string | null {
  const parsed = pretrainConfigSchema.shape[key].safeParse(value);
  if (parsed.success) return null;
  const issue = parsed.error.issues[0];
  if (issue === undefined) return `${name} is invalid`;
  const element = issue.path.length > 0 ? `[${issue.path.join("][")}]` : "";
  const got = issue.path.length > 0 ? (value as unknown[])[issue.path[0] as number] : value;
  return `${name}${element} ${describeIssue(issue)}, got ${show(got)}`;
}

/** Reads a JSON or YAML config file: keys in camelCase, snake_case (main_moco.py's) or kebab-case. */
export function readConfigLayer(path: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ConfigError(`config file ${path}: ${(cause as Error).message}`);
  }
  let value: unknown;
  try {
    value = [".yaml", ".yml"].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(
      `config file ${path}: not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${(cause as Error).message}`,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`config file ${path}: expected a mapping of option names to values`);
  }
  const values: Record<string, unknown> = {};
  const names: Record<string, string> = {};
  for (const [written, entry] of Object.entries(value as Record<string, unknown>)) {
    const key = configKey(written);
    // A run's config.json records the precision it resolved; given back as a config, each run
    // decides again (on its own machine), so the record is not an option.
    if (key === RESOLVED_PRECISION_KEY) continue;
    const earlier = names[key];
    if (earlier !== undefined) throw new ConfigError(`${path}: '${earlier}' and '${written}' are the same option`);
    values[key] = entry;
    names[key] = written;
  }
  return { source: path, values, names };
}

/** Reads a JSON or YAML config file into a partial config, keys as in config.json (checked by `resolveConfig`). */
export function readConfigFile(path: string): Record<string, unknown> {
  return readConfigLayer(path).values;
}

/**
 * preset ← config file ← flags. Each layer's values are checked where they are given, so a bad value
 * in a file is an error even when a flag overrides it, and the message names the key or flag the user
 * wrote.
 */
export function resolveConfig(preset: PresetName, layers: readonly ConfigLayer[]): PretrainConfig {
  const base = PRESETS[preset];
  if (base === undefined)
    throw new ConfigError(`unknown preset '${String(preset)}' (one of ${Object.keys(PRESETS).join(", ")})`);
  let merged: Record<string, unknown> = { ...base, out: `runs/${preset}` };
  const keys = Object.keys(pretrainConfigSchema.shape);
  for (const layer of layers) {
    const where = layer.source === COMMAND_LINE ? "" : `${layer.source}: `;
    const unknown = Object.keys(layer.values).filter((key) => !Object.hasOwn(pretrainConfigSchema.shape, key));
    if (unknown.length > 0) {
      const written = unknown.map((key) => layer.names?.[key] ?? key);
      const guess = written.length === 1 ? closest(written[0] as string, keys) : null;
      throw new ConfigError(
        `${where}unknown option${unknown.length > 1 ? "s" : ""} ${written.map((k) => `'${k}'`).join(", ")}` +
          (guess === null ? "" : ` (did you mean '${guess}'?)`),
      );
    }
    for (const [key, value] of Object.entries(layer.values)) {
      const problem = checkValue(key as keyof PretrainConfig, value, layer.names?.[key] ?? key);
      if (problem !== null) throw new ConfigError(`${where}${problem}`);
    }
    merged = { ...merged, ...layer.values };
  }
  // A preset's subset (fashion-mnist's 10000) is for the preset's own data: a folder the user names
  // is used whole unless a layer (flags, config file, a resumed run's configuration) sets a subset.
  if (merged["data"] !== null && !layers.some((layer) => "subset" in layer.values)) merged["subset"] = null;
  const parsed = pretrainConfigSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, "config"));
  return parsed.data;
}

function formatIssues(error: z.ZodError, source: string): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join(".") || "(top level)";
      return `${source}: ${path}: ${issue.message}`;
    })
    .join("\n");
}
