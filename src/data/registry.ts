// The one dataset registry: every dataset moco-ts can open by name, with what it needs and how it
// is opened. The pretraining configuration (its `dataset` key), the CLI's --dataset flags and the
// library's openDataset all read this table, so a dataset is added in one place.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { MocoError } from "../errors.js";
import { openCifar10, openCifar100 } from "./cifar.js";
import type { ImageDataset } from "./dataset.js";
import { FASHION_MNIST_DIR, openFashionMnist, openMnist, type Split } from "./fashion-mnist.js";
import { openImageFolder, type ImageFolderOptions } from "./image-folder.js";

export interface DatasetEntry {
  /** One line for help texts. */
  readonly description: string;
  /** Where the data is when no folder is given; null: a folder is required. */
  readonly defaultRoot: string | null;
  /** In memory (IDX, CIFAR binaries) or decoded on the fly (image folders). */
  readonly kind: "memory" | "folder";
  /** The splits present under `root`: always both for the fixed-layout datasets. */
  splits(root: string): { train: boolean; test: boolean; flat: boolean };
  open(root: string, split: Split | undefined, folder: FolderOptions): Promise<ImageDataset>;
}

/** Folders only: working size, channels, skipping bad images. */
export type FolderOptions = Omit<ImageFolderOptions, "root" | "split">;

const BOTH_SPLITS = () => ({ train: true, test: true, flat: false });

export const DATASETS = {
  "fashion-mnist": {
    description: "Fashion-MNIST (IDX, gzip or not; default: Debian's dataset-fashion-mnist)",
    defaultRoot: FASHION_MNIST_DIR,
    kind: "memory",
    splits: BOTH_SPLITS,
    open: async (dir, split) => openFashionMnist({ dir, split: split ?? "train" }),
  },
  mnist: {
    description: "MNIST in the IDX layout",
    defaultRoot: null,
    kind: "memory",
    splits: BOTH_SPLITS,
    open: async (dir, split) => openMnist({ dir, split: split ?? "train" }),
  },
  cifar10: {
    description: "CIFAR-10 binary version (data_batch_*.bin, test_batch.bin)",
    defaultRoot: null,
    kind: "memory",
    splits: BOTH_SPLITS,
    open: async (dir, split) => openCifar10({ dir, split: split ?? "train" }),
  },
  cifar100: {
    description: "CIFAR-100 binary version (train.bin, test.bin)",
    defaultRoot: null,
    kind: "memory",
    splits: BOTH_SPLITS,
    open: async (dir, split) => openCifar100({ dir, split: split ?? "train" }),
  },
  folder: {
    description: "an image folder: ROOT/CLASS/*.jpg, or ROOT/train and ROOT/val (or test)",
    defaultRoot: null,
    kind: "folder",
    splits: (root) => {
      const train = existsSync(join(root, "train"));
      return { train, test: train && (existsSync(join(root, "val")) || existsSync(join(root, "test"))), flat: !train };
    },
    open: (root, split, folder) => openImageFolder({ ...folder, root, ...(split === undefined ? {} : { split }) }),
  },
} as const satisfies Record<string, DatasetEntry>;

export type DatasetName = keyof typeof DATASETS;
/** The names, in the order help texts list them. */
export const DATASET_NAMES = Object.keys(DATASETS) as [DatasetName, ...DatasetName[]];

export function isDatasetName(name: unknown): name is DatasetName {
  return typeof name === "string" && Object.hasOwn(DATASETS, name);
}

/** A dataset name that is not in the registry, or a dataset opened without the folder it needs. */
export class DatasetNameError extends MocoError {
  override name = "DatasetNameError";
  constructor(message: string) {
    super("ERR_DATASET_NAME", message);
  }
}

/** The data folder of `name`: `root` when given, else its default place; an error when it has none. */
export function datasetRoot(name: DatasetName, root: string | null | undefined): string {
  const found = root ?? DATASETS[name].defaultRoot;
  if (found === null) throw new DatasetNameError(`dataset ${name} needs a data folder (none given)`);
  return found;
}

export interface OpenDatasetOptions {
  kind: DatasetName;
  /** The data folder; optional for fashion-mnist (Debian's package), required otherwise. */
  root?: string;
  /** Default "train"; for a folder without train/, omit it to open the whole folder. */
  split?: Split;
  folder?: FolderOptions;
}

/** Opens a dataset by name: in memory for IDX and CIFAR, decoded on the fly for folders. */
export async function openDataset(options: OpenDatasetOptions): Promise<ImageDataset> {
  const { kind } = options;
  if (!isDatasetName(kind))
    throw new DatasetNameError(`dataset must be one of ${DATASET_NAMES.join(", ")}, got ${JSON.stringify(kind)}`);
  const entry: DatasetEntry = DATASETS[kind];
  const split = options.split ?? (entry.kind === "folder" ? undefined : "train");
  return entry.open(datasetRoot(kind, options.root), split, options.folder ?? {});
}
