// The data pickle of a torch.save file → JS values with native tensors, for both file formats,
// which differ only in where a storage's bytes lie. Tensors that name one storage become views of
// one native tensor, as they are views of one storage in Python.
import { noGrad } from "../autograd.js";
import { DTYPES, type DType } from "../dtype.js";
import { fromBytes } from "../factories.js";
import { Tensor } from "../tensor.js";
import type { Saveable } from "./saveable.js";
import { unpickle, type PickleFormat, type StorageRef, type TensorArgs } from "./unpickler.js";
import { dtypeOfStorageType, SUPPORTED_STORAGE_TYPES } from "./storage-types.js";

/** The first `byteLength` bytes of `storage`'s data, or an error naming what is missing. */
export type StorageBytes = (storage: StorageRef, dtype: DType, byteLength: number) => Uint8Array;

interface LoadedStorage {
  readonly storageType: string;
  readonly base: Tensor;
  readonly numel: number;
  /** Whether `base` itself was handed out (as the first tensor, which covers it exactly). */
  readonly handedOut: boolean;
}

/** The dtype of a storage, or an error naming the storage when moco-ts lacks it. */
export function storageDtype(storage: StorageRef, context: string): DType {
  const dtype = dtypeOfStorageType(storage.storageType);
  if (dtype === undefined) {
    throw new Error(
      `${context}: tensor storage '${storage.key}' has unsupported dtype torch.${storage.storageType} (supported: ${SUPPORTED_STORAGE_TYPES.join(", ")})`,
    );
  }
  return dtype;
}

/**
 * Unpickles `data` (the checkpoint's object) and rebuilds its tensors over storages read through
 * `bytesOf` on first use. On failure every tensor made so far is freed.
 */
export function unpickleCheckpoint(
  data: Uint8Array,
  context: string,
  bytesOf: StorageBytes,
  format: PickleFormat,
): Saveable {
  const storages = new Map<string, LoadedStorage>();
  const views = new Map<string, { root: string; offset: number; numel: number }>();
  const created: Tensor[] = [];

  const storageFor = (args: TensorArgs): LoadedStorage => {
    const { storageType, key, numel } = args.storage;
    const existing = storages.get(key);
    if (existing !== undefined) {
      if (existing.storageType !== storageType || existing.numel !== numel) {
        throw new Error(
          `${context}: storage '${key}' is described both as ${existing.numel} × ${existing.storageType} and as ${numel} × ${storageType}`,
        );
      }
      return existing;
    }
    const dtype = storageDtype(args.storage, context);
    const needed = numel * DTYPES[dtype].bytes;
    // The usual case, one tensor per storage, gets the storage's tensor itself, shaped as that
    // tensor, rather than a view of a 1-D base.
    const whole = coversExactly(args, numel);
    const loaded: LoadedStorage = {
      storageType,
      base: fromBytes(bytesOf(args.storage, dtype, needed), dtype, whole ? args.size : [numel]),
      numel,
      handedOut: whole,
    };
    created.push(loaded.base);
    storages.set(key, loaded);
    return loaded;
  };

  /** An old storage view's tensor, as a tensor of the view's root storage. */
  const throughView = (args: TensorArgs): TensorArgs => {
    const view = args.storage.view;
    if (view === null) return args;
    const { key, numel } = args.storage;
    if (view.offset + view.numel > numel) {
      throw new Error(
        `${context}: storage view '${view.key}' (elements ${view.offset}..${view.offset + view.numel}) reaches past storage '${key}', which has ${numel}`,
      );
    }
    const known = views.get(view.key);
    if (known === undefined) views.set(view.key, { root: key, offset: view.offset, numel: view.numel });
    else if (known.root !== key || known.offset !== view.offset || known.numel !== view.numel) {
      throw new Error(`${context}: storage view '${view.key}' is described in two different ways`);
    }
    checkInBounds(args, view.numel, `storage view '${view.key}'`, context);
    return { ...args, storage: { ...args.storage, view: null }, storageOffset: args.storageOffset + view.offset };
  };

  const rebuildTensor = (saved: TensorArgs): Tensor => {
    const args = throughView(saved);
    checkInBounds(args, args.storage.numel, `storage '${args.storage.key}'`, context);
    const isFirst = !storages.has(args.storage.key);
    const storage = storageFor(args);
    let tensor: Tensor;
    if (isFirst && storage.handedOut) {
      tensor = storage.base;
    } else {
      // No grad, so that a view of a base that requires grad is a leaf, like torch's set_().
      tensor = noGrad(() => storage.base.asStrided(args.size, args.stride, args.storageOffset));
      created.push(tensor);
    }
    if (args.requiresGrad) setRequiresGrad(tensor, true);
    return tensor;
  };

  /** requires_grad as saved; torch refuses it on integer tensors, which only a damaged file holds. */
  const setRequiresGrad = (tensor: Tensor, flag: boolean): Tensor => {
    if (flag && !DTYPES[tensor.dtype].isFloating)
      throw new Error(
        `${context}: a ${DTYPES[tensor.dtype].torchName} tensor marked requires_grad (only floating-point tensors can be)`,
      );
    return tensor.requiresGrad_(flag);
  };

  try {
    const result = unpickle<Tensor>(data, { rebuildTensor, setRequiresGrad }, context, { format });
    // Views keep their storage alive; the bases nobody holds can go.
    for (const storage of storages.values()) if (!storage.handedOut) storage.base.dispose();
    return result;
  } catch (error) {
    for (const tensor of created) tensor.dispose();
    throw error;
  }
}

function checkInBounds(args: TensorArgs, storageNumel: number, storageName: string, context: string): void {
  if (args.size.some((n) => n === 0)) return;
  const last = args.size.reduce((end, n, i) => end + (n - 1) * args.stride[i]!, args.storageOffset);
  if (last >= storageNumel) {
    throw new Error(
      `${context}: a tensor (size [${args.size.join(", ")}], stride [${args.stride.join(", ")}], offset ${args.storageOffset}) reaches element ${last} of ${storageName}, which has ${storageNumel}`,
    );
  }
}

function coversExactly(args: TensorArgs, storageNumel: number): boolean {
  if (args.storageOffset !== 0) return false;
  let expected = 1;
  for (let i = args.size.length - 1; i >= 0; i--) {
    const size = args.size[i]!;
    if (size !== 1 && args.stride[i] !== expected) return false;
    expected *= size;
  }
  return expected === storageNumel;
}
