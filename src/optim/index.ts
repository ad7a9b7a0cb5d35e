// Optimisation: SGD as torch.optim.SGD, and learning-rate schedules as pure functions of the epoch.
export {
  SGD,
  type SGDHyperParams,
  type SGDOptions,
  type SGDParamGroup,
  type SGDParamGroupSpec,
  type SGDParamState,
  type SGDStateDict,
  type SGDStateDictGroup,
} from "./sgd.js";
export { GradScaler, type GradScalerOptions, type GradScalerState } from "./grad-scaler.js";
export {
  constantSchedule,
  cosineSchedule,
  fractionalEpoch,
  setLr,
  stepSchedule,
  withWarmup,
  type CosineScheduleOptions,
  type HasParamGroups,
  type LrSchedule,
  type StepScheduleOptions,
  type WarmupOptions,
} from "./schedule.js";
