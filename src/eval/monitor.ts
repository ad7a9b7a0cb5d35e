// kNN accuracy of any feature function over a labeled bank and test split (the training monitor,
// and the baselines it is compared with: random initialisation, raw pixels).
import type { ImageDataset } from "../data/dataset.js";
import { F, arange, cat, keep, noGrad, scope, type Tensor } from "../torch/index.js";
import { knnClassify, type KnnResult } from "./knn.js";

/** Features of uint8 images [B, C, H, W] → [B, D] (any D; they are L2-normalised here). */
export type FeatureFunction = (images: Tensor) => Tensor;

/** Features of every image of a dataset (L2-normalised unless told not to), `batchSize` at a time, without gradients. */
export async function datasetFeatures(
  dataset: ImageDataset,
  batchSize: number,
  features: FeatureFunction,
  options: { normalize?: boolean } = {},
): Promise<Tensor> {
  const parts: Tensor[] = [];
  try {
    for (let start = 0; start < dataset.length; start += batchSize) {
      const n = Math.min(batchSize, dataset.length - start);
      const indices = arange(start, start + n);
      const images = await dataset.batch(indices);
      indices.dispose();
      parts.push(
        keep(
          scope(() =>
            noGrad(() => {
              const flat = features(images).flatten(1);
              return options.normalize === false ? flat : F.normalize(flat, { dim: 1 });
            }),
          ),
        ),
      );
      images.dispose();
    }
    return keep(cat(parts, 0));
  } finally {
    for (const part of parts) part.dispose();
  }
}

export interface KnnEvaluation {
  bank: ImageDataset;
  test: ImageDataset;
  k: number;
  t: number;
  batchSize?: number;
}

/** Weighted kNN top-1/top-5 of `features` (bank = `bank`'s images, queries = `test`'s). */
export async function knnAccuracy(evaluation: KnnEvaluation, features: FeatureFunction): Promise<KnnResult> {
  const { bank, test } = evaluation;
  if (bank.labels === null || test.labels === null) throw new Error("kNN needs labeled bank and test images");
  const batchSize = evaluation.batchSize ?? 256;
  const bankFeatures = await datasetFeatures(bank, batchSize, features);
  try {
    const testFeatures = await datasetFeatures(test, batchSize, features);
    try {
      return knnClassify(bankFeatures, bank.labels, testFeatures, test.labels, {
        k: evaluation.k,
        t: evaluation.t,
        numClasses: Math.max(bank.numClasses, test.numClasses),
        batchSize,
      });
    } finally {
      testFeatures.dispose();
    }
  } finally {
    bankFeatures.dispose();
  }
}
