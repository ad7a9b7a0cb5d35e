// torch.save's zip checkpoint → JS values. Tensors that name one storage record become views of
// one native tensor, as they are views of one storage in Python.
import { Tensor, fromBytes, noGrad, DTYPES } from "../index.js";
import type { Saveable } from "./index.js";
import { unpickle, type TensorArgs } from "./unpickler.js";
import { dtypeOfStorageType, SUPPORTED_STORAGE_TYPES } from "./storage-types.js";
import { ZipReader, type ByteSource } from "./zip.js";

/** The first bytes of a legacy (pre-1.6) torch.save file: a pickled LONG1 magic number. */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a];

interface LoadedStorage {
  readonly storageType: string;
  readonly base: Tensor;
  readonly numel: number;
  /** Whether `base` itself was handed out (as the first tensor, which covers it exactly). */
  readonly handedOut: boolean;
}

/** Reads a checkpoint from `source`; `label` (a path or "<buffer>") is named in every error. */
export function readCheckpoint(source: ByteSource, label: string): Saveable {
  const context = `load: ${label}`;
  if (source.size >= LEGACY_MAGIC.length) {
    const head = source.read(0, LEGACY_MAGIC.length);
    if (LEGACY_MAGIC.every((byte, i) => head[i] === byte)) {
      throw new Error(
        `${context}: legacy (pre-1.6) torch format is not supported yet; re-save it with torch >= 1.6 (torch.save(torch.load(f), f))`,
      );
    }
  }
  const zip = ZipReader.open(source, context);
  const root = findRoot(zip, context);
  const byteorder = zip.has(`${root}byteorder`)
    ? new TextDecoder().decode(zip.read(`${root}byteorder`)).trim()
    : "little";
  if (byteorder !== "little") throw new Error(`${context}: ${byteorder}-endian checkpoints are not supported`);

  const storages = new Map<string, LoadedStorage>();
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
    const dtype = dtypeOfStorageType(storageType);
    if (dtype === undefined) {
      throw new Error(
        `${context}: tensor storage '${key}' has unsupported dtype torch.${storageType} (supported: ${SUPPORTED_STORAGE_TYPES.join(", ")})`,
      );
    }
    const record = `${root}data/${key}`;
    if (!zip.has(record)) throw new Error(`${context}: storage record '${record}' is missing from the archive`);
    const bytes = zip.read(record);
    const needed = numel * DTYPES[dtype].bytes;
    if (bytes.length < needed) {
      throw new Error(
        `${context}: storage record '${record}' holds ${bytes.length} bytes; ${numel} ${dtype} need ${needed}`,
      );
    }
    // The usual case, one tensor per storage, gets the storage's tensor itself, shaped as that
    // tensor, rather than a view of a 1-D base.
    const whole = coversExactly(args, numel);
    const loaded: LoadedStorage = {
      storageType,
      base: fromBytes(bytes.subarray(0, needed), dtype, whole ? args.size : [numel]),
      numel,
      handedOut: whole,
    };
    created.push(loaded.base);
    storages.set(key, loaded);
    return loaded;
  };

  const rebuildTensor = (args: TensorArgs): Tensor => {
    checkInBounds(args, args.storage.numel, context);
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
    if (args.requiresGrad) tensor.requiresGrad_(true);
    return tensor;
  };

  try {
    const result = unpickle<Tensor>(
      zip.read(`${root}data.pkl`),
      { rebuildTensor, setRequiresGrad: (tensor, flag) => tensor.requiresGrad_(flag) },
      context,
    );
    // Views keep their storage alive; the bases nobody holds can go.
    for (const storage of storages.values()) if (!storage.handedOut) storage.base.dispose();
    return result;
  } catch (error) {
    for (const tensor of created) tensor.dispose();
    throw error;
  }
}

/** The archive's root folder, with its trailing slash: PyTorch names it after the file. */
function findRoot(zip: ZipReader, context: string): string {
  const roots = new Set<string>();
  for (const name of zip.entries.keys()) {
    const slash = name.indexOf("/");
    roots.add(slash < 0 ? "" : name.slice(0, slash + 1));
  }
  const withData = [...roots].filter((root) => zip.has(`${root}data.pkl`));
  if (withData.length === 1) {
    const root = withData[0]!;
    if (zip.has(`${root}constants.pkl`)) {
      throw new Error(`${context}: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint`);
    }
    return root;
  }
  if (withData.length > 1) {
    throw new Error(`${context}: the archive has several root folders with a data.pkl (${withData.join(", ")})`);
  }
  throw new Error(`${context}: the zip archive has no data.pkl record, so it is not a torch.save checkpoint`);
}

function checkInBounds(args: TensorArgs, storageNumel: number, context: string): void {
  if (args.size.some((n) => n === 0)) return;
  const last = args.size.reduce((end, n, i) => end + (n - 1) * args.stride[i]!, args.storageOffset);
  if (last >= storageNumel) {
    throw new Error(
      `${context}: a tensor (size [${args.size.join(", ")}], stride [${args.stride.join(", ")}], offset ${args.storageOffset}) reaches element ${last} of storage '${args.storage.key}', which has ${storageNumel}`,
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
