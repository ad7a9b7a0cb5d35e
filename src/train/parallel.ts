// What pretraining needs from a multi-process (data-parallel) run. src/dist implements it over a
// c10d process group; this layer only states it, so that src/train never imports src/dist.
import type { Sampler } from "../data/loader.js";
import type { BatchShuffle, KeyGather } from "../moco/index.js";
import type { Module } from "../nn/index.js";
import type { Tensor } from "../torch/index.js";

export interface DataParallel {
  readonly rank: number;
  readonly worldSize: number;
  /** Processes on this machine (they share its cores). */
  readonly localWorldSize: number;
  /** Shuffle BN across the ranks. */
  readonly shuffle: BatchShuffle;
  /** All ranks' keys, so that every queue stays identical. */
  readonly gatherKeys: KeyGather;
  /** This rank's share of the data: disjoint, reshuffled per epoch, the same length on every rank. */
  sampler(datasetLength: number, seed: number): Sampler;
  /** Makes every rank's parameters and buffers rank 0's. */
  broadcastState(module: Module<never[], unknown>): void;
  /** A function that averages these parameters' gradients over the ranks. */
  gradientAverager(params: readonly Tensor[]): () => void;
  /** Element-wise means over the ranks. */
  mean(values: readonly number[]): number[];
  /** True on every rank when any rank passes true. */
  any(flag: boolean): boolean;
  /** Every rank's numbers (the same count on each), in rank order. */
  gather(values: readonly number[]): number[][];
  /** Waits for every rank; rank 0 may spend a while on the kNN monitor and the checkpoint first. */
  barrier(): void;
}
