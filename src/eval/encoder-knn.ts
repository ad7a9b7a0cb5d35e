// kNN evaluation with the per-class picture (`moco knn`): the training monitor's classifier (knn.ts)
// on the features of any checkpoint, of the same network at random initialisation, or of raw pixels.
import type { ImageDataset } from "../data/dataset.js";
import { encoderFeatures, type EmbedOptions } from "../encoder/embed.js";
import type { Encoder } from "../encoder/encoder.js";
import { datasetFeatures, type FeatureFunction } from "../encoder/features.js";
import { pixelFeatures } from "../encoder/pixels.js";
import { Preprocessor } from "../encoder/preprocess.js";
import type { Tensor } from "../torch/index.js";
import { classificationReport, type ClassificationReport } from "./classification-report.js";
import { knnClassify, type KnnVote } from "./knn.js";

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

export interface KnnEvaluationOptions {
  bank: ImageDataset;
  test: ImageDataset;
  k: number;
  /** Temperature of the weighted vote. */
  t: number;
  /** Default "weighted" (the MoCo monitor's). */
  vote?: KnnVote;
  batchSize?: number;
}

export interface EncoderKnnOptions extends EmbedOptions, KnnEvaluationOptions {
  onNote?: (note: string) => void;
}

export interface EncoderKnnResult {
  top1: number;
  top5: number;
  report: ClassificationReport;
}

/**
 * kNN of any feature function, `featuresOf(dataset)` for the bank's and the test split's images
 * (L2-normalised by the extractor), with accuracy per class and the confusion matrix.
 */
export async function evaluateFeatureKnn(
  featuresOf: (dataset: ImageDataset) => FeatureFunction,
  options: KnnEvaluationOptions,
): Promise<EncoderKnnResult> {
  const { bank, test } = options;
  if (bank.labels === null || test.labels === null)
    throw new Error(`kNN needs labeled data (${bank.labels === null ? bank.name : test.name} has no labels)`);
  const classNames = bank.classNames.length >= test.classNames.length ? bank.classNames : test.classNames;
  const batchSize = options.batchSize ?? 256;
  const bankFeatures = await datasetFeatures(bank, batchSize, featuresOf(bank), { normalize: true });
  try {
    const testFeatures = await datasetFeatures(test, batchSize, featuresOf(test), { normalize: true });
    try {
      const result = knnClassify(bankFeatures, bank.labels, testFeatures, test.labels, {
        k: options.k,
        t: options.t,
        vote: options.vote ?? "weighted",
        numClasses: classNames.length,
        batchSize,
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

/** kNN of an encoder's features (preprocessed as it was trained, `options.features` of it). */
export async function evaluateEncoderKnn(encoder: Encoder, options: EncoderKnnOptions): Promise<EncoderKnnResult> {
  let noted = false;
  const note = (line: string) => {
    if (!noted) options.onNote?.(line);
    noted = true;
  };
  return evaluateFeatureKnn((dataset) => {
    const preprocessor = new Preprocessor(encoder, dataset.channels, options);
    if (preprocessor.note !== null) note(preprocessor.note);
    return encoderFeatures(encoder, preprocessor, options);
  }, options);
}

export interface PixelKnnOptions extends KnnEvaluationOptions {
  /** Side of the square images compared (centre crop or resize); null or absent: their own size. */
  size?: number | null;
  /** Where the bank and the similarities live; default the CPU. */
  device?: string;
}

/**
 * kNN of raw pixels (the baseline of the pretraining monitor): each image at `size`, normalised per
 * channel with the bank's statistics (its dataset's mean and std), flattened and L2-normalised.
 */
export function evaluatePixelKnn(options: PixelKnnOptions): Promise<EncoderKnnResult> {
  const features = pixelFeatures({
    size: options.size ?? null,
    stats: options.bank.stats,
    ...(options.device === undefined ? {} : { device: options.device }),
  });
  return evaluateFeatureKnn(() => features, options);
}
