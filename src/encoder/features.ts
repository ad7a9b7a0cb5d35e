// The one feature extractor: features of many samples, `batchSize` at a time, without gradients,
// flattened to [n, D] and (by default) L2-normalised. The kNN monitor of pretraining, `moco knn`,
// linear evaluation and `moco embed` all go through it; they differ only in the feature function.
// The next batch loads (for image folders: decodes on libuv's threads) while this one is encoded.
import type { ImageDataset } from "../data/dataset.js";
import { F, arange, cat, keep, noGrad, scope, type Tensor } from "../torch/index.js";

/** Features of a batch of inputs (uint8 images [B, C, H, W], or anything `load` gives) → [B, ...]. */
export type FeatureFunction = (inputs: Tensor) => Tensor;

/** The inputs of samples start .. start + n − 1. */
export type BatchSource = (start: number, n: number) => Tensor | Promise<Tensor>;

export interface FeatureOptions {
  /** L2-normalise each feature vector (default true: cosine similarity becomes a dot product). */
  normalize?: boolean;
}

const identity: FeatureFunction = (x) => x.clone();

function checkBatchSize(batchSize: number): void {
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1))
    throw new RangeError(`features: batchSize must be a positive integer, got ${batchSize}`);
}

/** One batch's features: [n, D], on the feature function's device, nothing else left alive. */
export function batchFeatures(inputs: Tensor, features: FeatureFunction, options: FeatureOptions = {}): Tensor {
  return scope(() =>
    noGrad(() => {
      const flat = features(inputs).flatten(1);
      return options.normalize === false ? flat : F.normalize(flat, { dim: 1 });
    }),
  );
}

/**
 * Streams the features of `count` samples in order: `onBatch` gets each batch's features (freed after
 * it returns) and the index of its first sample. One batch is encoded while the next one loads.
 */
export async function streamFeatures(
  count: number,
  batchSize: number,
  load: BatchSource,
  features: FeatureFunction,
  options: FeatureOptions & { onBatch: (features: Tensor, start: number) => void | Promise<void> },
): Promise<void> {
  checkBatchSize(batchSize);
  const fetch = (start: number) => Promise.resolve(load(start, Math.min(batchSize, count - start)));
  let next: Promise<Tensor> | null = count > 0 ? fetch(0) : null;
  try {
    for (let start = 0; next !== null; start += batchSize) {
      const inputs = await next;
      next = start + batchSize < count ? fetch(start + batchSize) : null;
      let out: Tensor;
      try {
        out = keep(batchFeatures(inputs, features, options));
      } finally {
        inputs.dispose();
      }
      try {
        await options.onBatch(out, start);
      } finally {
        out.dispose();
      }
    }
  } finally {
    // A failure leaves the next batch in flight: free it when it lands.
    if (next !== null)
      next.then(
        (inputs) => inputs.dispose(),
        () => undefined,
      );
  }
}

/** The features of `count` samples as one tensor [count, D] (`features` defaults to the inputs themselves). */
export async function extractFeatures(
  count: number,
  batchSize: number,
  load: BatchSource,
  features: FeatureFunction = identity,
  options: FeatureOptions = {},
): Promise<Tensor> {
  const parts: Tensor[] = [];
  try {
    await streamFeatures(count, batchSize, load, features, {
      ...options,
      onBatch: (batch) => {
        parts.push(keep(batch.clone()));
      },
    });
    return keep(cat(parts, 0));
  } finally {
    for (const part of parts) part.dispose();
  }
}

/** The images of samples start .. start + n − 1 of a dataset. */
export function datasetSource(dataset: ImageDataset): BatchSource {
  return (start, n) => {
    const indices = arange(start, start + n);
    return Promise.resolve(dataset.batch(indices)).finally(() => indices.dispose());
  };
}

/** Features of every image of a dataset (L2-normalised unless told not to), `batchSize` at a time. */
export function datasetFeatures(
  dataset: ImageDataset,
  batchSize: number,
  features: FeatureFunction,
  options: FeatureOptions = {},
): Promise<Tensor> {
  return extractFeatures(dataset.length, batchSize, datasetSource(dataset), features, options);
}
