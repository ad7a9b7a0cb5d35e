// The dataset interface shared by the loader, the training loop and the kNN evaluator, and its
// in-memory implementation: all images in one uint8 tensor [N, C, H, W] (gray = 1 channel).
import { fromTypedArray, keep, scope, type Tensor } from "../torch/index.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

/** Why a dataset could not be read; `path` names the file or folder at fault. */
export type DatasetErrorCode =
  | "NOT_FOUND" // missing file or folder
  | "UNREADABLE" // exists but cannot be read (permissions, I/O error)
  | "TRUNCATED" // shorter than its header / record size says
  | "CORRUPT" // wrong magic number, bad gzip, undecodable image, impossible label
  | "EMPTY" // a folder without images
  | "LAYOUT"; // files present but arranged in an unsupported way

export class DatasetError extends MocoError {
  override name = "DatasetError";
  // The reason, more precise than one ERR_ code (tests and programs branch on it).
  declare readonly code: DatasetErrorCode;
  constructor(
    code: DatasetErrorCode,
    readonly path: string,
    message: string,
    options?: MocoErrorOptions,
  ) {
    super(code, `${path}: ${message}`, options);
  }
}

/** Per-channel normalisation constants (images in [0, 1]). */
export interface ChannelStats {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** ImageNet's, used by the official MoCo code (main_moco.py). */
export const IMAGENET_STATS: ChannelStats = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };

/** Indices as a JS array, a typed array or an int64 tensor [B]. */
export type Indices = readonly number[] | Int32Array | Tensor;

/**
 * What the loader and the evaluators need from a dataset. `batch` returns a new uint8 tensor
 * [B, C, H, W] owned by the caller: synchronously for in-memory datasets, as a Promise for
 * datasets decoded on the fly (image folders). `await dataset.batch(i)` works for both.
 */
export interface ImageDataset {
  /** A short description for logs, e.g. "fashion-mnist train". */
  readonly name: string;
  readonly length: number;
  readonly channels: number;
  /** The size every image has in `batch` (folders: the fixed working size). */
  readonly height: number;
  readonly width: number;
  /** int64 [N], or null for unlabeled data (a flat image folder). */
  readonly labels: Tensor | null;
  /** 0 for unlabeled data. */
  readonly numClasses: number;
  readonly classNames: readonly string[];
  /** Normalisation constants suited to this data. */
  readonly stats: ChannelStats;
  /** True when `batch` is synchronous. */
  readonly inMemory: boolean;
  batch(indices: Indices): Tensor | Promise<Tensor>;
  /** The first n images (n ≤ length), sharing storage where possible. */
  subset(n: number): ImageDataset;
  /** The images at `indices` (in that order), named `name`: a random subset (subset.ts). */
  select(indices: readonly number[], name: string): ImageDataset;
  /** Frees the tensors the dataset holds. A subset holds its own views (storage is reference-counted). */
  dispose(): void;
}

/** One view of a batch cut while decoding: per image, its crop box and whether it is mirrored. */
export interface CropView {
  /** Boxes in pixels of the image as decoded: (top, left, height, width), torchvision's (i, j, h, w). */
  readonly boxes: readonly { top: number; left: number; height: number; width: number }[];
  /** 1 where the crop is mirrored left-right. */
  readonly flips: ArrayLike<number>;
}

/**
 * Image files to cut training crops from (CropDecoding.cropSources): plain data, so that a worker
 * thread (the loader's `workers`) decodes them as well as the thread that listed them.
 */
export interface CropSources {
  files: string[];
  /** Each file's size as decoded, [height, width]: the size its boxes were drawn on. */
  sizes: [number, number][];
  channels: 1 | 3;
}

/**
 * What a dataset decoded on the fly offers when it can cut and resize crops while decoding (image
 * folders): the loader's `views` option then decodes each training view straight to its final size.
 */
export interface CropDecoding {
  /** Each image's size as decoded, [height, width] (before any working size). */
  imageSizes(indices: Indices): Promise<[number, number][]>;
  /**
   * Per view, a new float32 tensor [B, C, h, w] of values in [0, 1]: each image's box cut from it
   * as decoded, resized to [h, w] = `size`, and mirrored where flagged.
   */
  decodeCrops(indices: Indices, views: readonly CropView[], size: readonly [number, number]): Promise<Tensor[]>;
  /** The files behind these images, for a worker thread to decode their crops (decodeFileCrops). */
  cropSources(indices: Indices): Promise<CropSources>;
}

/** Whether a dataset cuts crops while decoding (CropDecoding). */
export function decodesCrops(dataset: ImageDataset): dataset is ImageDataset & CropDecoding {
  const d = dataset as Partial<CropDecoding>;
  return (
    typeof d.imageSizes === "function" && typeof d.decodeCrops === "function" && typeof d.cropSources === "function"
  );
}

export function checkSubsetSize(n: number, length: number, what: string): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > length) {
    throw new RangeError(`${what}.subset: n must be an integer in [1, ${length}], got ${String(n)}`);
  }
  return n;
}

/**
 * Runs `fn` with the indices as an int64 tensor (JS indices checked against the dataset length;
 * a tensor is passed through, libtorch checks its range).
 */
export function withIndexTensor<T>(indices: Indices, length: number, what: string, fn: (index: Tensor) => T): T {
  if (!(indices instanceof Int32Array || Array.isArray(indices))) {
    const t = indices as Tensor;
    if (t.dtype === "int64") return fn(t);
    const converted = t.long();
    try {
      return fn(converted);
    } finally {
      converted.dispose();
    }
  }
  const index = indexTensor(indices as ArrayLike<number>, length, what);
  try {
    return fn(index);
  } finally {
    index.dispose();
  }
}

function indexTensor(indices: ArrayLike<number>, length: number, what: string): Tensor {
  const list = indices;
  const out = new BigInt64Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const k = list[i] as number;
    if (!Number.isSafeInteger(k) || k < 0 || k >= length) {
      throw new RangeError(`${what}.batch: index ${String(k)} out of range [0, ${length})`);
    }
    out[i] = BigInt(k);
  }
  return fromTypedArray(out, [list.length], "int64");
}

/** Indices as JS numbers, checked against the dataset length. */
export function indexArray(indices: Indices, length: number, what: string): number[] {
  const list =
    indices instanceof Int32Array || Array.isArray(indices)
      ? Array.from(indices as ArrayLike<number>)
      : (indices as Tensor).toArray();
  for (const k of list) {
    if (!Number.isSafeInteger(k) || k < 0 || k >= length) {
      throw new RangeError(`${what}.batch: index ${String(k)} out of range [0, ${length})`);
    }
  }
  return list;
}

export interface TensorDatasetOptions {
  name: string;
  /** uint8 [N, C, H, W]; the dataset takes ownership (it is kept out of every scope). */
  images: Tensor;
  /** int64 [N] or null; the dataset takes ownership. */
  labels: Tensor | null;
  classNames: readonly string[];
  stats: ChannelStats;
}

/** A dataset held in memory as one uint8 tensor [N, C, H, W]. */
export class TensorImageDataset implements ImageDataset {
  readonly name: string;
  readonly images: Tensor;
  readonly labels: Tensor | null;
  readonly classNames: readonly string[];
  readonly stats: ChannelStats;
  readonly inMemory = true;

  constructor(options: TensorDatasetOptions) {
    const { images, labels } = options;
    if (images.dtype !== "uint8" || images.ndim !== 4) {
      throw new TypeError(
        `TensorImageDataset: images must be uint8 [N, C, H, W], got ${images.dtype} [${images.shape.join(", ")}]`,
      );
    }
    if (labels !== null && (labels.dtype !== "int64" || labels.ndim !== 1 || labels.shape[0] !== images.shape[0])) {
      throw new TypeError(
        `TensorImageDataset: labels must be int64 [${images.shape[0]}], got ${labels.dtype} [${labels.shape.join(", ")}]`,
      );
    }
    this.name = options.name;
    this.images = keep(images);
    this.labels = labels === null ? null : keep(labels);
    this.classNames = options.classNames;
    this.stats = options.stats;
  }

  get length(): number {
    return this.images.shape[0] as number;
  }
  get channels(): number {
    return this.images.shape[1] as number;
  }
  get height(): number {
    return this.images.shape[2] as number;
  }
  get width(): number {
    return this.images.shape[3] as number;
  }
  get numClasses(): number {
    return this.labels === null ? 0 : this.classNames.length;
  }

  /** uint8 [B, C, H, W], a new tensor in the current scope. */
  batch(indices: Indices): Tensor {
    return withIndexTensor(indices, this.length, this.name, (index) => this.images.indexSelect(0, index));
  }

  /** int64 [B] labels of the given indices (null for unlabeled data). */
  batchLabels(indices: Indices): Tensor | null {
    const labels = this.labels;
    if (labels === null) return null;
    return withIndexTensor(indices, this.length, this.name, (index) => labels.indexSelect(0, index));
  }

  subset(n: number): TensorImageDataset {
    checkSubsetSize(n, this.length, this.name);
    return new TensorImageDataset({
      name: `${this.name} (first ${n})`,
      images: this.images.narrow(0, 0, n),
      labels: this.labels === null ? null : this.labels.narrow(0, 0, n),
      classNames: this.classNames,
      stats: this.stats,
    });
  }

  select(indices: readonly number[], name: string): TensorImageDataset {
    return scope(() => {
      const images = this.batch(indices);
      const labels = this.batchLabels(indices);
      return new TensorImageDataset({ name, images, labels, classNames: this.classNames, stats: this.stats });
    });
  }

  dispose(): void {
    this.images.dispose();
    this.labels?.dispose();
  }
}
