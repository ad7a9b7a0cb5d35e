export { MoCo, type ContrastiveLogits, type EncoderFactory, type MoCoOptions, type MoCoOutput } from "./moco.js";
export {
  dequeueAndEnqueue,
  momentumUpdate,
  noShuffle,
  singleProcessGather,
  singleProcessShuffle,
  type BatchShuffle,
  type KeyGather,
} from "./mechanisms.js";
export {
  MOCO_DEFAULTS,
  MoCoSettingsError,
  checkBatchAgainstSettings,
  checkMoCoSettings,
  type MoCoSettings,
} from "./settings.js";
