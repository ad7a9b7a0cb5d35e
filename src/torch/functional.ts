// Neural-network functions with torch.nn.functional's names, arguments and defaults.
import { native } from "./native.js";
import { scope } from "./scope.js";
import { Tensor, checkInt, checkInts } from "./tensor.js";

type Pair = number | readonly [number, number];

function pair(value: Pair, what: string, op: string): number[] {
  if (typeof value === "number") return [checkInt(value, what, op), value];
  const list = checkInts(value, what, op);
  if (list.length !== 2) throw new RangeError(`${op}: ${what} must be a number or a pair, got [${list.join(", ")}]`);
  return list;
}

function tensorArg(value: unknown, what: string, op: string): Tensor {
  if (!(value instanceof Tensor)) throw new TypeError(`${op}: ${what} must be a Tensor`);
  return value;
}

function optionalTensor(value: Tensor | null | undefined, what: string, op: string) {
  return value == null ? null : tensorArg(value, what, op).handle;
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

export function conv2d(input: Tensor, weight: Tensor, bias: Tensor | null = null, options: Conv2dOptions = {}): Tensor {
  const op = "conv2d";
  return new Tensor(
    native.conv2d(
      tensorArg(input, "input", op).handle,
      tensorArg(weight, "weight", op).handle,
      optionalTensor(bias, "bias", op),
      pair(options.stride ?? 1, "stride", op),
      pair(options.padding ?? 0, "padding", op),
      pair(options.dilation ?? 1, "dilation", op),
      checkInt(options.groups ?? 1, "groups", op),
    ),
  );
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  /** Use batch statistics and update the running ones (PyTorch's `training`). */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/** F.batch_norm: running statistics are updated in place when training. */
export function batchNorm(
  input: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  const op = "batchNorm";
  const training = options.training ?? false;
  if (!training && (runningMean === null || runningVar === null)) {
    throw new TypeError(`${op}: running statistics are required when not training`);
  }
  return new Tensor(
    native.batchNorm(
      tensorArg(input, "input", op).handle,
      optionalTensor(options.weight, "weight", op),
      optionalTensor(options.bias, "bias", op),
      optionalTensor(runningMean, "runningMean", op),
      optionalTensor(runningVar, "runningVar", op),
      training,
      options.momentum ?? 0.1,
      options.eps ?? 1e-5,
    ),
  );
}

export function linear(input: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  const op = "linear";
  return new Tensor(
    native.linear(
      tensorArg(input, "input", op).handle,
      tensorArg(weight, "weight", op).handle,
      optionalTensor(bias, "bias", op),
    ),
  );
}

export function relu(input: Tensor): Tensor {
  return tensorArg(input, "input", "relu").relu();
}

export function softmax(input: Tensor, dim: number): Tensor {
  return tensorArg(input, "input", "softmax").softmax(dim);
}

export function logSoftmax(input: Tensor, dim: number): Tensor {
  return tensorArg(input, "input", "logSoftmax").logSoftmax(dim);
}

export interface MaxPool2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export function maxPool2d(input: Tensor, kernelSize: Pair, options: MaxPool2dOptions = {}): Tensor {
  const op = "maxPool2d";
  const kernel = pair(kernelSize, "kernelSize", op);
  return new Tensor(
    native.maxPool2d(
      tensorArg(input, "input", op).handle,
      kernel,
      options.stride === undefined ? kernel : pair(options.stride, "stride", op),
      pair(options.padding ?? 0, "padding", op),
      pair(options.dilation ?? 1, "dilation", op),
      options.ceilMode ?? false,
    ),
  );
}

export interface AvgPool2dOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

export function avgPool2d(input: Tensor, kernelSize: Pair, options: AvgPool2dOptions = {}): Tensor {
  const op = "avgPool2d";
  const kernel = pair(kernelSize, "kernelSize", op);
  return new Tensor(
    native.avgPool2d(
      tensorArg(input, "input", op).handle,
      kernel,
      options.stride === undefined ? kernel : pair(options.stride, "stride", op),
      pair(options.padding ?? 0, "padding", op),
      options.ceilMode ?? false,
      options.countIncludePad ?? true,
    ),
  );
}

export function adaptiveAvgPool2d(input: Tensor, outputSize: Pair): Tensor {
  const op = "adaptiveAvgPool2d";
  return new Tensor(native.adaptiveAvgPool2d(tensorArg(input, "input", op).handle, pair(outputSize, "outputSize", op)));
}

export type Reduction = "none" | "mean" | "sum";
const REDUCTIONS: Record<Reduction, number> = { none: 0, mean: 1, sum: 2 };

function reductionCode(reduction: Reduction, op: string): number {
  const code = REDUCTIONS[reduction];
  if (code === undefined)
    throw new TypeError(`${op}: reduction must be "none", "mean" or "sum", got ${String(reduction)}`);
  return code;
}

export interface CrossEntropyOptions {
  weight?: Tensor | null;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}

/** Cross-entropy of logits against class indices (int64) or class probabilities. */
export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = "crossEntropy";
  const smoothing = options.labelSmoothing ?? 0;
  if (!(smoothing >= 0 && smoothing <= 1))
    throw new RangeError(`${op}: labelSmoothing must be in [0, 1], got ${smoothing}`);
  return new Tensor(
    native.crossEntropy(
      tensorArg(input, "input", op).handle,
      tensorArg(target, "target", op).handle,
      optionalTensor(options.weight, "weight", op),
      reductionCode(options.reduction ?? "mean", op),
      checkInt(options.ignoreIndex ?? -100, "ignoreIndex", op),
      smoothing,
    ),
  );
}

export function nllLoss(
  input: Tensor,
  target: Tensor,
  options: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number } = {},
): Tensor {
  const op = "nllLoss";
  return new Tensor(
    native.nllLoss(
      tensorArg(input, "input", op).handle,
      tensorArg(target, "target", op).handle,
      optionalTensor(options.weight, "weight", op),
      reductionCode(options.reduction ?? "mean", op),
      checkInt(options.ignoreIndex ?? -100, "ignoreIndex", op),
    ),
  );
}

export function mseLoss(input: Tensor, target: Tensor, reduction: Reduction = "mean"): Tensor {
  const op = "mseLoss";
  return new Tensor(
    native.mseLoss(
      tensorArg(input, "input", op).handle,
      tensorArg(target, "target", op).handle,
      reductionCode(reduction, op),
    ),
  );
}

export function dropout(input: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return new Tensor(native.dropout(tensorArg(input, "input", "dropout").handle, p, training));
}

/** x / max(‖x‖_p, eps) along `dim`, as F.normalize. */
export function normalize(input: Tensor, options: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const x = tensorArg(input, "input", "normalize");
  const dim = checkInt(options.dim ?? 1, "dim", "normalize");
  return scope(() =>
    x.div(
      x
        .norm(options.p ?? 2, dim, true)
        .clampMin(options.eps ?? 1e-12)
        .expandAs(x),
    ),
  );
}

export interface InterpolateOptions {
  size?: Pair;
  scaleFactor?: number | readonly [number, number];
  mode?: "nearest" | "bilinear";
  alignCorners?: boolean;
  /**
   * Bilinear only: when shrinking, widen the triangle filter by the factor so that every input
   * pixel contributes (PyTorch's antialias=True; PIL's BILINEAR resize, within a level on uint8).
   * Enlarging axes are interpolated as without it.
   */
  antialias?: boolean;
}

/** F.interpolate for 4-d input; with scaleFactor the kernel uses the given scale, as PyTorch does. */
export function interpolate(input: Tensor, options: InterpolateOptions): Tensor {
  const op = "interpolate";
  const x = tensorArg(input, "input", op);
  if (x.ndim !== 4) throw new RangeError(`${op}: expects a 4-d (N, C, H, W) input, got ${x.ndim}-d`);
  const mode = options.mode ?? "nearest";
  if ((options.size === undefined) === (options.scaleFactor === undefined)) {
    throw new TypeError(`${op}: give exactly one of size and scaleFactor`);
  }
  let outH: number;
  let outW: number;
  let scales: [number | null, number | null] = [null, null];
  if (options.size !== undefined) {
    [outH, outW] = pair(options.size, "size", op) as [number, number];
  } else {
    const factor = options.scaleFactor ?? 1;
    const [sh, sw] = typeof factor === "number" ? [factor, factor] : factor;
    if (!(sh > 0 && sw > 0)) throw new RangeError(`${op}: scaleFactor must be positive`);
    outH = Math.floor((x.shape[2] ?? 0) * sh);
    outW = Math.floor((x.shape[3] ?? 0) * sw);
    scales = [sh, sw];
  }
  if (mode === "bilinear") {
    const args = [x.handle, outH, outW, options.alignCorners ?? false, ...scales] as const;
    return new Tensor(
      options.antialias === true ? native.upsampleBilinear2dAA(...args) : native.upsampleBilinear2d(...args),
    );
  }
  if (options.antialias === true) throw new TypeError(`${op}: antialias only applies to bilinear mode`);
  if (mode === "nearest") {
    if (options.alignCorners !== undefined) throw new TypeError(`${op}: alignCorners only applies to bilinear mode`);
    return new Tensor(native.upsampleNearest2d(x.handle, outH, outW, ...scales));
  }
  throw new TypeError(`${op}: mode must be "nearest" or "bilinear", got ${String(mode)}`);
}

const GRID_MODES = { bilinear: 0, nearest: 1, bicubic: 2 } as const;
const GRID_PADDING = { zeros: 0, border: 1, reflection: 2 } as const;

export interface GridSampleOptions {
  mode?: keyof typeof GRID_MODES;
  paddingMode?: keyof typeof GRID_PADDING;
  alignCorners?: boolean;
}

export function gridSample(input: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const op = "gridSample";
  const mode = GRID_MODES[options.mode ?? "bilinear"];
  const padding = GRID_PADDING[options.paddingMode ?? "zeros"];
  if (mode === undefined) throw new TypeError(`${op}: mode must be bilinear, nearest or bicubic`);
  if (padding === undefined) throw new TypeError(`${op}: paddingMode must be zeros, border or reflection`);
  return new Tensor(
    native.gridSample(
      tensorArg(input, "input", op).handle,
      tensorArg(grid, "grid", op).handle,
      mode,
      padding,
      options.alignCorners ?? false,
    ),
  );
}

/** Sampling grid for affine matrices theta (N, 2, 3) and an output size [N, C, H, W]. */
export function affineGrid(theta: Tensor, size: readonly number[], options: { alignCorners?: boolean } = {}): Tensor {
  const op = "affineGrid";
  return new Tensor(
    native.affineGrid(tensorArg(theta, "theta", op).handle, checkInts(size, "size", op), options.alignCorners ?? false),
  );
}

export interface PadOptions {
  mode?: "constant" | "reflect" | "replicate";
  value?: number;
}

/** F.pad: `pads` lists (before, after) pairs starting from the last dim. */
export function pad(input: Tensor, pads: readonly number[], options: PadOptions = {}): Tensor {
  const op = "pad";
  const x = tensorArg(input, "input", op);
  const p = checkInts(pads, "pads", op);
  if (p.length % 2 !== 0) throw new RangeError(`${op}: pads must have an even length, got ${p.length}`);
  const mode = options.mode ?? "constant";
  if (mode === "constant") return new Tensor(native.constantPad(x.handle, p, options.value ?? 0));
  if (options.value !== undefined) throw new TypeError(`${op}: value only applies to constant padding`);
  if (mode === "reflect") return new Tensor(native.reflectionPad(x.handle, p));
  if (mode === "replicate") return new Tensor(native.replicationPad(x.handle, p));
  throw new TypeError(`${op}: mode must be constant, reflect or replicate, got ${String(mode)}`);
}
