// Data parallelism as DistributedDataParallel does it: every rank starts from rank 0's parameters
// and buffers, and after each backward pass the gradients are averaged over the ranks, flattened
// into buckets of about 25 MB so that a few large all-reduces replace one per parameter.
import type { Module } from "../nn/index.js";
import { DTYPES, cat, fromTypedArray, noGrad, scope, zerosLike, type DType, type Tensor } from "../torch/index.js";
import type { DataParallel } from "../train/parallel.js";
import { crossRankKeyGather, crossRankShuffle } from "./moco.js";
import type { ProcessGroup } from "./process-group.js";
import { DistributedSampler } from "./sampler.js";

/** DistributedDataParallel's bucket_cap_mb default. */
export const DEFAULT_BUCKET_BYTES = 25 * 2 ** 20;

/** Overwrites every parameter and buffer with the root rank's (modules built alike on every rank). */
export function broadcastState(group: ProcessGroup, module: Module<never[], unknown>, root = 0): void {
  noGrad(() => {
    for (const [, tensor] of [...module.namedParameters(), ...module.namedBuffers()]) group.broadcast(tensor, root);
  });
}

/** Parameters grouped for one all-reduce each: same dtype, at most `bucketBytes` together (or one large tensor). */
function makeBuckets(params: readonly Tensor[], bucketBytes: number): Tensor[][] {
  const buckets: Tensor[][] = [];
  const open = new Map<DType, { params: Tensor[]; bytes: number }>();
  for (const p of params) {
    const bytes = p.numel * DTYPES[p.dtype].bytes;
    let bucket = open.get(p.dtype);
    if (bucket !== undefined && bucket.bytes + bytes > bucketBytes) {
      buckets.push(bucket.params);
      bucket = undefined;
    }
    if (bucket === undefined) {
      bucket = { params: [], bytes: 0 };
      open.set(p.dtype, bucket);
    }
    bucket.params.push(p);
    bucket.bytes += bytes;
  }
  for (const bucket of open.values()) if (bucket.params.length > 0) buckets.push(bucket.params);
  return buckets;
}

export interface GradientAveragerOptions {
  /** Bytes per bucket (default DEFAULT_BUCKET_BYTES). */
  bucketBytes?: number;
}

/** Averages the gradients of a fixed list of parameters over the ranks, bucket by bucket. */
export class GradientAverager {
  readonly group: ProcessGroup;
  readonly buckets: readonly (readonly Tensor[])[];

  constructor(group: ProcessGroup, params: readonly Tensor[], options: GradientAveragerOptions = {}) {
    const bucketBytes = options.bucketBytes ?? DEFAULT_BUCKET_BYTES;
    if (!Number.isSafeInteger(bucketBytes) || bucketBytes < 1) {
      throw new RangeError(`GradientAverager: bucketBytes must be a positive integer, got ${String(bucketBytes)}`);
    }
    this.group = group;
    // Frozen tensors (MoCo's key encoder) take no gradient and no part, as in DistributedDataParallel.
    this.buckets = makeBuckets(
      params.filter((p) => p.requiresGrad),
      bucketBytes,
    );
  }

  /**
   * Replaces each gradient by its mean over the ranks. A parameter without a gradient counts as a
   * zero gradient and gets the mean, so that every rank applies the same update.
   */
  average(): void {
    if (this.group.worldSize === 1) return;
    noGrad(() => {
      for (const bucket of this.buckets) {
        scope(() => {
          const grads = bucket.map((p) => p.grad);
          const flat = cat(bucket.map((p, i) => (grads[i] ?? zerosLike(p)).reshape([-1])));
          this.group.allReduce(flat, "sum");
          flat.div_(this.group.worldSize);
          let offset = 0;
          bucket.forEach((p, i) => {
            const mean = flat.narrow(0, offset, p.numel).view(p.shape);
            offset += p.numel;
            const grad = grads[i];
            if (grad === null || grad === undefined) p.grad = mean.clone();
            else grad.copy_(mean);
          });
        });
      }
    });
  }
}

/** The DataParallel of src/train over a process group: what `moco pretrain` uses in a distributed run. */
export function dataParallel(group: ProcessGroup, options: { localWorldSize?: number } = {}): DataParallel {
  const numbers = (values: readonly number[]) => fromTypedArray(Float64Array.from(values), [values.length], "float64");
  return {
    rank: group.rank,
    worldSize: group.worldSize,
    localWorldSize: options.localWorldSize ?? 1,
    shuffle: crossRankShuffle(group),
    gatherKeys: crossRankKeyGather(group),
    sampler: (datasetLength, seed) =>
      new DistributedSampler(datasetLength, { rank: group.rank, worldSize: group.worldSize, seed }),
    broadcastState: (module) => broadcastState(group, module),
    gradientAverager: (params) => {
      const averager = new GradientAverager(group, params);
      return () => averager.average();
    },
    mean: (values) =>
      scope(() => {
        const t = numbers(values);
        group.allReduce(t, "avg");
        return t.toArray();
      }),
    any: (flag) =>
      scope(() => {
        const t = numbers([flag ? 1 : 0]);
        group.allReduce(t, "max");
        return t.item() > 0;
      }),
    gather: (values) => scope(() => group.allGather(numbers(values)).map((t) => t.toArray())),
    // The kNN monitor over a large bank can take several collective timeouts on rank 0.
    barrier: () => group.barrier({ timeoutMs: group.timeoutMs * 4 }),
  };
}
