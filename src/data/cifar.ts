// CIFAR-10 and CIFAR-100 in their binary versions (https://www.cs.toronto.edu/~kriz/cifar.html).
// CIFAR-10 (cifar-10-batches-bin/): data_batch_1..5.bin (train), test_batch.bin; each record is
// 1 label byte + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, rows of 32). CIFAR-100
// (cifar-100-binary/): train.bin, test.bin; records carry 2 label bytes (coarse, fine) and we use
// the fine label (100 classes). The pixel bytes are already [3, 32, 32] planes, so the images
// tensor [N, 3, 32, 32] is the records with their label bytes removed.
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { fromBytes, keep, scope } from "../torch/index.js";
import { DatasetError, TensorImageDataset, type ChannelStats } from "./dataset.js";
import { readFileOrThrow, statOrNull } from "./files.js";
import type { Split } from "./fashion-mnist.js";

export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
] as const;

export const CIFAR100_CLASSES = [
  "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
  "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
  "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
  "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
  "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
  "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
  "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
  "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
  "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
  "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
] as const; // prettier-ignore

/** The constants of the official MoCo CIFAR demo's Normalize. */
export const CIFAR10_STATS: ChannelStats = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] };
export const CIFAR100_STATS: ChannelStats = { mean: [0.5071, 0.4865, 0.4409], std: [0.2673, 0.2564, 0.2762] };

const PIXELS = 3 * 32 * 32;

export interface CifarOptions {
  /** The extracted folder (cifar-10-batches-bin / cifar-100-binary) or the folder that contains it. */
  dir: string;
  split?: Split;
}

interface Variant {
  kind: "cifar10" | "cifar100";
  folder: string;
  labelBytes: number;
  files: Record<Split, string[]>;
  namesFile: string;
  defaultNames: readonly string[];
  stats: ChannelStats;
}

const CIFAR10: Variant = {
  kind: "cifar10",
  folder: "cifar-10-batches-bin",
  labelBytes: 1,
  files: { train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`), test: ["test_batch.bin"] },
  namesFile: "batches.meta.txt",
  defaultNames: CIFAR10_CLASSES,
  stats: CIFAR10_STATS,
};

const CIFAR100: Variant = {
  kind: "cifar100",
  folder: "cifar-100-binary",
  labelBytes: 2,
  files: { train: ["train.bin"], test: ["test.bin"] },
  namesFile: "fine_label_names.txt",
  defaultNames: CIFAR100_CLASSES,
  stats: CIFAR100_STATS,
};

/** The folder holding the batch files: `dir` itself or its `cifar-10-batches-bin` child. */
function resolveFolder(dir: string, variant: Variant): string {
  const first = variant.files.train[0] as string;
  for (const candidate of [dir, join(dir, variant.folder)]) {
    if (statOrNull(join(candidate, first))?.isFile() === true) return candidate;
    if (statOrNull(join(candidate, variant.files.test[0] as string))?.isFile() === true) return candidate;
  }
  if (statOrNull(dir) === null) throw new DatasetError("NOT_FOUND", dir, `${variant.kind} folder not found`);
  return dir; // the missing file is reported by name below
}

function classNames(folder: string, variant: Variant): readonly string[] {
  const path = join(folder, variant.namesFile);
  if (statOrNull(path)?.isFile() !== true) return variant.defaultNames;
  const names = readFileSync(path, "utf8")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== variant.defaultNames.length) {
    throw new DatasetError(
      "CORRUPT",
      path,
      `expected ${variant.defaultNames.length} class names, found ${names.length}`,
    );
  }
  return names;
}

function openCifar(variant: Variant, options: CifarOptions): TensorImageDataset {
  const split = options.split ?? "train";
  if (split !== "train" && split !== "test")
    throw new TypeError(`${variant.kind}: split must be "train" or "test", got ${String(split)}`);
  const folder = resolveFolder(options.dir, variant);
  const record = variant.labelBytes + PIXELS;
  const numClasses = variant.defaultNames.length;
  const buffers = variant.files[split].map((name) => {
    const path = join(folder, name);
    const data = readFileOrThrow(path, `${variant.kind} file`);
    if (data.length === 0 || data.length % record !== 0) {
      throw new DatasetError(
        "TRUNCATED",
        path,
        `truncated or not a ${variant.kind} binary file: ${data.length} bytes is not a positive multiple of the ${record}-byte record`,
      );
    }
    return { path, data };
  });
  const n = buffers.reduce((sum, b) => sum + b.data.length / record, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = new Uint8Array(n);
  let k = 0;
  for (const { path, data } of buffers) {
    for (let offset = 0; offset < data.length; offset += record, k++) {
      const label = data[offset + variant.labelBytes - 1] as number; // the fine label for CIFAR-100
      if (label >= numClasses) {
        throw new DatasetError(
          "CORRUPT",
          path,
          `record ${offset / record} has label ${label}, ${variant.kind} has ${numClasses} classes`,
        );
      }
      labels[k] = label;
      pixels.set(data.subarray(offset + variant.labelBytes, offset + record), k * PIXELS);
    }
  }
  return new TensorImageDataset({
    name: `${variant.kind} ${split}`,
    images: keep(fromBytes(pixels, "uint8", [n, 3, 32, 32])),
    labels: keep(scope(() => fromBytes(labels, "uint8", [n]).long())),
    classNames: classNames(folder, variant),
    stats: variant.stats,
  });
}

/** CIFAR-10 in memory: uint8 [N, 3, 32, 32] (50 000 train / 10 000 test), 10 classes. */
export function openCifar10(options: CifarOptions): TensorImageDataset {
  return openCifar(CIFAR10, options);
}

/** CIFAR-100 in memory with its 100 fine labels: uint8 [N, 3, 32, 32] (50 000 / 10 000). */
export function openCifar100(options: CifarOptions): TensorImageDataset {
  return openCifar(CIFAR100, options);
}
