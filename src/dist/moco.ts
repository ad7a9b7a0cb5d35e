// MoCo's two cross-rank mechanisms (He et al. 2019, arXiv 1911.05722, §3.3 "Shuffling BN"), as the
// official builder's concat_all_gather, _batch_shuffle_ddp and _batch_unshuffle_ddp. They plug into
// src/moco through its BatchShuffle and KeyGather seams, so src/moco never imports this layer.
import { permutationOn, type BatchShuffle, type KeyGather } from "../moco/index.js";
import { cat, noGrad, type Tensor } from "../torch/index.js";
import type { ProcessGroup } from "./process-group.js";

/** Every rank's tensor, concatenated along dim 0 in rank order (concat_all_gather). */
export function gatherCat(group: ProcessGroup, tensor: Tensor): Tensor {
  if (group.worldSize === 1) return tensor.clone();
  return noGrad(() => {
    const parts = group.allGather(tensor);
    const all = cat(parts, 0);
    for (const part of parts) part.dispose();
    return all;
  });
}

/** Keys from all ranks, so every rank enqueues the same global batch and the queues stay identical. */
export function crossRankKeyGather(group: ProcessGroup): KeyGather {
  return (keys) => (group.worldSize === 1 ? keys : gatherCat(group, keys));
}

/**
 * Shuffle BN across ranks: the key images of all ranks are gathered, permuted by one permutation
 * drawn on rank 0 and broadcast, and each rank encodes its slice of the shuffled global batch; the
 * keys are gathered again and put back in order, each rank keeping the keys of its own images.
 * Every rank draws a permutation (keeping the random streams in step), rank 0's wins.
 */
export function crossRankShuffle(group: ProcessGroup): BatchShuffle {
  return {
    shuffle(images) {
      return noGrad(() => {
        const local = images.shape[0] ?? 0;
        const all = gatherCat(group, images);
        const total = all.shape[0] ?? 0;
        if (total !== local * group.worldSize) {
          all.dispose();
          throw new RangeError(`crossRankShuffle: ranks hold different batch sizes (${total} images in all, ${local} here)`);
        }
        const order = permutationOn(total, all.device);
        group.broadcast(order, 0);
        const restore = order.argsort();
        const mine = order.narrow(0, group.rank * local, local);
        const shuffled = all.indexSelect(0, mine);
        for (const t of [all, order, mine]) t.dispose();
        return {
          shuffled,
          unshuffle: (keys: Tensor) =>
            noGrad(() => {
              const allKeys = gatherCat(group, keys);
              const back = restore.narrow(0, group.rank * local, local);
              const inOrder = allKeys.indexSelect(0, back);
              for (const t of [allKeys, back, restore]) t.dispose();
              return inOrder;
            }),
        };
      });
    },
  };
}
