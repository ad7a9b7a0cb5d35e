// The mechanisms of MoCo, one small helper each, all without gradients and updating in place
// (He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", arXiv 1911.05722).
import type { Module } from "../nn/index.js";
import {
  cat,
  foreachAdd_,
  foreachMul_,
  getAutocastDtype,
  isAutocastEnabled,
  noGrad,
  randperm,
  zeros,
  type Tensor,
} from "../torch/index.js";

/** Logits N×(1+K) and the index of the positive (0) for each of the N queries. */
export interface ContrastiveLogits {
  logits: Tensor;
  labels: Tensor;
}

/**
 * Eq. (1)'s logits: for unit queries q (N×C), their positive keys k (N×C) and the queue of negatives
 * (C×K), [q·k+, q·queue] / T, with the positive at index 0 of each row.
 */
export function contrastiveLogits(q: Tensor, k: Tensor, queue: Tensor, T: number): ContrastiveLogits {
  const lPos = q.mul(k).sum(1, true); // positive logits: N×1
  const lNeg = q.mm(queue); // negative logits: N×K
  const logits = cat([lPos, lNeg], 1).div_(T); // logits: N×(1+K), divided in place as the official `logits /= T`
  lPos.dispose();
  lNeg.dispose();
  // Made where the queries are, so that a model on a GPU gets its labels there too.
  return { logits, labels: zeros([q.shape[0] ?? 0], { dtype: "int64", device: q.device }) };
}

/**
 * The queue's keys as negatives for one forward pass: a copy, since enqueueing overwrites the queue in
 * place before the backward pass reads them. Under autocast the copy is the cast to its lower precision
 * that the product with the queries makes anyway; a float32 clone would be copied twice.
 */
export function queueNegatives(queue: Tensor): Tensor {
  const deviceType = queue.device.startsWith("cuda") ? "cuda" : "cpu";
  return isAutocastEnabled(deviceType) ? queue.to(getAutocastDtype(deviceType)) : queue.clone();
}

/** Eq. (2): θk ← m·θk + (1 − m)·θq, for parameters only (BN buffers keep their own statistics). */
export function momentumUpdate(keyEncoder: Module, queryEncoder: Module, m: number): void {
  noGrad(() => {
    const keyParams = keyEncoder.parameters();
    const queryParams = queryEncoder.parameters();
    if (keyParams.length !== queryParams.length) {
      throw new Error(`momentumUpdate: encoders differ (${keyParams.length} vs ${queryParams.length} parameters)`);
    }
    // Two native calls for all parameters; per tensor, exactly k.mul_(m).add_(q, 1 - m).
    foreachMul_(keyParams, m);
    foreachAdd_(keyParams, queryParams, 1 - m);
  });
}

/**
 * Dequeue the oldest keys and enqueue the newest: the queue (dim × K) is a ring buffer whose pointer
 * (int64 [1]) marks the oldest column. Requires K to be a multiple of the number of keys.
 */
export function dequeueAndEnqueue(queue: Tensor, queuePtr: Tensor, keys: Tensor): void {
  noGrad(() => {
    const [batch = 0] = keys.shape;
    const K = queue.shape[1] ?? 0;
    const ptr = queuePtr.item();
    if (K % batch !== 0) throw new RangeError(`enqueue: queue size ${K} is not a multiple of the ${batch} keys`);
    using slot = queue.narrow(1, ptr, batch);
    using keysT = keys.t();
    slot.copy_(keysT);
    queuePtr.fill_((ptr + batch) % K);
  });
}

/** A shuffle of the key batch and its inverse, so that BN statistics cannot leak the positive. */
export interface BatchShuffle {
  /** Returns the shuffled images and a function that puts the encoded keys back in batch order. */
  shuffle(images: Tensor): { shuffled: Tensor; unshuffle: (keys: Tensor) => Tensor };
}

/**
 * A random permutation of 0..n-1 on `device`, drawn from the CPU generator as the official code does
 * (`torch.randperm(n).cuda()`): every draw then comes from the one generator a checkpoint saves, so a
 * run on a GPU resumes exactly too.
 */
export function permutationOn(n: number, device: string): Tensor {
  const drawn = randperm(n);
  if (device === "cpu") return drawn;
  const moved = drawn.toDevice(device);
  drawn.dispose();
  return moved;
}

/**
 * One process: a random permutation of the batch (the official CIFAR demo's
 * `_batch_shuffle_single_gpu`). It matters only with split BN, where each split's statistics then
 * mix samples whose queries sit in other splits.
 */
export const singleProcessShuffle: BatchShuffle = {
  shuffle(images) {
    const [n = 0] = images.shape;
    const order = permutationOn(n, images.device);
    const restore = order.argsort();
    const shuffled = images.indexSelect(0, order);
    order.dispose();
    return {
      shuffled,
      unshuffle: (keys) => {
        const inOrder = keys.indexSelect(0, restore);
        restore.dispose();
        return inOrder;
      },
    };
  },
};

/** No shuffle: keys are encoded in batch order. */
export const noShuffle: BatchShuffle = {
  shuffle(images) {
    return { shuffled: images, unshuffle: (keys) => keys };
  },
};

/** Gathers keys from every process before they are enqueued; one process has nothing to gather. */
export type KeyGather = (keys: Tensor) => Tensor;

export const singleProcessGather: KeyGather = (keys) => keys;
