// Classification accuracy of a batch, shared by everything that trains on the loop.
import { scope, type Tensor } from "../torch/index.js";

/**
 * Top-k hits (k = 1 and 5, or fewer classes) of logits [N, C] against int64 targets [N], as counts:
 * linear evaluation's accuracy and MoCo's pretext accuracy (target 0, the positive key) alike.
 */
export function topkCorrect(logits: Tensor, targets: Tensor): { top1: number; top5: number } {
  return scope(() => {
    const k = Math.min(5, logits.shape[1] ?? 1);
    const hits = logits.topk(k, 1).indices.eq(targets.unsqueeze(1));
    // Hits per rank, read in one transfer (one sync on a GPU): top-1 is rank 0's, top-5 all of them.
    const perRank = hits.sum(0).toArray();
    return { top1: perRank[0] ?? 0, top5: perRank.reduce((a, b) => a + b, 0) };
  });
}
