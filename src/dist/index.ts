// Distributed data-parallel MoCo on c10d: process groups from env://, parameter broadcast, gradient
// averaging, the per-rank sampler, and MoCo's cross-rank key gather and shuffle.
export { freePort, portIsFree } from "./free-port.js";
export { DistEnvError, isDistributedEnv, readDistEnv, type DistEnv } from "./env.js";
export { initDistributed, type InitOptions } from "./init.js";
export {
  DEFAULT_TIMEOUT_MS,
  DistributedError,
  ProcessGroup,
  type Backend,
  type CollectiveOptions,
  type ProcessGroupOptions,
  type ReduceOp,
} from "./process-group.js";
export { DistributedSampler, type DistributedSamplerOptions } from "./sampler.js";
export {
  DEFAULT_BUCKET_BYTES,
  GradientAverager,
  broadcastState,
  dataParallel,
  type GradientAveragerOptions,
} from "./data-parallel.js";
export { crossRankKeyGather, crossRankShuffle, gatherCat } from "./moco.js";
