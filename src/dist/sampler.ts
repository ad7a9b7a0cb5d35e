// torch.utils.data.DistributedSampler for our DataLoader: each rank visits a disjoint share of the
// data, reshuffled per epoch from the seed, every rank the same number of images (the tail that
// does not divide evenly is dropped), so every rank runs the same number of steps.
import type { Sampler } from "../data/loader.js";
import { Random } from "../data/random.js";

export interface DistributedSamplerOptions {
  rank: number;
  worldSize: number;
  /** Default true. */
  shuffle?: boolean;
  /** The same on every rank. Default 0. */
  seed?: number;
}

export class DistributedSampler implements Sampler {
  readonly datasetLength: number;
  readonly rank: number;
  readonly worldSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly length: number;

  constructor(datasetLength: number, options: DistributedSamplerOptions) {
    const op = "DistributedSampler";
    const { rank, worldSize } = options;
    if (!Number.isSafeInteger(datasetLength) || datasetLength < 0) {
      throw new RangeError(`${op}: datasetLength must be a non-negative integer, got ${String(datasetLength)}`);
    }
    if (!Number.isSafeInteger(worldSize) || worldSize < 1) {
      throw new RangeError(`${op}: worldSize must be a positive integer, got ${String(worldSize)}`);
    }
    if (!Number.isSafeInteger(rank) || rank < 0 || rank >= worldSize) {
      throw new RangeError(`${op}: rank must be an integer in [0, ${worldSize}), got ${String(rank)}`);
    }
    this.datasetLength = datasetLength;
    this.rank = rank;
    this.worldSize = worldSize;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    new Random(this.seed); // validates the seed
    this.length = Math.floor(datasetLength / worldSize);
  }

  /**
   * Rank r takes positions r, r + W, r + 2W, … of the epoch's permutation (as PyTorch's sampler), so
   * batch s of all ranks together holds the images of batch s of one process with a W× batch.
   */
  order(epoch: number): Int32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0) {
      throw new RangeError(`DistributedSampler: epoch must be a non-negative integer, got ${String(epoch)}`);
    }
    const n = this.datasetLength;
    const all = this.shuffle ? new Random(this.seed, epoch).permutation(n) : Int32Array.from({ length: n }, (_, i) => i);
    const mine = new Int32Array(this.length);
    for (let i = 0; i < this.length; i++) mine[i] = all[this.rank + i * this.worldSize] as number;
    return mine;
  }
}
