// Argument checks shared by the file writers: TypeScript types stop TypeScript callers, these stop
// the rest, with messages that name the argument and the operation.
import { Tensor, type DType } from "../torch/index.js";

export function checkTensor(value: unknown, what: string, op: string): Tensor {
  if (!(value instanceof Tensor)) throw new TypeError(`${op}: ${what} must be a Tensor, got ${describe(value)}`);
  if (value.isDisposed) throw new Error(`${op}: ${what} has been disposed`);
  return value;
}

export function checkRowCount(value: unknown, what: string, op: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${op}: ${what} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

export function checkMetadata(metadata: unknown, op: string): void {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new TypeError(`${op}: metadata must be an object of strings, got ${describe(metadata)}`);
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== "string")
      throw new TypeError(`${op}: metadata '${key}' must be a string, got ${describe(value)}`);
  }
}

/** A batch for a row writer: a [n, cols] tensor of `dtype`; returns n. */
export function checkRows(rows: unknown, cols: number, dtype: DType, op: string): number {
  const tensor = checkTensor(rows, "rows", op);
  const shape = tensor.shape;
  if (shape.length !== 2 || shape[1] !== cols) {
    throw new RangeError(`${op}: rows must have shape [n, ${cols}], got [${shape.join(", ")}]`);
  }
  if (tensor.dtype !== dtype) throw new TypeError(`${op}: rows must be ${dtype}, got ${tensor.dtype}`);
  return shape[0]!;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Tensor) return "a Tensor";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? JSON.stringify(value) : typeof value === "number" ? String(value) : typeof value;
}
