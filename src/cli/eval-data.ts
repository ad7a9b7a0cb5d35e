// The data of the evaluation commands (knn, lincls, embed): which dataset (by default the one the
// encoder was pretrained on, when its checkpoint or preset says), where, and at what size, so that a
// checkpoint written by `moco pretrain` is enough on its own.
import { existsSync } from "node:fs";
import { join } from "node:path";

import type { ImageDataset } from "../data/dataset.js";
import type { Split } from "../data/fashion-mnist.js";
import { randomSubset, type SubsetRecord } from "../data/subset.js";
import { DATASET_NAMES, isDatasetName, openDataset, type DatasetName } from "../data/registry.js";
import { Encoder, type TrainingData } from "../encoder/encoder.js";
import { THREADS_FLAG, UsageError, type Flag, type FlagReader } from "./flags.js";

export const DATA_FLAGS: readonly Flag[] = [
  {
    flag: "dataset",
    kind: "string",
    choices: DATASET_NAMES,
    help: DATASET_NAMES.join(" | "),
    defaultText: "what the encoder was pretrained on, else fashion-mnist; folder when DATA is given",
  },
  {
    flag: "subset",
    kind: "nullableInt",
    help: "use N training images: a random sample (seeded by --seed where the command has it, else 0), stratified by class",
    defaultText: "all",
    bounds: { min: 1 },
  },
  {
    flag: "image-size",
    kind: "nullableInt",
    help: "crop size fed to the network",
    defaultText: "the pretraining crop size, else the images' own; folders 224, or 64 for CIFAR-stem networks",
    bounds: { min: 1 },
  },
  { flag: "skip-bad-images", kind: "bool", help: "leave out unreadable images of a folder (reported)", default: false },
  THREADS_FLAG,
];

export interface EvalData {
  kind: DatasetName;
  /** Side of the square crops fed to the network (null: the images' own size). */
  imageSize: number | null;
  splits: Map<Split, ImageDataset>;
  /** The data folder (null: the dataset's default place). */
  root: string | null;
  /** False for a folder without train/ and val/: its one "split" is the whole folder. */
  hasSplits: boolean;
  /** The --subset sample of the training split (for subset.json); null: all its images. */
  subset: SubsetRecord | null;
  dispose(): void;
}

/**
 * What the data defaults come from: a loaded encoder (its checkpoint's pretraining data and crop
 * size, its stem), or the same facts without one (a preset, or none for raw pixels).
 */
export interface EvalDataDefaults {
  trainedOn: TrainingData | null;
  /** CIFAR-stem networks see folders at 64 px, others at 224. */
  cifarStem: boolean;
}

function defaultsOf(source: Encoder | EvalDataDefaults): EvalDataDefaults {
  return source instanceof Encoder
    ? { trainedOn: source.info.trainedOn, cifarStem: source.info.layout.cifarStem }
    : source;
}

function datasetKind(flags: FlagReader, defaults: EvalDataDefaults, dataDir: string | undefined): DatasetName {
  const given = flags.optionalString("dataset");
  if (given !== null) {
    if (!isDatasetName(given))
      throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(", ")}, got '${given}'`);
    return given;
  }
  if (dataDir !== undefined) return "folder";
  const trained = defaults.trainedOn?.dataset;
  return isDatasetName(trained) ? trained : "fashion-mnist";
}

/** Opens the requested splits ("train" and/or "test") of the data named by the flags and DATA. */
export async function openEvalData(
  flags: FlagReader,
  source: Encoder | EvalDataDefaults,
  dataDir: string | undefined,
  wanted: readonly Split[],
  log: (line: string) => void,
): Promise<EvalData> {
  const defaults = defaultsOf(source);
  const kind = datasetKind(flags, defaults, dataDir);
  const trainedOn = defaults.trainedOn;
  const root =
    dataDir ?? (trainedOn !== null && trainedOn.dataset === kind ? (trainedOn.data ?? undefined) : undefined);
  const configured = flags.optionalNumber("image-size") ?? trainedOn?.imageSize ?? null;
  const imageSize = kind === "folder" ? (configured ?? (defaults.cifarStem ? 64 : 224)) : configured;
  const splits = new Map<Split, ImageDataset>();
  const opened: ImageDataset[] = [];
  let hasSplits = true;
  let subsetRecord: SubsetRecord | null = null;
  // The sample's seed: the command's --seed (lincls) or 0, so the same command line draws the same images.
  const seed = flags.given("seed") ? flags.number("seed") : 0;
  try {
    for (const split of wanted) {
      let splitOption: { split?: Split } = { split };
      if (kind === "folder") {
        if (root === undefined) throw new UsageError("--dataset folder needs the data folder: DATA");
        if (!existsSync(join(root, "train"))) {
          if (wanted.length > 1)
            throw new UsageError(`${root}: needs train/ and val/ (or test/) sub-folders for a train and a test split`);
          splitOption = {};
          hasSplits = false;
        }
      }
      const dataset = await openDataset({
        kind,
        ...(root === undefined ? {} : { root }),
        ...splitOption,
        folder: {
          // Folders decode at 8/7 of the crop, as ImageNet's Resize(256) before CenterCrop(224).
          size: Math.round(((imageSize ?? 224) * 8) / 7),
          skipBadImages: flags.bool("skip-bad-images"),
          onSkip: (path, reason) => log(`skipped ${path}: ${reason}`),
        },
      });
      opened.push(dataset);
      const subset = flags.optionalNumber("subset");
      // Only here is the dataset's size known: more images than it has is a mistake, not "all".
      if (split === "train" && subset !== null && subset > dataset.length)
        throw new UsageError(
          `--subset ${subset} is more than the ${dataset.length} training images of ${dataset.name}`,
        );
      if (split === "train" && subset !== null && subset < dataset.length) {
        // A seeded random sample, stratified by class: the first N files would be the first classes.
        const sampled = randomSubset(dataset, subset, seed);
        opened.push(sampled.dataset);
        splits.set(split, sampled.dataset);
        subsetRecord = sampled.record;
      } else {
        splits.set(split, dataset);
      }
    }
  } catch (error) {
    for (const dataset of opened.reverse()) dataset.dispose();
    throw error;
  }
  return {
    kind,
    imageSize,
    splits,
    root: root ?? null,
    hasSplits,
    subset: subsetRecord,
    dispose: () => {
      for (const dataset of opened.reverse()) dataset.dispose();
    },
  };
}
