// The tensor layer: everything the rest of moco-ts (and its users) compute with.
export { DTYPES, isDType, type DType, type TypedArrayFor, type AnyTypedArray } from "./dtype.js";
export {
  Tensor,
  type Shape,
  type Scalar,
  type TensorOptions,
  type ValuesIndices,
  type BackwardOptions,
} from "./tensor.js";
export {
  arange,
  bernoulli,
  empty,
  eye,
  fromBytes,
  fromTypedArray,
  full,
  linspace,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randperm,
  tensor,
  zeros,
  zerosLike,
} from "./factories.js";
export { bincount, cat, einsum, matmul, stack, where } from "./ops.js";
export { enableGrad, isGradEnabled, noGrad } from "./autograd.js";
export { keep, scope } from "./scope.js";
export {
  autocast,
  getAutocastDtype,
  isAutocastEnabled,
  AutocastError,
  type AutocastDeviceType,
  type AutocastDType,
  type AutocastOptions,
} from "./autocast.js";
export {
  CHANNELS_LAST_SETTINGS,
  PRECISION_SETTINGS,
  PrecisionError,
  asFloat32,
  describePrecision,
  inLayout,
  parseCpuInfo,
  readCpuCapabilities,
  resolvePrecision,
  withPrecision,
  type ChannelsLastSetting,
  type CpuCapabilities,
  type PrecisionOptions,
  type PrecisionSetting,
  type ResolvedPrecision,
} from "./precision.js";
export { foreachAdd, foreachAdd_, foreachMul_, foreachNeg, gradsOf } from "./foreach.js";
export { type MemoryFormat } from "./memory-format.js";
export {
  buildInfo,
  getNumThreads,
  getRngState,
  liveTensors,
  manualSeed,
  setNumThreads,
  setThreadNumThreads,
  setRngState,
} from "./runtime.js";
export * as F from "./functional.js";
export * as cuda from "./cuda.js";
export { load, loadFromBuffer, save, saveToBuffer, type Saveable } from "./serialize/index.js";
