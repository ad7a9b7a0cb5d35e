// The neutral form test/py/serialize_check.py documents: JSON that keeps key types, big ints,
// special floats, bytes, and tensors as dtype/shape/stride/offset/bytes/storage number. Shared by
// the tests of both torch.save formats.
import assert from "node:assert/strict";

import { Tensor } from "../../src/torch/index.js";
import type { Saveable } from "../../src/torch/serialize/index.js";

export interface NeutralTensor {
  dtype: string;
  shape: number[];
  stride: number[];
  offset: number;
  hex: string;
  requires_grad: boolean;
  storage: number | null;
}
export type Neutral =
  | null
  | boolean
  | number
  | string
  | Neutral[]
  | { __dict__: [Neutral, Neutral][] }
  | { __int__: string }
  | { __float__: string }
  | { __bytes__: string }
  | { __tensor__: NeutralTensor };

export const hex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");

export function tensorsIn(value: Saveable, into = new Set<Tensor>()): Set<Tensor> {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) value.forEach((item) => tensorsIn(item, into));
  else if (value instanceof Map) for (const item of value.values()) tensorsIn(item, into);
  else if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
    for (const item of Object.values(value)) tensorsIn(item, into);
  }
  return into;
}

export function disposeAll(value: Saveable): void {
  for (const t of tensorsIn(value)) t.dispose();
}

/** Our values in the neutral form, numbering storages by storageId. */
export function toNeutral(value: Saveable, storages = new Map<string, number>()): Neutral {
  if (value === null || typeof value === "boolean" || typeof value === "string") return value;
  if (typeof value === "number") return Number.isSafeInteger(value) ? value : { __float__: String(value) };
  // Safe bigints load back as numbers, and are the same Python int either way.
  if (typeof value === "bigint")
    return Number.isSafeInteger(Number(value)) ? Number(value) : { __int__: value.toString() };
  if (value instanceof Uint8Array) return { __bytes__: hex(value) };
  if (value instanceof Tensor) {
    let storage: number | null = null;
    if (value.numel > 0) {
      storage = storages.get(value.storageId) ?? storages.size;
      storages.set(value.storageId, storage);
    }
    return {
      __tensor__: {
        dtype: value.dtype,
        shape: [...value.shape],
        stride: [...value.strides],
        offset: value.storageOffset,
        hex: hex(value.toBytes()),
        requires_grad: value.requiresGrad,
        storage,
      },
    };
  }
  if (Array.isArray(value)) return value.map((item) => toNeutral(item, storages));
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  return { __dict__: entries.map(([k, v]) => [k, toNeutral(v, storages)]) };
}

/** Asserts that `actual` (what we loaded) is `expected` (Python's neutral form), exactly. */
export function assertMatches(actual: Saveable, expected: Neutral, where: string, storages: Map<number, string>): void {
  if (expected === null || typeof expected !== "object") {
    assert.equal(actual, expected, where);
    return;
  }
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where}: expected an array`);
    assert.equal(actual.length, expected.length, `${where}: length`);
    expected.forEach((item, i) => assertMatches(actual[i]!, item, `${where}[${i}]`, storages));
    return;
  }
  if ("__int__" in expected) {
    const big = BigInt(expected.__int__);
    assert.equal(actual, Number.isSafeInteger(Number(big)) && BigInt(Number(big)) === big ? Number(big) : big, where);
    return;
  }
  if ("__float__" in expected) {
    assert.ok(Object.is(actual, Number(expected.__float__.replace("inf", "Infinity"))), `${where}: ${String(actual)}`);
    return;
  }
  if ("__bytes__" in expected) {
    assert.ok(actual instanceof Uint8Array, `${where}: expected bytes`);
    assert.equal(hex(actual), expected.__bytes__, where);
    return;
  }
  if ("__tensor__" in expected) {
    const e = expected.__tensor__;
    assert.ok(actual instanceof Tensor, `${where}: expected a tensor`);
    assert.equal(actual.dtype, e.dtype, `${where}: dtype`);
    assert.deepEqual([...actual.shape], e.shape, `${where}: shape`);
    assert.deepEqual([...actual.strides], e.stride, `${where}: stride`);
    assert.equal(actual.storageOffset, e.offset, `${where}: storage offset`);
    assert.equal(hex(actual.toBytes()), e.hex, `${where}: values`);
    assert.equal(actual.requiresGrad, e.requires_grad, `${where}: requiresGrad`);
    if (e.storage !== null) {
      const known = storages.get(e.storage);
      if (known === undefined) {
        assert.ok(![...storages.values()].includes(actual.storageId), `${where}: shares a storage it should not`);
        storages.set(e.storage, actual.storageId);
      } else {
        assert.equal(actual.storageId, known, `${where}: should share storage #${e.storage}`);
      }
    }
    return;
  }
  const pairs = expected.__dict__;
  const keys = pairs.map(([k]) => k);
  if (keys.every((k) => typeof k === "string")) {
    assert.ok(
      typeof actual === "object" && actual !== null && Object.getPrototypeOf(actual) === Object.prototype,
      `${where}: expected a plain object`,
    );
    assert.deepEqual(Object.keys(actual), keys, `${where}: keys`);
    for (const [k, v] of pairs)
      assertMatches((actual as Record<string, Saveable>)[k as string]!, v, `${where}.${String(k)}`, storages);
  } else {
    assert.ok(actual instanceof Map, `${where}: expected a Map (not all keys are strings)`);
    assert.deepEqual([...actual.keys()], keys, `${where}: keys`);
    for (const [k, v] of pairs) assertMatches(actual.get(k as string | number)!, v, `${where}[${String(k)}]`, storages);
  }
}
