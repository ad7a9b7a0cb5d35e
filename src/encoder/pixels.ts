// Raw pixels as features: the baseline every learned encoder is compared with. For kNN they are the
// images at the evaluation size, normalised per channel (the pretraining monitor's pixel line), then
// flattened and L2-normalised by the extractor; for a linear probe they are standardised per feature
// with the training split's mean and standard deviation, as a linear model on raw inputs needs.
import { evalTransform } from "../data/augment.js";
import type { ChannelStats, ImageDataset } from "../data/dataset.js";
import { onDevice } from "../nn/index.js";
import { keep, scope, where, zeros, type Tensor } from "../torch/index.js";
import { datasetSource, streamFeatures, type FeatureFunction } from "./features.js";

export interface PixelFeatureOptions {
  /** Side of the square images (centre crop, or a resize when larger); null or absent: their own size. */
  size?: number | null;
  /** Per-channel normalisation (a dataset's `stats`); null: x / 255 only. */
  stats: ChannelStats | null;
  /** Where the features go ("cpu", "cuda", "cuda:N"); default the CPU. */
  device?: string;
}

/** Raw pixels as a feature function: uint8 [B, C, H, W] → float [B, C, size, size] on `device`. */
export function pixelFeatures(options: PixelFeatureOptions): FeatureFunction {
  const size = options.size ?? null;
  if (size !== null && !(Number.isSafeInteger(size) && size >= 1))
    throw new RangeError(`pixelFeatures: size must be a positive integer, got ${size}`);
  const device = options.device ?? "cpu";
  return (images) =>
    scope(() => onDevice(evalTransform(images, { ...(size === null ? {} : { size }), stats: options.stats }), device));
}

/** Per-feature mean and standard deviation [D] (float32), the standardisation of a linear probe. */
export interface FeatureStandardization {
  mean: Tensor;
  /** Population standard deviation (ddof 0, as numpy's and scikit-learn's); 1 where a feature is constant. */
  std: Tensor;
}

/**
 * A standard deviation below this × max(1, |mean|) is a constant feature's, measured through float64
 * rounding (numpy gives 1e-14 for 1000 equal values of 0.8); a pixel that varies at all has a
 * spread of at least (1/255) / (std of the channel) / √N, far above it.
 */
export const CONSTANT_FEATURE = 1e-10;

/** Σ over every sample of `dataset` of `term(features)` [D], in float64 (kept; the caller frees it). */
async function sumOver(
  dataset: ImageDataset,
  batchSize: number,
  features: FeatureFunction,
  term: (batch: Tensor) => Tensor,
): Promise<Tensor> {
  const total: { sum: Tensor | null } = { sum: null };
  try {
    await streamFeatures(dataset.length, batchSize, datasetSource(dataset), features, {
      normalize: false,
      onBatch: (batch) => {
        scope(() => {
          const add = term(batch.double()).sum(0);
          total.sum ??= keep(zeros(add.shape, { dtype: "float64", device: add.device }));
          total.sum.add_(add);
        });
      },
    });
  } catch (error) {
    total.sum?.dispose();
    throw error;
  }
  if (total.sum === null) throw new RangeError(`featureStandardization: ${dataset.name} has no samples`);
  return total.sum;
}

/**
 * The mean and standard deviation of each feature over every sample of `dataset` (flattened
 * features, not normalised): two passes, accumulated in float64. A constant feature (a spread below
 * CONSTANT_FEATURE × max(1, |mean|)) gets std 1, as in scikit-learn's StandardScaler: it is
 * centred, not scaled. Results on the features' device.
 */
export async function featureStandardization(
  dataset: ImageDataset,
  batchSize: number,
  features: FeatureFunction,
): Promise<FeatureStandardization> {
  const count = dataset.length;
  const sum = await sumOver(dataset, batchSize, features, (x) => x);
  const mean = keep(scope(() => sum.div(count)));
  sum.dispose();
  try {
    const squares = await sumOver(dataset, batchSize, features, (x) => {
      const deviation = x.sub(mean);
      return deviation.mul(deviation);
    });
    try {
      return scope(() => {
        const std = squares.div(count).sqrt();
        // A spread within rounding of zero is none (the sum of N equal values is not exactly N × it).
        const constant = std.lt(mean.abs().clamp(1).mul(CONSTANT_FEATURE));
        return { mean: keep(mean.float()), std: keep(where(constant, 1, std).float()) };
      });
    } finally {
      squares.dispose();
    }
  } finally {
    mean.dispose();
  }
}

/** (x − mean) / std of flattened features [B, D]. */
export function standardize(features: Tensor, standardization: FeatureStandardization): Tensor {
  return scope(() => features.flatten(1).sub(standardization.mean).div(standardization.std));
}
