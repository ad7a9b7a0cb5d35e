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
    return { top1: hits.narrow(1, 0, 1).sum().item(), top5: hits.sum().item() };
  });
}
