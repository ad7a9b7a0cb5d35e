// Fashion-MNIST / MNIST from a folder of IDX files: Debian's dataset-fashion-mnist by default.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { fromBytes, keep, type Tensor } from "../torch/index.js";
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
    if (existsSync(path)) return path;
  }
  throw new Error(
    `${join(dir, stem)}(.gz) not found` +
      (dir === FASHION_MNIST_DIR ? " — install it with: sudo apt-get install -y dataset-fashion-mnist" : ""),
  );
}

/** Loads one split of an MNIST-layout folder into memory as two tensors (kept out of any scope). */
export function loadMnistLayout(dir: string, split: Split): LabeledImages {
  const prefix = split === "train" ? "train" : "t10k";
  const images = readIdx(findFile(dir, `${prefix}-images-idx3-ubyte`));
  const labels = readIdx(findFile(dir, `${prefix}-labels-idx1-ubyte`));
  if (images.shape.length !== 3 || labels.shape.length !== 1 || images.shape[0] !== labels.shape[0]) {
    throw new Error(
      `${dir}: ${split} images [${images.shape.join(", ")}] and labels [${labels.shape.join(", ")}] do not match`,
    );
  }
  const imageTensor = keep(fromBytes(images.data, "uint8", images.shape));
  const labelBytes = keep(fromBytes(labels.data, "uint8", labels.shape));
  const labelTensor = keep(labelBytes.long());
  labelBytes.dispose();
  return { images: imageTensor, labels: labelTensor };
}
