// Fashion-MNIST / MNIST from a folder of IDX files: Debian's dataset-fashion-mnist by default.
// Files: {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzipped (.gz) or raw.
import { join } from "node:path";

import { fromBytes, keep, scope, type Tensor } from "../torch/index.js";
import { DatasetError, TensorImageDataset, type ChannelStats } from "./dataset.js";
import { statOrNull } from "./files.js";
import { readIdx } from "./idx.js";

export const FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
] as const;

export const MNIST_CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"] as const;

/** Mean and std of the training pixels in [0, 1] (computed over the 60 000 training images). */
export const FASHION_MNIST_STATS: ChannelStats = { mean: [0.286], std: [0.353] };
export const MNIST_STATS: ChannelStats = { mean: [0.1307], std: [0.3081] };

export type Split = "train" | "test";

export interface LabeledImages {
  /** uint8 [N, H, W] */
  images: Tensor;
  /** int64 [N] */
  labels: Tensor;
}

function findFile(dir: string, stem: string): string {
  for (const name of [`${stem}.gz`, stem]) {
    const path = join(dir, name);
    if (statOrNull(path)?.isFile() === true) return path;
  }
  throw new DatasetError(
    "NOT_FOUND",
    `${join(dir, stem)}(.gz)`,
    "not found" +
      (dir === FASHION_MNIST_DIR ? " — install it with: sudo apt-get install -y dataset-fashion-mnist" : ""),
  );
}

function checkSplit(split: unknown, op: string): Split {
  if (split !== "train" && split !== "test")
    throw new TypeError(`${op}: split must be "train" or "test", got ${String(split)}`);
  return split;
}

/** Loads one split of an MNIST-layout folder into memory as two tensors (kept out of any scope). */
export function loadMnistLayout(dir: string, split: Split): LabeledImages {
  const prefix = checkSplit(split, "loadMnistLayout") === "train" ? "train" : "t10k";
  const imagesPath = findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  if (images.shape.length !== 3) {
    throw new DatasetError(
      "CORRUPT",
      imagesPath,
      `expected a rank-3 IDX array of images, got [${images.shape.join(", ")}]`,
    );
  }
  if (labels.shape.length !== 1 || images.shape[0] !== labels.shape[0]) {
    throw new DatasetError(
      "CORRUPT",
      labelsPath,
      `labels [${labels.shape.join(", ")}] do not match the images [${images.shape.join(", ")}] of ${imagesPath}`,
    );
  }
  const imageTensor = keep(fromBytes(images.data, "uint8", images.shape));
  const labelTensor = keep(scope(() => fromBytes(labels.data, "uint8", labels.shape).long()));
  return { images: imageTensor, labels: labelTensor };
}

export interface MnistLayoutOptions {
  /** The folder holding the IDX files (default: Debian's Fashion-MNIST). */
  dir?: string;
  split?: Split;
}

function openLayout(
  kind: string,
  dir: string,
  split: Split,
  classNames: readonly string[],
  stats: ChannelStats,
): TensorImageDataset {
  const { images, labels } = loadMnistLayout(dir, split);
  const maxLabel = scope(() => (labels.numel === 0 ? -1 : labels.max().item()));
  if (maxLabel >= classNames.length) {
    images.dispose();
    labels.dispose();
    throw new DatasetError(
      "CORRUPT",
      dir,
      `${split} labels go up to ${maxLabel}, ${kind} has ${classNames.length} classes`,
    );
  }
  // [N, H, W] → [N, 1, H, W]: a view of the same storage.
  const withChannel = keep(images.unsqueeze(1));
  images.dispose();
  return new TensorImageDataset({ name: `${kind} ${split}`, images: withChannel, labels, classNames, stats });
}

/** Fashion-MNIST in memory: uint8 [N, 1, 28, 28] (60 000 train / 10 000 test), 10 classes. */
export function openFashionMnist(options: MnistLayoutOptions = {}): TensorImageDataset {
  const split = checkSplit(options.split ?? "train", "openFashionMnist");
  return openLayout(
    "fashion-mnist",
    options.dir ?? FASHION_MNIST_DIR,
    split,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_STATS,
  );
}

/** MNIST (same file layout as Fashion-MNIST); there is no default folder. */
export function openMnist(options: MnistLayoutOptions & { dir: string }): TensorImageDataset {
  const split = checkSplit(options.split ?? "train", "openMnist");
  return openLayout("mnist", options.dir, split, MNIST_CLASSES, MNIST_STATS);
}
