// Multi-tensor ops over lists of tensors (libtorch's _foreach_*), as torch._foreach_*: one native
// call for a whole list. Each element gets exactly the single-tensor op's result; the gain is fewer
// crossings of the JS/C++ boundary in per-parameter loops (optimizer steps, momentum updates).
import { native, type NativeHandle } from "./native.js";
import { Tensor } from "./tensor.js";

function handles(tensors: readonly Tensor[], what: string, op: string): NativeHandle[] {
  if (!Array.isArray(tensors)) throw new TypeError(`${op}: ${what} must be an array of tensors`);
  return tensors.map((t, i) => {
    if (!(t instanceof Tensor)) throw new TypeError(`${op}: ${what}[${i}] must be a Tensor`);
    return t.handle;
  });
}

function pair(self: readonly Tensor[], other: readonly Tensor[], op: string): [NativeHandle[], NativeHandle[]] {
  const a = handles(self, "self", op);
  const b = handles(other, "other", op);
  if (a.length !== b.length) {
    throw new RangeError(`${op}: self and other must have the same length, got ${a.length} and ${b.length}`);
  }
  return [a, b];
}

function checkScalar(value: unknown, what: string, op: string): number {
  if (typeof value !== "number") throw new TypeError(`${op}: ${what} must be a number, got ${String(value)}`);
  return value;
}

/** self[i] *= scalar, in place (torch._foreach_mul_). */
export function foreachMul_(self: readonly Tensor[], scalar: number): void {
  native.foreachMul_(handles(self, "self", "foreachMul_"), checkScalar(scalar, "scalar", "foreachMul_"));
}

/** self[i] += alpha · other[i], in place (torch._foreach_add_ with a list). */
export function foreachAdd_(self: readonly Tensor[], other: readonly Tensor[], alpha = 1): void {
  const [a, b] = pair(self, other, "foreachAdd_");
  native.foreachAdd_(a, b, checkScalar(alpha, "alpha", "foreachAdd_"));
}

/** [self[i] + alpha · other[i]] as new tensors (torch._foreach_add). */
export function foreachAdd(self: readonly Tensor[], other: readonly Tensor[], alpha = 1): Tensor[] {
  const [a, b] = pair(self, other, "foreachAdd");
  return native.foreachAdd(a, b, checkScalar(alpha, "alpha", "foreachAdd")).map((h) => new Tensor(h));
}

/** [−self[i]] as new tensors (torch._foreach_neg). */
export function foreachNeg(self: readonly Tensor[]): Tensor[] {
  return native.foreachNeg(handles(self, "self", "foreachNeg")).map((h) => new Tensor(h));
}

/** Each tensor's `.grad` (null where none), read in one native call. */
export function gradsOf(tensors: readonly Tensor[]): (Tensor | null)[] {
  return native.grads(handles(tensors, "tensors", "gradsOf")).map((h) => (h === null ? null : new Tensor(h)));
}
