// The data of a pretraining run, opened from its configuration: the training images, the labeled
// splits of the kNN monitor, and the augmentation pipelines.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { mocoV1Config, mocoV2Config, type AugmentConfig } from "../data/augment.js";
import { openCifar10, openCifar100 } from "../data/cifar.js";
import type { ImageDataset } from "../data/dataset.js";
import { openFashionMnist, openMnist } from "../data/fashion-mnist.js";
import { openImageFolder } from "../data/image-folder.js";
import type { Split } from "../data/fashion-mnist.js";
import type { PretrainConfig } from "./config.js";

export interface PretrainData {
  train: ImageDataset;
  /** Labeled training images whose features form the kNN bank (null: no labels, no monitor). */
  knnBank: ImageDataset | null;
  /** Labeled held-out images the kNN monitor classifies (null: none). */
  knnTest: ImageDataset | null;
  /** Side of the crops fed to the network. */
  imageSize: number;
  augment: AugmentConfig;
  dispose(): void;
}

function requireDir(config: PretrainConfig): string {
  if (config.data === null) throw new Error(`--dataset ${config.dataset} needs the data folder: moco pretrain DIR`);
  return config.data;
}

async function openSplit(config: PretrainConfig, split: Split, workingSize: number): Promise<ImageDataset | null> {
  switch (config.dataset) {
    case "fashion-mnist":
      return openFashionMnist({ ...(config.data === null ? {} : { dir: config.data }), split });
    case "mnist":
      return openMnist({ dir: requireDir(config), split });
    case "cifar10":
      return openCifar10({ dir: requireDir(config), split });
    case "cifar100":
      return openCifar100({ dir: requireDir(config), split });
    case "folder": {
      const root = requireDir(config);
      const hasSplits = existsSync(join(root, "train"));
      if (split === "test" && !(hasSplits && (existsSync(join(root, "val")) || existsSync(join(root, "test")))))
        return null;
      return openImageFolder({
        root,
        ...(hasSplits ? { split } : {}),
        size: workingSize,
        skipBadImages: config.skipBadImages,
      });
    }
  }
}

/** Opens the data a run needs. Folders decode to a working size a little above the crop size. */
export async function openPretrainData(config: PretrainConfig): Promise<PretrainData> {
  // Folders: 224 as the papers, or 64 for the small CIFAR-stem networks (no downsampling stem).
  const cropSize = config.imageSize ?? (config.dataset === "folder" ? (config.cifarStem ? 64 : 224) : null);
  // 256 for 224 crops, as ImageNet pipelines resize before cropping.
  const workingSize = Math.round(((cropSize ?? 224) * 8) / 7);
  const fullTrain = await openSplit(config, "train", workingSize);
  if (fullTrain === null) throw new Error("no training data");
  const opened: ImageDataset[] = [fullTrain];
  try {
    const train = config.subset === null ? fullTrain : fullTrain.subset(Math.min(config.subset, fullTrain.length));
    if (train !== fullTrain) opened.push(train);
    const labeled = train.labels !== null && train.numClasses > 0;
    const knnBank = !labeled
      ? null
      : config.knnBank === null
        ? train
        : train.subset(Math.min(config.knnBank, train.length));
    if (knnBank !== null && knnBank !== train) opened.push(knnBank);
    const fullTest = labeled ? await openSplit(config, "test", workingSize) : null;
    if (fullTest !== null) opened.push(fullTest);
    const knnTest =
      fullTest === null
        ? null
        : config.knnTest === null
          ? fullTest
          : fullTest.subset(Math.min(config.knnTest, fullTest.length));
    if (knnTest !== null && knnTest !== fullTest) opened.push(knnTest);
    const imageSize = cropSize ?? train.height;
    const stats = train.stats;
    const scale = [config.cropMinScale, 1] as const;
    const augment = config.augPlus
      ? mocoV2Config({ size: imageSize, stats, scale })
      : mocoV1Config({ size: imageSize, stats, scale });
    return {
      train,
      knnBank,
      knnTest: knnBank === null ? null : knnTest,
      imageSize,
      augment,
      dispose: () => {
        for (const dataset of opened.reverse()) dataset.dispose();
      },
    };
  } catch (error) {
    for (const dataset of opened.reverse()) dataset.dispose();
    throw error;
  }
}
