// Automatic mixed precision regions, like torch.autocast (PyTorch 1.13's torch/amp/autocast_mode.py).
// Inside a region, libtorch's own Autocast dispatch keys decide per op which dtype it runs in
// (convolutions and matrix products in the lower precision, reductions and losses in float32, ...):
// this file only switches that machinery on and off, saving and restoring the previous state around
// the region exactly as torch.autocast's __enter__/__exit__ do, including the nesting counter whose
// return to zero frees libtorch's cache of lower-precision weight copies.
import { MocoError } from "../errors.js";
import { DTYPES, dtypeFromCode, type DType } from "./dtype.js";
import { native } from "./native.js";

export type AutocastDeviceType = "cpu" | "cuda";
export type AutocastDType = "bfloat16" | "float16";

export interface AutocastOptions {
  /** Whose ops are autocast: tensors on the CPU, or on CUDA devices. */
  deviceType: AutocastDeviceType;
  /** The lower precision; default bfloat16 on the CPU and float16 on CUDA, as PyTorch's. */
  dtype?: AutocastDType;
  /** false turns autocast off for the region (e.g. a float32 island inside an autocast region). Default true. */
  enabled?: boolean;
  /** Reuse a weight's lower-precision copy within the region (PyTorch's cache_enabled). Default true. */
  cacheEnabled?: boolean;
}

/** An autocast setting libtorch cannot honour (e.g. float16 on the CPU with libtorch 1.x). */
export class AutocastError extends MocoError {
  override name = "AutocastError";
  constructor(message: string) {
    super("ERR_AUTOCAST", message);
  }
}

const DEFAULT_DTYPE: Record<AutocastDeviceType, AutocastDType> = { cpu: "bfloat16", cuda: "float16" };

function libtorchMajor(): number {
  return Number.parseInt(native.buildInfo().torchVersion, 10);
}

function checkOptions(options: AutocastOptions): Required<AutocastOptions> {
  const op = "autocast";
  if (typeof options !== "object" || options === null) {
    throw new TypeError(`${op}: options must be an object like { deviceType: "cpu", dtype: "bfloat16" }`);
  }
  const { deviceType } = options;
  if (deviceType !== "cpu" && deviceType !== "cuda") {
    throw new TypeError(`${op}: deviceType must be "cpu" or "cuda", got ${String(deviceType)}`);
  }
  const dtype = options.dtype ?? DEFAULT_DTYPE[deviceType];
  if (dtype !== "bfloat16" && dtype !== "float16") {
    throw new TypeError(`${op}: dtype must be "bfloat16" or "float16", got ${String(dtype)}`);
  }
  const enabled = options.enabled ?? true;
  const cacheEnabled = options.cacheEnabled ?? true;
  if (typeof enabled !== "boolean") throw new TypeError(`${op}: enabled must be a boolean, got ${String(enabled)}`);
  if (typeof cacheEnabled !== "boolean") {
    throw new TypeError(`${op}: cacheEnabled must be a boolean, got ${String(cacheEnabled)}`);
  }
  // PyTorch 1.13 refuses the same (with a warning, then runs without autocast): its CPU autocast
  // kernels know only bfloat16, and float16 convolutions do not exist on the CPU there.
  if (enabled && deviceType === "cpu" && dtype === "float16" && libtorchMajor() < 2) {
    throw new AutocastError(
      `${op}: CPU autocast in libtorch ${native.buildInfo().torchVersion} supports only bfloat16, got float16`,
    );
  }
  return { deviceType, dtype, enabled, cacheEnabled };
}

function isPromiseLike(value: unknown): boolean {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

/**
 * Runs `fn` with autocast set as `options` say, then restores the previous setting, also when `fn`
 * throws. Regions nest; leaving the outermost one frees libtorch's cache of lower-precision copies.
 * Run the backward pass outside the region (its ops then use the dtypes the forward pass chose, and
 * float32 parameters get float32 gradients). `fn` must be synchronous: autocast state belongs to the
 * thread, and an await would let other work run under it.
 */
export function autocast<T>(options: AutocastOptions, fn: () => T): T {
  if (typeof fn !== "function") {
    throw new TypeError(
      `autocast: expected a synchronous function, got ${isPromiseLike(fn) ? "a Promise" : typeof fn}`,
    );
  }
  const { deviceType, dtype, enabled, cacheEnabled } = checkOptions(options);
  const previousCache = native.isAutocastCacheEnabled();
  const previous = native.autocastState(deviceType);
  native.setAutocastState(deviceType, enabled, DTYPES[dtype].code);
  native.autocastIncrementNesting();
  native.setAutocastCacheEnabled(cacheEnabled);
  let result: T;
  try {
    result = fn();
  } finally {
    if (native.autocastDecrementNesting() === 0) native.autocastClearCache();
    native.setAutocastState(deviceType, previous.enabled, previous.dtype);
    native.setAutocastCacheEnabled(previousCache);
  }
  if (isPromiseLike(result)) {
    throw new TypeError(
      "autocast: the function returned a Promise; autocast regions are synchronous (await outside the region)",
    );
  }
  return result;
}

/** Whether ops on `deviceType` tensors are autocast now (torch.is_autocast_enabled / is_autocast_cpu_enabled). */
export function isAutocastEnabled(deviceType: AutocastDeviceType = "cuda"): boolean {
  if (deviceType !== "cpu" && deviceType !== "cuda") {
    throw new TypeError(`isAutocastEnabled: deviceType must be "cpu" or "cuda", got ${String(deviceType)}`);
  }
  return native.autocastState(deviceType).enabled;
}

/** The lower precision autocast uses on `deviceType` (torch.get_autocast_cpu_dtype / get_autocast_gpu_dtype). */
export function getAutocastDtype(deviceType: AutocastDeviceType): DType {
  if (deviceType !== "cpu" && deviceType !== "cuda") {
    throw new TypeError(`getAutocastDtype: deviceType must be "cpu" or "cuda", got ${String(deviceType)}`);
  }
  return dtypeFromCode(native.autocastState(deviceType).dtype);
}
