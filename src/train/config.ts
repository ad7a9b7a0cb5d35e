// The pretraining configuration: typed, validated, with presets whose defaults cite their source.
// Unknown or misspelled keys are errors, in config files and flags alike.
import { readFileSync } from "node:fs";
import { extname } from "node:path";

import { parse as parseYaml } from "yaml";
import { z } from "zod";

import { RESNET_ARCHS, type ResNetArch } from "../nn/index.js";

export const DATASETS = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"] as const;
export type DatasetName = (typeof DATASETS)[number];

const positiveInt = z.number().int().positive();
const nonNegative = z.number().nonnegative();

export const pretrainConfigSchema = z
  .object({
    // data
    dataset: z.enum(DATASETS),
    /** Folder of the data; null = the dataset's default location. */
    data: z.string().nullable(),
    /** Train on the first N training images only. */
    subset: positiveInt.nullable(),
    /** Side of the square crops fed to the network; null = the images' own size (224 for folders). */
    imageSize: positiveInt.nullable(),
    /** Lower bound of RandomResizedCrop's area fraction (0.2 in the official recipes). */
    cropMinScale: z.number().gt(0).max(1),
    /** MoCo v2's stronger augmentation (colour jitter p 0.8, blur), as `--aug-plus`. */
    augPlus: z.boolean(),
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
    /** Where the model runs ("cpu", "cuda", "cuda:N"); absent = "cpu". */
    device: z
      .string()
      .regex(/^(cpu|cuda(:\d+)?)$/, 'expected "cpu", "cuda" or "cuda:N"')
      .optional(),
    /** Stop after this many steps in all (for quick trials). */
    maxSteps: positiveInt.nullable(),
    out: z.string(),
  })
  .strict();

export type PretrainConfig = z.infer<typeof pretrainConfigSchema>;

const COMMON = {
  data: null,
  subset: null,
  imageSize: null,
  cropMinScale: 0.2, // RandomResizedCrop(224, scale=(0.2, 1.)) in main_moco.py
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
  maxSteps: null,
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
  bnSplits: 8, // one process: split BN stands in for the multi-GPU shuffle (design.md §3)
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
  cropMinScale: 0.5, // 28×28 crops of a fifth of the image are mostly blur: +1.2 points at 300 steps
  augPlus: true,
  mocoK: 4096,
  mocoM: 0.99, // 0.9: -13 points at 300 steps
  mocoT: 0.2,
  mlp: true,
  bnSplits: 8,
  epochs: 20,
  batchSize: 256,
  lr: 0.03, // 0.06: -1.3 points, 0.12: -4.2 points at 300 steps
  schedule: [120, 160],
  cos: true,
  wd: 5e-4,
  knnEvery: 5,
  knnBank: 10000,
};

export const PRESETS = {
  "fashion-mnist": FASHION_MNIST,
  cifar: CIFAR,
  "moco-v1": MOCO_V1,
  "moco-v2": MOCO_V2,
} as const;

export type PresetName = keyof typeof PRESETS;

export class ConfigError extends Error {}

function formatIssues(error: z.ZodError, source: string): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.join(".") || "(top level)";
      return `${source}: ${path}: ${issue.message}`;
    })
    .join("\n");
}

/** Reads a JSON or YAML config file into a partial config (its keys checked by `resolveConfig`). */
export function readConfigFile(path: string): Record<string, unknown> {
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
  return value as Record<string, unknown>;
}

/** preset ← config file ← flags, validated as a whole. */
export function resolveConfig(
  preset: PresetName,
  layers: { source: string; values: Record<string, unknown> }[],
): PretrainConfig {
  const base = PRESETS[preset];
  if (base === undefined)
    throw new ConfigError(`unknown preset '${String(preset)}' (one of ${Object.keys(PRESETS).join(", ")})`);
  let merged: Record<string, unknown> = { ...base, out: `runs/${preset}` };
  for (const layer of layers) {
    const unknown = Object.keys(layer.values).filter((key) => !(key in pretrainConfigSchema.shape));
    if (unknown.length > 0) {
      throw new ConfigError(
        `${layer.source}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `'${k}'`).join(", ")}`,
      );
    }
    merged = { ...merged, ...layer.values };
  }
  const parsed = pretrainConfigSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(formatIssues(parsed.error, "config"));
  return parsed.data;
}
