export { MoCo, addMlpHead, type EncoderFactory, type MoCoOptions, type MoCoOutput } from "./moco.js";
export {
  contrastiveLogits,
  dequeueAndEnqueue,
  momentumUpdate,
  noShuffle,
  permutationOn,
  queueNegatives,
  singleProcessGather,
  singleProcessShuffle,
  type BatchShuffle,
  type ContrastiveLogits,
  type KeyGather,
} from "./mechanisms.js";
export {
  MOCO_DEFAULTS,
  MoCoSettingsError,
  checkBatchAgainstSettings,
  checkMoCoSettings,
  type MoCoSettings,
} from "./settings.js";
export { PhaseClock, STEP_PHASES, type PhaseTimer, type StepPhase } from "./phases.js";
