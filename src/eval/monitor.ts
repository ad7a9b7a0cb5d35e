// kNN accuracy of any feature function over a labeled bank and test split (the training monitor,
// and the baselines it is compared with: random initialisation, raw pixels). Features come from the
// one extractor (encoder/features.ts) and stay on the feature function's device.
import type { ImageDataset } from "../data/dataset.js";
import { datasetFeatures, type FeatureFunction } from "../encoder/features.js";
import { knnClassify, type KnnResult } from "./knn.js";

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
