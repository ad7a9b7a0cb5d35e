// Weighted k-nearest-neighbour classification of L2-normalised features, the monitor of the official
// MoCo CIFAR demo (itself from Wu et al. 2018, "Unsupervised Feature Learning via Non-Parametric
// Instance Discrimination"): cosine similarity to a feature bank, the top k neighbours vote for their
// class with weight exp(sim / t), the class with the largest total wins.
import { F, cat, keep, noGrad, scope, zeros, type Tensor } from "../torch/index.js";

export interface KnnOptions {
  /** Neighbours that vote (the demo's `knn_k`, 200). */
  k: number;
  /** Temperature of the vote weights (the demo's `knn_t`, 0.1). */
  t: number;
  numClasses: number;
  /** Test samples per similarity matrix; bounds memory at batch × bank size floats. */
  batchSize?: number;
}

export const KNN_DEFAULTS = { k: 200, t: 0.1 } as const;

/**
 * Class scores [B, numClasses] for `features` [B, D] against `bank` [N, D] with labels [N] (int64).
 * All features must already be L2-normalised.
 */
export function knnScores(features: Tensor, bank: Tensor, bankLabels: Tensor, options: KnnOptions): Tensor {
  const { t, numClasses } = options;
  const k = Math.min(options.k, bank.shape[0] ?? 0);
  if (!(k >= 1))
    throw new RangeError(`knn: k must be >= 1 and the bank non-empty (k ${options.k}, bank ${bank.shape[0]})`);
  if (!(t > 0)) throw new RangeError(`knn: temperature t must be > 0, got ${t}`);
  return scope(() =>
    noGrad(() => {
      const batch = features.shape[0] ?? 0;
      const similarity = features.mm(bank.t()); // B × N
      const { values, indices } = similarity.topk(k, 1); // B × k
      const neighbourLabels = bankLabels.expand(batch, -1).gather(1, indices); // B × k
      const weights = values.div(t).exp();
      const votes = zeros([batch, numClasses]).scatterAdd(1, neighbourLabels, weights);
      return votes;
    }),
  );
}

export interface KnnResult {
  top1: number;
  top5: number;
  /** Predicted class of each test sample (int64 [M]). */
  predictions: Tensor;
}

/** Classifies every test feature against the bank and scores the predictions against the labels. */
export function knnClassify(
  bank: Tensor,
  bankLabels: Tensor,
  testFeatures: Tensor,
  testLabels: Tensor,
  options: KnnOptions,
): KnnResult {
  const batchSize = options.batchSize ?? 256;
  const total = testFeatures.shape[0] ?? 0;
  if (total === 0) throw new RangeError("knn: no test samples");
  let correct1 = 0;
  let correct5 = 0;
  const parts: Tensor[] = [];
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const prediction = scope(() => {
      const scores = knnScores(testFeatures.narrow(0, start, n), bank, bankLabels, options);
      const ranked = scores.argsort(1, true);
      const target = testLabels.narrow(0, start, n).unsqueeze(1);
      const hits = ranked.eq(target);
      correct1 += hits.narrow(1, 0, 1).sum().item();
      correct5 += hits.narrow(1, 0, Math.min(5, options.numClasses)).sum().item();
      return keep(ranked.select(1, 0));
    });
    parts.push(prediction);
  }
  const predictions = keep(cat(parts, 0));
  for (const p of parts) p.dispose();
  return { top1: correct1 / total, top5: correct5 / total, predictions };
}

/**
 * L2-normalised features of `count` samples, computed `batchSize` at a time by `encode` (which gets
 * the start index and size of each batch and returns [n, D] features) without gradients.
 */
export function extractFeatures(
  count: number,
  batchSize: number,
  encode: (start: number, n: number) => Tensor,
): Tensor {
  const parts: Tensor[] = [];
  for (let start = 0; start < count; start += batchSize) {
    const n = Math.min(batchSize, count - start);
    parts.push(keep(scope(() => noGrad(() => F.normalize(encode(start, n).flatten(1), { dim: 1 })))));
  }
  const all = keep(cat(parts, 0));
  for (const p of parts) p.dispose();
  return all;
}
