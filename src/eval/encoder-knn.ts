// Weighted kNN evaluation of a loaded encoder (`moco knn`): the training monitor's classifier
// (knn.ts) on the features of any checkpoint, with the per-class picture.
import type { ImageDataset } from "../data/dataset.js";
import { encoderFeatures, type EmbedOptions } from "../encoder/embed.js";
import type { Encoder } from "../encoder/encoder.js";
import { datasetFeatures } from "../encoder/features.js";
import { Preprocessor } from "../encoder/preprocess.js";
import type { Tensor } from "../torch/index.js";
import { classificationReport, type ClassificationReport } from "./classification-report.js";
import { knnClassify } from "./knn.js";

/**
 * L2-normalised embeddings of a whole dataset as one tensor [N, D], on the encoder's device (after
 * `options.device` moved it there).
 */
export async function datasetEmbeddings(
  encoder: Encoder,
  dataset: ImageDataset,
  options: EmbedOptions & { batchSize?: number; onNote?: (note: string) => void },
): Promise<Tensor> {
  const preprocessor = new Preprocessor(encoder, dataset.channels, options);
  if (preprocessor.note !== null) options.onNote?.(preprocessor.note);
  return datasetFeatures(dataset, options.batchSize ?? 256, encoderFeatures(encoder, preprocessor, options), {
    normalize: true,
  });
}

export interface EncoderKnnOptions extends EmbedOptions {
  bank: ImageDataset;
  test: ImageDataset;
  k: number;
  t: number;
  batchSize?: number;
  onNote?: (note: string) => void;
}

export interface EncoderKnnResult {
  top1: number;
  top5: number;
  report: ClassificationReport;
}

export async function evaluateEncoderKnn(encoder: Encoder, options: EncoderKnnOptions): Promise<EncoderKnnResult> {
  const { bank, test } = options;
  if (bank.labels === null || test.labels === null)
    throw new Error(`kNN needs labeled data (${bank.labels === null ? bank.name : test.name} has no labels)`);
  const classNames = bank.classNames.length >= test.classNames.length ? bank.classNames : test.classNames;
  let noted = false;
  const embedOptions = {
    ...options,
    onNote: (note: string) => {
      if (!noted) options.onNote?.(note);
      noted = true;
    },
  };
  const bankFeatures = await datasetEmbeddings(encoder, bank, embedOptions);
  try {
    const testFeatures = await datasetEmbeddings(encoder, test, embedOptions);
    try {
      const result = knnClassify(bankFeatures, bank.labels, testFeatures, test.labels, {
        k: options.k,
        t: options.t,
        numClasses: classNames.length,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      });
      try {
        return {
          top1: result.top1,
          top5: result.top5,
          report: classificationReport(result.predictions, test.labels, classNames),
        };
      } finally {
        result.predictions.dispose();
      }
    } finally {
      testFeatures.dispose();
    }
  } finally {
    bankFeatures.dispose();
  }
}
