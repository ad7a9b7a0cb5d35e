// Loads the libtorch addon and states the C++ surface's types. Internal: everything public goes
// through Tensor and the functions of src/torch.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { TorchError } from "../errors.js";

declare const handleBrand: unique symbol;
/** An opaque reference to one at::Tensor, owned by exactly one Tensor object. */
export type NativeHandle = { readonly [handleBrand]: true };

type H = NativeHandle;
type Scalar = number | boolean;
type Ints = readonly number[];
type Pair = [H, H];
type Bin = (self: H, other: H | Scalar) => H;
type Un = (self: H) => H;
type InPlace = (self: H, other: H | Scalar) => void;

export interface NativeBinding {
  // args.cc: the class every native error is constructed as, new C(op, message)
  setErrorClass(ctor: (new (op: string, message: string) => Error) | null): void;
  // creation.cc
  empty(shape: Ints, dtype: number | null, device: string | null): H;
  zeros(shape: Ints, dtype: number | null, device: string | null): H;
  ones(shape: Ints, dtype: number | null, device: string | null): H;
  full(shape: Ints, value: Scalar, dtype: number | null, device: string | null): H;
  arange(start: number, end: number, step: number, dtype: number | null, device: string | null): H;
  linspace(start: number, end: number, steps: number, dtype: number | null, device: string | null): H;
  rand(shape: Ints, dtype: number | null, device: string | null): H;
  randn(shape: Ints, dtype: number | null, device: string | null): H;
  randint(low: number, high: number, shape: Ints, dtype: number | null, device: string | null): H;
  randperm(n: number, dtype: number | null, device: string | null): H;
  eye(n: number, m: number, dtype: number | null, device: string | null): H;
  bernoulli: Un;
  uniform_(self: H, low: number, high: number): void;
  normal_(self: H, mean: number, std: number): void;
  fromBytes(bytes: Uint8Array, dtype: number, shape: Ints): H;
  toBytes(self: H): ArrayBuffer;
  clone: Un;
  contiguous(self: H, memoryFormat: string | null): H;
  suggestMemoryFormat(self: H): "contiguous" | "channelsLast" | "channelsLast3d";
  toDtype(self: H, dtype: number): H;
  toDevice(self: H, device: string, nonBlocking: boolean | null): H;
  shape(self: H): number[];
  strides(self: H): number[];
  storageOffset(self: H): number;
  dtype(self: H): number;
  device(self: H): string;
  isContiguous(self: H, memoryFormat: string | null): boolean;
  storageId(self: H): string;
  item(self: H): number | boolean;
  // shape.cc
  view(self: H, shape: Ints): H;
  reshape(self: H, shape: Ints): H;
  flatten(self: H, start: number, end: number): H;
  squeeze(self: H, dim: number | null): H;
  unsqueeze(self: H, dim: number): H;
  permute(self: H, dims: Ints): H;
  transpose(self: H, d0: number, d1: number): H;
  expand(self: H, sizes: Ints): H;
  repeat(self: H, sizes: Ints): H;
  narrow(self: H, dim: number, start: number, length: number): H;
  slice(self: H, dim: number, start: number | null, end: number | null, step: number): H;
  select(self: H, dim: number, index: number): H;
  asStrided(self: H, size: Ints, stride: Ints, offset: number): H;
  indexSelect(self: H, dim: number, index: H): H;
  gather(self: H, dim: number, index: H): H;
  scatter(self: H, dim: number, index: H, src: H | Scalar): H;
  indexCopy(self: H, dim: number, index: H, source: H): H;
  indexCopy_(self: H, dim: number, index: H, source: H): void;
  scatterAdd(self: H, dim: number, index: H, src: H): H;
  maskedFill(self: H, mask: H, value: H | Scalar): H;
  maskedSelect(self: H, mask: H): H;
  where(condition: H, x: H | Scalar, y: H | Scalar): H;
  cat(tensors: readonly H[], dim: number): H;
  stack(tensors: readonly H[], dim: number): H;
  split(self: H, sizes: number | Ints, dim: number): H[];
  chunk(self: H, chunks: number, dim: number): H[];
  flip(self: H, dims: Ints): H;
  roll(self: H, shifts: Ints, dims: Ints): H;
  tril(self: H, diagonal: number): H;
  triu(self: H, diagonal: number): H;
  nonzero: Un;
  oneHot(self: H, classes: number): H;
  // math.cc
  add(self: H, other: H | Scalar, alpha: number | null): H;
  sub(self: H, other: H | Scalar, alpha: number | null): H;
  mul: Bin;
  div: Bin;
  pow: Bin;
  remainder: Bin;
  maximum: Bin;
  minimum: Bin;
  neg: Un;
  sqrt: Un;
  rsqrt: Un;
  exp: Un;
  log: Un;
  abs: Un;
  floor: Un;
  ceil: Un;
  round: Un;
  sin: Un;
  cos: Un;
  tanh: Un;
  sigmoid: Un;
  sign: Un;
  reciprocal: Un;
  isnan: Un;
  isfinite: Un;
  clamp(self: H, min: number | null, max: number | null): H;
  eq: Bin;
  ne: Bin;
  lt: Bin;
  le: Bin;
  gt: Bin;
  ge: Bin;
  logicalAnd: Bin;
  logicalOr: Bin;
  logicalXor: Bin;
  logicalNot: Un;
  allclose(a: H, b: H, rtol: number, atol: number, equalNan: boolean): boolean;
  equal(a: H, b: H): boolean;
  matmul: Bin;
  mm: Bin;
  bmm: Bin;
  einsum(equation: string, operands: readonly H[]): H;
  outer: Bin;
  add_(self: H, other: H | Scalar, alpha: number | null): void;
  sub_(self: H, other: H | Scalar, alpha: number | null): void;
  mul_: InPlace;
  div_: InPlace;
  addcmul_(self: H, t1: H, t2: H, value: number): void;
  lerp_(self: H, end: H, weight: number): void;
  copy_(self: H, src: H): void;
  zero_(self: H): void;
  fill_(self: H, value: Scalar): void;
  clamp_(self: H, min: number | null, max: number | null): void;
  relu_(self: H): void;
  maskedFill_(self: H, mask: H, value: Scalar): void;
  // reduce.cc
  sum(self: H, dims: Ints | null, keepdim: boolean, dtype: number | null): H;
  mean(self: H, dims: Ints | null, keepdim: boolean, dtype: number | null): H;
  prod(self: H, dim: number | null, keepdim: boolean): H;
  std(self: H, dims: Ints | null, unbiased: boolean, keepdim: boolean): H;
  var(self: H, dims: Ints | null, unbiased: boolean, keepdim: boolean): H;
  norm(self: H, p: number, dims: Ints | null, keepdim: boolean): H;
  logsumexp(self: H, dims: Ints, keepdim: boolean): H;
  cumsum(self: H, dim: number): H;
  maxAll: Un;
  minAll: Un;
  maxDim(self: H, dim: number, keepdim: boolean): Pair;
  minDim(self: H, dim: number, keepdim: boolean): Pair;
  argmax(self: H, dim: number | null, keepdim: boolean): H;
  argmin(self: H, dim: number | null, keepdim: boolean): H;
  topk(self: H, k: number, dim: number, largest: boolean, sorted: boolean): Pair;
  sort(self: H, dim: number, descending: boolean): Pair;
  argsort(self: H, dim: number, descending: boolean): H;
  all(self: H, dim: number | null, keepdim: boolean): H;
  any(self: H, dim: number | null, keepdim: boolean): H;
  bincount(self: H, weights: H | null, minlength: number): H;
  // nn.cc
  conv2d(input: H, weight: H, bias: H | null, stride: Ints, padding: Ints, dilation: Ints, groups: number): H;
  batchNorm(
    input: H,
    weight: H | null,
    bias: H | null,
    runningMean: H | null,
    runningVar: H | null,
    training: boolean,
    momentum: number,
    eps: number,
  ): H;
  linear(input: H, weight: H, bias: H | null): H;
  relu: Un;
  leakyRelu(self: H, slope: number): H;
  gelu: Un;
  maxPool2d(input: H, kernel: Ints, stride: Ints, padding: Ints, dilation: Ints, ceilMode: boolean): H;
  avgPool2d(input: H, kernel: Ints, stride: Ints, padding: Ints, ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(input: H, size: Ints): H;
  softmax(self: H, dim: number): H;
  logSoftmax(self: H, dim: number): H;
  crossEntropy(
    input: H,
    target: H,
    weight: H | null,
    reduction: number,
    ignoreIndex: number,
    labelSmoothing: number,
  ): H;
  nllLoss(input: H, target: H, weight: H | null, reduction: number, ignoreIndex: number): H;
  mseLoss(input: H, target: H, reduction: number): H;
  dropout(input: H, p: number, train: boolean): H;
  upsampleBilinear2d(
    input: H,
    outH: number,
    outW: number,
    alignCorners: boolean,
    scaleH: number | null,
    scaleW: number | null,
  ): H;
  upsampleBilinear2dAA(
    input: H,
    outH: number,
    outW: number,
    alignCorners: boolean,
    scaleH: number | null,
    scaleW: number | null,
  ): H;
  upsampleNearest2d(input: H, outH: number, outW: number, scaleH: number | null, scaleW: number | null): H;
  gridSample(input: H, grid: H, mode: number, padding: number, alignCorners: boolean): H;
  affineGrid(theta: H, size: Ints, alignCorners: boolean): H;
  constantPad(input: H, pads: Ints, value: number): H;
  reflectionPad(input: H, pads: Ints): H;
  replicationPad(input: H, pads: Ints): H;
  // autograd.cc
  setGradEnabled(enabled: boolean): void;
  isGradEnabled(): boolean;
  requiresGrad(self: H): boolean;
  setRequiresGrad(self: H, flag: boolean): void;
  isLeaf(self: H): boolean;
  retainGrad(self: H): void;
  grad(self: H): H | null;
  setGrad(self: H, grad: H | null): void;
  backward(self: H, gradient: H | null, retainGraph: boolean | null, createGraph: boolean): void;
  setData(self: H, other: H): void;
  detach: Un;
  gradFnName(self: H): string | null;
  version(self: H): number;
  // runtime.cc
  manualSeed(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  setThreadNumThreads(n: number): boolean;
  dispose(self: H): void;
  /** Reports the tensor's bytes to V8 as external memory (for tensors left to the GC safety net). */
  accountExternalMemory(self: H): void;
  isDisposed(self: H): boolean;
  liveTensors(): number;
  buildInfo(): {
    torchVersion: string;
    cudaAvailable: boolean;
    cudaDeviceCount: number;
    cudnnAvailable: boolean;
    parallelInfo: string;
  };
  // cuda.cc: torch.cuda / torch.backends.cudnn switches, pinned memory, GradScaler's fused ops
  cudaDeviceCount(): number;
  cudaSynchronize(deviceIndex: number | null): void;
  cudnnIsAvailable(): boolean;
  cudnnBenchmark(): boolean;
  setCudnnBenchmark(enabled: boolean): void;
  setAllowTf32(cudnn: boolean, matmul: boolean): void;
  allowTf32(): { cudnn: boolean; matmul: boolean };
  pinMemory(self: H): H;
  isPinned(self: H): boolean;
  ampUnscale(grads: readonly H[], foundInf: H, invScale: H): void;
  ampUpdateScale(
    scale: H,
    growthTracker: H,
    foundInf: H,
    growthFactor: number,
    backoffFactor: number,
    growthInterval: number,
  ): void;
  // autocast.cc: the state behind torch.autocast, per device type; dtype as a scalar type code
  autocastState(deviceType: "cpu" | "cuda"): { enabled: boolean; dtype: number };
  setAutocastState(deviceType: "cpu" | "cuda", enabled: boolean, dtype: number): void;
  autocastIncrementNesting(): number;
  autocastDecrementNesting(): number;
  autocastClearCache(): void;
  isAutocastCacheEnabled(): boolean;
  setAutocastCacheEnabled(enabled: boolean): void;
  // foreach.cc: one call over lists of tensors
  foreachMul_(self: readonly H[], scalar: Scalar): void;
  foreachAdd_(self: readonly H[], other: readonly H[], alpha: Scalar): void;
  foreachAdd(self: readonly H[], other: readonly H[], alpha: Scalar): H[];
  foreachNeg(self: readonly H[]): H[];
  grads(self: readonly H[]): (H | null)[];
  // dist.cc: process groups are ids; collectives block for at most timeoutMs
  distInit(
    host: string,
    port: number,
    rank: number,
    worldSize: number,
    timeoutMs: number,
    backend: string,
    deviceKind: "interface" | "hostname" | "default",
    deviceName: string,
  ): Promise<number>;
  distAllReduce(group: number, self: H, op: number, timeoutMs: number): void;
  distAllGather(group: number, self: H, timeoutMs: number): H[];
  distBroadcast(group: number, self: H, root: number, timeoutMs: number): void;
  distBarrier(group: number, timeoutMs: number): void;
  distDispose(group: number): void;
  distBackends(): string[];
}

function loadBinding(): NativeBinding {
  const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
  // Both the source tree (src/torch) and the compiled tree (dist/src/torch) are supported.
  const candidates = [
    join(root, "native", "build", "Release", "moco_native.node"),
    join(root, "..", "native", "build", "Release", "moco_native.node"),
  ];
  const found = candidates.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      "moco-ts: the native addon is not built. Looked for:\n  " +
        candidates.join("\n  ") +
        "\nBuild it with `npm run build:native` (needs `sudo apt-get install -y libtorch-dev libopenblas0-pthread cmake`," +
        " or LIBTORCH=/path/to/libtorch).",
    );
  }
  const require = createRequire(import.meta.url);
  try {
    return require(found) as NativeBinding;
  } catch (cause) {
    throw new Error(
      `moco-ts: could not load ${found}: ${(cause as Error).message}\n` +
        "If libtorch was upgraded or moved, rebuild with `npm run build:native`.",
      { cause },
    );
  }
}

export const native: NativeBinding = loadBinding();
// Once, here: every op's error then arrives as a TorchError (op, code) with no wrapper per call.
if (typeof native.setErrorClass !== "function")
  throw new Error("moco-ts: the native addon is older than the sources; rebuild it with `npm run build:native`.");
native.setErrorClass(TorchError);
