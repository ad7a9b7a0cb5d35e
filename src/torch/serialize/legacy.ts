// torch.save's legacy format: what PyTorch wrote before 1.6, and still writes with
// _use_new_zipfile_serialization=False (the released MoCo checkpoints are in it). One stream:
//   pickle(magic number), pickle(protocol version 1001), pickle(sys_info),
//   pickle(the object), whose persistent ids are ('storage', torch.<T>Storage, root_key, location,
//     numel, view_metadata),
//   pickle(the sorted storage keys),
//   then per key an int64 little-endian element count and the raw little-endian elements.
// The pickles carry no lengths and the storage data comes after the object, so the object is
// unpickled twice: once making no tensors, to find where it ends and which storages it names, then,
// with every storage located in the file, for real, through the zip format's own tensor rebuilding.
import { DTYPES } from "../dtype.js";
import type { Saveable } from "./saveable.js";
import { storageDtype, unpickleCheckpoint } from "./rebuild.js";
import {
  TruncatedPickleError,
  unpickleHead,
  type PickleFormat,
  type StorageRef,
  type UnpickleHooks,
  type Unpickled,
} from "./unpickler.js";
import type { ByteSource } from "./zip.js";

const MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
/** Pickles of protocol 2 and later start with the PROTO opcode; zip archives start with "PK". */
const PROTO = 0x80;
/** The first read of a pickle of unknown length; it doubles until the pickle's STOP is in it. */
const FIRST_READ = 64 * 1024;
const COUNT_BYTES = 8;

/** Whether `source` starts like a legacy checkpoint (a pickle) rather than a zip archive. */
export function isLegacyCheckpoint(source: ByteSource): boolean {
  return source.size > 0 && source.read(0, 1)[0] === PROTO;
}

/** Reads a legacy checkpoint; `context` ("load: <file>") starts every error message. */
export function readLegacyCheckpoint(source: ByteSource, context: string): Saveable {
  const header = headerHooks(context);
  let offset = 0;
  const next = <T>(hooks: UnpickleHooks<T>, format: PickleFormat = "zip"): PickleAt<T> => {
    const pickle = unpickleAt(source, offset, hooks, context, format);
    offset += pickle.bytes.length;
    return pickle;
  };

  if (next(header).value !== MAGIC_NUMBER) {
    throw new Error(`${context}: not a torch.save file (it starts with a pickle, but not with torch's magic number)`);
  }
  const version = next(header).value;
  if (version !== PROTOCOL_VERSION) {
    throw new Error(
      `${context}: legacy torch.save protocol version ${String(version)} is not supported (expected ${PROTOCOL_VERSION})`,
    );
  }
  checkSysInfo(next(header).value, context);

  const storages = new Map<string, StorageRef>();
  const noteStorage = (storage: StorageRef): null => {
    const known = storages.get(storage.key);
    if (known === undefined) {
      storageDtype(storage, context);
      storages.set(storage.key, storage);
    } else if (known.storageType !== storage.storageType || known.numel !== storage.numel) {
      throw new Error(
        `${context}: storage '${storage.key}' is described both as ${known.numel} × ${known.storageType} and as ${storage.numel} × ${storage.storageType}`,
      );
    }
    return null;
  };
  const object = next({ rebuildTensor: (args) => noteStorage(args.storage), setRequiresGrad: () => null }, "legacy");

  const keys = storageKeys(next(header).value, storages, context);
  const spans = locateStorages(source, offset, keys, storages, context);
  return unpickleCheckpoint(
    object.bytes,
    context,
    (storage, _dtype, byteLength) => source.read(spans.get(storage.key)!, byteLength),
    "legacy",
  );
}

interface PickleAt<T> {
  readonly value: Unpickled<T>;
  /** The pickle's own bytes, STOP included. */
  readonly bytes: Uint8Array;
}

/**
 * The pickle that starts at `offset`. Its length is known only once it has been parsed, so a
 * growing prefix is parsed until the STOP is in it; `hooks` must tolerate the repeats.
 */
function unpickleAt<T>(
  source: ByteSource,
  offset: number,
  hooks: UnpickleHooks<T>,
  context: string,
  format: PickleFormat,
): PickleAt<T> {
  const remaining = source.size - offset;
  for (let length = Math.min(remaining, FIRST_READ); ; length = Math.min(remaining, 2 * length)) {
    const bytes = source.read(offset, length);
    try {
      const { value, end } = unpickleHead(bytes, hooks, context, { format });
      return { value, bytes: bytes.subarray(0, end) };
    } catch (error) {
      if (!(error instanceof TruncatedPickleError) || length === remaining) throw error;
    }
  }
}

/** The small pickles around the object hold no tensors. */
function headerHooks(context: string): UnpickleHooks<never> {
  const refuse = (): never => {
    throw new Error(`${context}: corrupt legacy checkpoint: a tensor outside the saved object`);
  };
  return { rebuildTensor: refuse, setRequiresGrad: refuse };
}

function checkSysInfo(info: Unpickled<never>, context: string): void {
  const isDict = typeof info === "object" && info !== null && Object.getPrototypeOf(info) === Object.prototype;
  const littleEndian = isDict ? (info as { [key: string]: Unpickled<never> }).little_endian : undefined;
  if (littleEndian === false) {
    throw new Error(`${context}: the checkpoint was written on a big-endian machine, which is not supported`);
  }
  if (littleEndian !== true) {
    throw new Error(`${context}: corrupt legacy checkpoint: its sys_info record has no little_endian flag`);
  }
}

/** The pickled list of storage keys, checked against the storages the object names. */
function storageKeys(value: Unpickled<never>, storages: ReadonlyMap<string, StorageRef>, context: string): string[] {
  if (!Array.isArray(value) || !value.every((key): key is string => typeof key === "string")) {
    throw new Error(`${context}: corrupt legacy checkpoint: the storage key list is not a list of strings`);
  }
  const listed = new Set<string>();
  for (const key of value) {
    if (listed.has(key)) throw new Error(`${context}: corrupt legacy checkpoint: storage '${key}' is listed twice`);
    if (!storages.has(key)) {
      throw new Error(`${context}: corrupt legacy checkpoint: storage '${key}' is listed but no tensor uses it`);
    }
    listed.add(key);
  }
  for (const key of storages.keys()) {
    if (!listed.has(key)) throw new Error(`${context}: storage '${key}' is used by a tensor but its data is missing`);
  }
  return value;
}

/** Where each storage's elements start, after checking its recorded count and the file's length. */
function locateStorages(
  source: ByteSource,
  start: number,
  keys: readonly string[],
  storages: ReadonlyMap<string, StorageRef>,
  context: string,
): Map<string, number> {
  const offsets = new Map<string, number>();
  let offset = start;
  const need = (length: number, what: string): void => {
    if (offset + length > source.size) {
      throw new Error(
        `${context}: truncated file: ${what} needs ${length} bytes at offset ${offset}, but the file ends at ${source.size}`,
      );
    }
  };
  for (const key of keys) {
    const storage = storages.get(key)!;
    need(COUNT_BYTES, `the element count of storage '${key}'`);
    const countBytes = source.read(offset, COUNT_BYTES);
    const count = new DataView(countBytes.buffer, countBytes.byteOffset, COUNT_BYTES).getBigInt64(0, true);
    if (count !== BigInt(storage.numel)) {
      throw new Error(
        `${context}: storage '${key}' holds ${count} elements in the file, but its tensors were saved with ${storage.numel}`,
      );
    }
    offset += COUNT_BYTES;
    const byteLength = storage.numel * DTYPES[storageDtype(storage, context)].bytes;
    need(byteLength, `storage '${key}'`);
    offsets.set(key, offset);
    offset += byteLength;
  }
  if (offset !== source.size) {
    throw new Error(
      `${context}: corrupt legacy checkpoint: ${source.size - offset} unexpected bytes after the last storage`,
    );
  }
  return offsets;
}
