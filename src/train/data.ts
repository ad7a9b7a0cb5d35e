// The data of a pretraining run, opened from its configuration: the training images, the labeled
// splits of the kNN monitor, and the augmentation pipelines.
import { mocoV1Config, mocoV2Config, type AugmentConfig } from "../data/augment.js";
import type { ImageDataset } from "../data/dataset.js";
import type { Split } from "../data/fashion-mnist.js";
import type { ImageFolderDataset } from "../data/image-folder.js";
import { DATASETS, datasetRoot } from "../data/registry.js";
import { randomSubset, type SubsetRecord } from "../data/subset.js";
import { ConfigError, type PretrainConfig } from "./config.js";

export interface PretrainData {
  train: ImageDataset;
  /** Labeled training images whose features form the kNN bank (null: no labels, no monitor). */
  knnBank: ImageDataset | null;
  /** Labeled held-out images the kNN monitor classifies (null: none). */
  knnTest: ImageDataset | null;
  /** Side of the crops fed to the network. */
  imageSize: number;
  /** Training images the data holds (`train` may be a subset of them). */
  available: number;
  /** The `subset` sample (seeded, stratified by class), recorded in the run folder; null: all images. */
  subset: SubsetRecord | null;
  /** Unreadable images left out with skipBadImages. */
  skipped: number;
  augment: AugmentConfig;
  dispose(): void;
}

function dataDir(config: PretrainConfig): string {
  if (config.data === null && DATASETS[config.dataset].defaultRoot === null)
    throw new ConfigError(`--dataset ${config.dataset} needs the data folder: moco pretrain DIR`);
  return datasetRoot(config.dataset, config.data);
}

/** A split of the configured dataset through the registry; null when a folder has no such split. */
async function openSplit(config: PretrainConfig, split: Split, workingSize: number): Promise<ImageDataset | null> {
  const root = dataDir(config);
  const entry = DATASETS[config.dataset];
  const present = entry.splits(root);
  if (split === "test" && !present.test) return null;
  return entry.open(root, present.flat ? undefined : split, {
    size: workingSize,
    skipBadImages: config.skipBadImages,
  });
}

/**
 * Opens the data a run needs. Folders: the training views are cut while decoding, from the images
 * as they are (the loader's `views`); the kNN monitor's images decode to a working size a little
 * above the crop size, then the eval transform centre-crops them (torchvision's Resize + CenterCrop).
 */
export async function openPretrainData(
  config: PretrainConfig,
  /** A resumed run's subset.json: its images are used as they are (exact resume whatever drew them). */
  savedSubset: SubsetRecord | null = null,
): Promise<PretrainData> {
  // Folders: 224 as the papers, or 64 for the small CIFAR-stem networks (no downsampling stem).
  const cropSize = config.imageSize ?? (config.dataset === "folder" ? (config.cifarStem ? 64 : 224) : null);
  // 256 for 224 crops, as ImageNet's evaluation resizes before its centre crop.
  const workingSize = Math.round(((cropSize ?? 224) * 8) / 7);
  const fullTrain = await openSplit(config, "train", workingSize);
  if (fullTrain === null) throw new Error("no training data");
  const opened: ImageDataset[] = [fullTrain];
  try {
    // A seeded random sample, stratified by class, never the first N files (the first classes of a
    // folder). The seed is the run's, so a resumed run draws the same images. At most the whole set:
    // a subset the user asked for is checked against the data by the CLI (pretrain-command.ts).
    const sampled =
      config.subset === null
        ? null
        : savedSubset !== null && savedSubset.indices.length === config.subset && savedSubset.of === fullTrain.length
          ? {
              dataset: fullTrain.select(savedSubset.indices, `${fullTrain.name} (${config.subset} of subset.json)`),
              record: savedSubset,
            }
          : randomSubset(fullTrain, config.subset, config.seed);
    const train = sampled?.dataset ?? fullTrain;
    if (train !== fullTrain) opened.push(train);
    const labeled = train.labels !== null && train.numClasses > 0;
    const knnBank = !labeled
      ? null
      : config.knnBank === null
        ? train
        : randomSubset(train, config.knnBank, config.seed).dataset;
    if (knnBank !== null && knnBank !== train) opened.push(knnBank);
    const fullTest = labeled ? await openSplit(config, "test", workingSize) : null;
    if (fullTest !== null) opened.push(fullTest);
    const knnTest =
      fullTest === null
        ? null
        : config.knnTest === null
          ? fullTest
          : randomSubset(fullTest, config.knnTest, config.seed).dataset;
    if (knnTest !== null && knnTest !== fullTest) opened.push(knnTest);
    const imageSize = cropSize ?? train.height;
    const stats = train.stats;
    const scale = [config.cropMinScale, 1] as const;
    const recipe = { size: imageSize, stats, scale, jitter: config.colorJitter };
    const augment = config.augPlus ? mocoV2Config(recipe) : mocoV1Config(recipe);
    return {
      train,
      knnBank,
      knnTest: knnBank === null ? null : knnTest,
      imageSize,
      available: fullTrain.length,
      subset: sampled?.record ?? null,
      skipped: "skipped" in fullTrain ? (fullTrain as ImageFolderDataset).skipped.length : 0,
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
