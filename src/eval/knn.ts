// k-nearest-neighbour classification of L2-normalised features by cosine similarity to a feature
// bank. The weighted vote is the monitor of the official MoCo CIFAR demo (itself from Wu et al.
// 2018, "Unsupervised Feature Learning via Non-Parametric Instance Discrimination"): the top k
// neighbours vote for their class with weight exp(sim / t), the class with the largest total wins.
// The majority vote is the textbook kNN: one vote per neighbour, a tie going to the tied class whose
// nearest member is nearest (so k 3 with three different classes is the 1-NN answer).
import { onDevice } from "../nn/index.js";
import { arange, cat, keep, noGrad, scope, where, zeros, type Tensor } from "../torch/index.js";

/** How the k neighbours vote: weighted by exp(sim / t) (InstDisc, the MoCo monitor) or one each. */
export type KnnVote = "weighted" | "majority";
export const KNN_VOTES: readonly KnnVote[] = ["weighted", "majority"];

export interface KnnOptions {
  /** Neighbours that vote (the demo's `knn_k`, 200). */
  k: number;
  /** Temperature of the vote weights (the demo's `knn_t`, 0.1); unused by the majority vote. */
  t: number;
  numClasses: number;
  /** Default "weighted". */
  vote?: KnnVote;
  /** Test samples per similarity matrix; bounds memory at batch × bank size floats. */
  batchSize?: number;
}

export const KNN_DEFAULTS = { k: 200, t: 0.1, vote: "weighted" } as const;

/**
 * Class scores [B, numClasses] for `features` [B, D] against `bank` [N, D] with labels [N] (int64):
 * the larger, the more likely. All features must already be L2-normalised. Weighted vote: the sum of
 * exp(sim / t) over the class's neighbours among the top k. Majority vote: (k + 1) × the class's
 * neighbours + (k − the rank of its nearest one), integers that rank by count, then by nearness.
 */
export function knnScores(features: Tensor, bank: Tensor, bankLabels: Tensor, options: KnnOptions): Tensor {
  const { t, numClasses } = options;
  const vote = options.vote ?? "weighted";
  const k = Math.min(options.k, bank.shape[0] ?? 0);
  if (!(k >= 1))
    throw new RangeError(`knn: k must be >= 1 and the bank non-empty (k ${options.k}, bank ${bank.shape[0]})`);
  if (!KNN_VOTES.includes(vote)) throw new RangeError(`knn: vote must be weighted or majority, got ${String(vote)}`);
  if (vote === "weighted" && !(t > 0)) throw new RangeError(`knn: temperature t must be > 0, got ${t}`);
  return scope(() =>
    noGrad(() => {
      const batch = features.shape[0] ?? 0;
      const similarity = features.mm(bank.t()); // B × N
      const { values, indices } = similarity.topk(k, 1); // B × k, nearest first
      const neighbourLabels = onDevice(bankLabels, bank.device).expand(batch, -1).gather(1, indices); // B × k
      if (vote === "weighted") {
        const weights = values.div(t).exp();
        return zeros([batch, numClasses], { device: bank.device }).scatterAdd(1, neighbourLabels, weights);
      }
      const device = bank.device;
      // B × k × C: neighbour r is of class c.
      const member = neighbourLabels.unsqueeze(2).eq(arange(numClasses, undefined, 1, { device }).view(1, 1, -1));
      const counts = member.sum(1, false, "float32"); // B × C
      // k − rank of the class's nearest neighbour (0 for a class with none): breaks ties in the count.
      const nearness = where(member, arange(k, 0, -1, { device, dtype: "float32" }).view(1, -1, 1), 0).max(1).values;
      return counts.mul(k + 1).add(nearness);
    }),
  );
}

export interface KnnResult {
  top1: number;
  top5: number;
  /** Predicted class of each test sample (int64 [M]). */
  predictions: Tensor;
}

/**
 * Classifies every test feature against the bank and scores the predictions against the labels. The
 * work runs on the bank's device; the predictions come back on the CPU.
 */
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
  // Copies only when the labels live elsewhere (the caller's own tensors are neither kept nor freed).
  const device = bank.device;
  const labelsOnDevice = bankLabels.device === device ? bankLabels : keep(bankLabels.toDevice(device));
  const testOnDevice = testLabels.device === device ? testLabels : keep(testLabels.toDevice(device));
  for (let start = 0; start < total; start += batchSize) {
    const n = Math.min(batchSize, total - start);
    const prediction = scope(() => {
      const scores = knnScores(onDevice(testFeatures.narrow(0, start, n), device), bank, labelsOnDevice, options);
      const ranked = scores.argsort(1, true);
      const target = testOnDevice.narrow(0, start, n).unsqueeze(1);
      const hits = ranked.eq(target);
      correct1 += hits.narrow(1, 0, 1).sum().item();
      correct5 += hits.narrow(1, 0, Math.min(5, options.numClasses)).sum().item();
      return keep(onDevice(ranked.select(1, 0), "cpu"));
    });
    parts.push(prediction);
  }
  if (labelsOnDevice !== bankLabels) labelsOnDevice.dispose();
  if (testOnDevice !== testLabels) testOnDevice.dispose();
  const predictions = keep(cat(parts, 0));
  for (const p of parts) p.dispose();
  return { top1: correct1 / total, top5: correct5 / total, predictions };
}
