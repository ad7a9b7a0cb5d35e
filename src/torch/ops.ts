// Functions over several tensors (joining, selection, einsum), as in the `torch` namespace.
import { native } from "./native.js";
import { Tensor, checkInt } from "./tensor.js";

function tensorList(tensors: readonly Tensor[], op: string): Tensor[] {
  if (!Array.isArray(tensors) || tensors.length === 0 || !tensors.every((t) => t instanceof Tensor)) {
    throw new TypeError(`${op}: expects a non-empty array of tensors`);
  }
  return tensors as Tensor[];
}

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  const list = tensorList(tensors, "cat");
  return new Tensor(
    native.cat(
      list.map((t) => t.handle),
      checkInt(dim, "dim", "cat"),
    ),
  );
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  const list = tensorList(tensors, "stack");
  return new Tensor(
    native.stack(
      list.map((t) => t.handle),
      checkInt(dim, "dim", "stack"),
    ),
  );
}

/** Elementwise `condition ? x : y` with broadcasting. */
export function where(condition: Tensor, x: Tensor | number, y: Tensor | number): Tensor {
  if (!(condition instanceof Tensor)) throw new TypeError("where: condition must be a Tensor");
  const side = (v: Tensor | number, name: string) => {
    if (v instanceof Tensor) return v.handle;
    if (typeof v === "number") return v;
    throw new TypeError(`where: ${name} must be a Tensor or a number`);
  };
  return new Tensor(native.where(condition.handle, side(x, "x"), side(y, "y")));
}

export function einsum(equation: string, ...operands: Tensor[]): Tensor {
  if (typeof equation !== "string") throw new TypeError("einsum: equation must be a string like 'nc,ck->nk'");
  const list = tensorList(operands, "einsum");
  return new Tensor(
    native.einsum(
      equation,
      list.map((t) => t.handle),
    ),
  );
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.matmul(b);
}

/** Counts of each non-negative integer (int64), optionally weighted. */
export function bincount(input: Tensor, weights: Tensor | null = null, minlength = 0): Tensor {
  return new Tensor(
    native.bincount(input.handle, weights?.handle ?? null, checkInt(minlength, "minlength", "bincount")),
  );
}
