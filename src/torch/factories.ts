// Creating tensors: from JS data, filled, ranges and random. Random factories draw from the global
// generator (see random.ts), like PyTorch's.
import { DTYPES, checkDType, dtypeOfTypedArray, type AnyTypedArray, type DType } from "./dtype.js";
import { native } from "./native.js";
import { Tensor, checkInt, sizesArg, type Shape, type TensorOptions } from "./tensor.js";

function dtypeCode(options: TensorOptions, op: string): number | null {
  return options.dtype === undefined ? null : DTYPES[checkDType(options.dtype, op)].code;
}

function deviceArg(options: TensorOptions): string | null {
  return options.device ?? null;
}

function finish(tensor: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad === true) tensor.requiresGrad_(true);
  return tensor;
}

function shapeArg(shape: number | Shape, op: string): number[] {
  const dims = sizesArg([shape], "shape", op);
  if (dims.some((d) => d < 0)) throw new RangeError(`${op}: sizes must be non-negative, got [${dims.join(", ")}]`);
  return dims;
}

export function empty(shape: number | Shape, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(native.empty(shapeArg(shape, "empty"), dtypeCode(options, "empty"), deviceArg(options))),
    options,
  );
}

export function zeros(shape: number | Shape, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(native.zeros(shapeArg(shape, "zeros"), dtypeCode(options, "zeros"), deviceArg(options))),
    options,
  );
}

export function ones(shape: number | Shape, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(native.ones(shapeArg(shape, "ones"), dtypeCode(options, "ones"), deviceArg(options))),
    options,
  );
}

export function full(shape: number | Shape, value: number | boolean, options: TensorOptions = {}): Tensor {
  if (typeof value !== "number" && typeof value !== "boolean") throw new TypeError("full: value must be a number");
  return finish(
    new Tensor(native.full(shapeArg(shape, "full"), value, dtypeCode(options, "full"), deviceArg(options))),
    options,
  );
}

export function zerosLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return zeros(like.shape, { dtype: like.dtype, device: like.device, ...options });
}

export function onesLike(like: Tensor, options: TensorOptions = {}): Tensor {
  return ones(like.shape, { dtype: like.dtype, device: like.device, ...options });
}

/** [0, end) or [start, end) by step, as torch.arange (int64 for integer arguments). */
export function arange(startOrEnd: number, end?: number, step = 1, options: TensorOptions = {}): Tensor {
  const [lo, hi] = end === undefined ? [0, startOrEnd] : [startOrEnd, end];
  if (step === 0) throw new RangeError("arange: step must be non-zero");
  return finish(new Tensor(native.arange(lo, hi, step, dtypeCode(options, "arange"), deviceArg(options))), options);
}

export function linspace(start: number, end: number, steps: number, options: TensorOptions = {}): Tensor {
  checkInt(steps, "steps", "linspace");
  return finish(
    new Tensor(native.linspace(start, end, steps, dtypeCode(options, "linspace"), deviceArg(options))),
    options,
  );
}

export function eye(n: number, m: number = n, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(
      native.eye(checkInt(n, "n", "eye"), checkInt(m, "m", "eye"), dtypeCode(options, "eye"), deviceArg(options)),
    ),
    options,
  );
}

/** Uniform on [0, 1). */
export function rand(shape: number | Shape, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(native.rand(shapeArg(shape, "rand"), dtypeCode(options, "rand"), deviceArg(options))),
    options,
  );
}

/** Standard normal. */
export function randn(shape: number | Shape, options: TensorOptions = {}): Tensor {
  return finish(
    new Tensor(native.randn(shapeArg(shape, "randn"), dtypeCode(options, "randn"), deviceArg(options))),
    options,
  );
}

/** Integers uniform on [low, high), int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number | Shape, options: TensorOptions = {}): Tensor {
  checkInt(low, "low", "randint");
  checkInt(high, "high", "randint");
  if (high <= low) throw new RangeError(`randint: high (${high}) must be greater than low (${low})`);
  return finish(
    // libtorch's C++ randint defaults to the default float dtype; Python's (and ours) to int64.
    new Tensor(
      native.randint(
        low,
        high,
        shapeArg(shape, "randint"),
        dtypeCode(options, "randint") ?? DTYPES.int64.code,
        deviceArg(options),
      ),
    ),
    options,
  );
}

/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, options: TensorOptions = {}): Tensor {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`randperm: n must be a non-negative integer, got ${n}`);
  return finish(new Tensor(native.randperm(n, dtypeCode(options, "randperm"), deviceArg(options))), options);
}

/** 1 with probability p (elementwise), as torch.bernoulli. */
export function bernoulli(probabilities: Tensor): Tensor {
  return new Tensor(native.bernoulli(probabilities.handle));
}

/** Copies raw little-endian element bytes into a new CPU tensor. */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: Shape): Tensor {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("fromBytes: bytes must be a Uint8Array");
  return new Tensor(native.fromBytes(bytes, DTYPES[checkDType(dtype, "fromBytes")].code, shapeArg(shape, "fromBytes")));
}

/** Copies a typed array into a new tensor of the given shape (default: 1-d). */
export function fromTypedArray(data: AnyTypedArray, shape?: Shape, dtype?: DType): Tensor {
  const type = dtype ?? dtypeOfTypedArray(data);
  const dims = shape ?? [data.length];
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return fromBytes(bytes, type, dims);
}

type Nested = number | boolean | readonly Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let level: Nested = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = level[0] as Nested;
    if (level === undefined) break;
  }
  return shape;
}

function flattenChecked(
  data: Nested,
  shape: readonly number[],
  depth: number,
  out: (number | boolean)[],
  op: string,
): void {
  if (depth === shape.length) {
    if (typeof data !== "number" && typeof data !== "boolean") {
      throw new TypeError(`${op}: expected numbers or booleans at depth ${depth}, got ${typeof data}`);
    }
    out.push(data);
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new RangeError(`${op}: ragged nested array: expected length ${shape[depth]} at depth ${depth}`);
  }
  for (const item of data) flattenChecked(item as Nested, shape, depth + 1, out, op);
}

/**
 * A tensor from (nested) JS numbers or booleans, as torch.tensor: float32 if any value is
 * fractional, int64 for integers, bool for booleans, unless a dtype is given.
 */
export function tensor(data: Nested | AnyTypedArray, options: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    return finish(fromTypedArray(data, undefined, options.dtype), options);
  }
  const shape = inferShape(data);
  const flat: (number | boolean)[] = [];
  flattenChecked(data, shape, 0, flat, "tensor");
  const inferred: DType = flat.every((v) => typeof v === "boolean")
    ? flat.length > 0
      ? "bool"
      : "float32"
    : flat.every((v) => typeof v === "number" && Number.isInteger(v))
      ? "int64"
      : "float32";
  const dtype = options.dtype ?? inferred;
  const numbers = flat.map(Number);
  let result: Tensor;
  if (dtype === "int64") {
    result = fromTypedArray(
      BigInt64Array.from(numbers, (v) => BigInt(Math.trunc(v))),
      shape,
      "int64",
    );
  } else {
    // Go through float64 so that every value is exact before libtorch converts it.
    const staged = fromTypedArray(Float64Array.from(numbers), shape, "float64");
    result = dtype === "float64" ? staged : staged.to(dtype);
    if (result !== staged) staged.dispose();
  }
  if (options.device !== undefined && options.device !== "cpu") {
    const moved = result.toDevice(options.device);
    result.dispose();
    result = moved;
  }
  return finish(result, options);
}
