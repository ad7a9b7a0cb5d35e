// One entry point for the CLI's --dataset: fashion-mnist, mnist, cifar10, cifar100, folder.
import { openCifar10, openCifar100 } from "./cifar.js";
import type { ImageDataset } from "./dataset.js";
import { FASHION_MNIST_DIR, openFashionMnist, openMnist, type Split } from "./fashion-mnist.js";
import { openImageFolder, type ImageFolderOptions } from "./image-folder.js";

export const DATASET_KINDS = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"] as const;
export type DatasetKind = (typeof DATASET_KINDS)[number];

export interface OpenDatasetOptions {
  kind: DatasetKind;
  /** The data folder; optional for fashion-mnist (Debian's package), required otherwise. */
  root?: string;
  split?: Split;
  /** Folders only: working size, channels, skipping bad images. */
  folder?: Omit<ImageFolderOptions, "root" | "split">;
}

/** Opens a dataset by kind: in memory for IDX and CIFAR, decoded on the fly for folders. */
export async function openDataset(options: OpenDatasetOptions): Promise<ImageDataset> {
  const { kind, root, split = "train" } = options;
  const need = (): string => {
    if (root === undefined) throw new TypeError(`openDataset: ${kind} needs a data folder`);
    return root;
  };
  switch (kind) {
    case "fashion-mnist":
      return openFashionMnist({ dir: root ?? FASHION_MNIST_DIR, split });
    case "mnist":
      return openMnist({ dir: need(), split });
    case "cifar10":
      return openCifar10({ dir: need(), split });
    case "cifar100":
      return openCifar100({ dir: need(), split });
    case "folder":
      return openImageFolder({ ...options.folder, root: need(), ...(options.split === undefined ? {} : { split }) });
    default:
      throw new TypeError(`openDataset: kind must be one of ${DATASET_KINDS.join(", ")}, got ${JSON.stringify(kind)}`);
  }
}
