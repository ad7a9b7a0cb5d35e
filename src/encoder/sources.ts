// Finds the backbone's state dict inside whatever file a user has: a moco-ts or official MoCo
// pretraining checkpoint (`state_dict` with `module.encoder_q.*`), a linear-evaluation checkpoint
// (`state_dict` with `module.conv1.*`, ours or main_lincls.py's), a torchvision state dict (with or
// without `module.`), or safetensors. Files are read strictly (nothing in them is executed) in
// PyTorch's zip format, its legacy format, or safetensors.
import { closeSync, openSync, readSync } from "node:fs";

import { readSafetensors } from "../io/index.js";
import { Tensor, load, type Saveable } from "../torch/index.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

export type EncoderSource = "moco-ts" | "moco" | "lincls" | "torchvision" | "safetensors";

/** Which encoder of a MoCo checkpoint: the query encoder (the one the papers transfer) or the key encoder. */
export type EncoderPart = "query" | "key";

export interface FoundStateDict {
  source: EncoderSource;
  /** Torchvision-named tensors of the chosen network (prefixes removed). */
  stateDict: Map<string, Tensor>;
  /** The checkpoint's `arch` field, when it has one. */
  arch: string | null;
  /** The whole file's top-level dict (for fields such as `moco_ts`), or null. */
  root: Record<string, Saveable> | null;
  /** Tensors of the file that are not part of `stateDict` (freed by the caller with it). */
  others: Tensor[];
  /** safetensors: the file's string metadata (null for other formats). */
  metadata?: Record<string, string> | null;
}

export class CheckpointFormatError extends MocoError {
  override name = "CheckpointFormatError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_CHECKPOINT_FORMAT", message, options);
  }
}

function sniffSafetensors(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(9);
    if (readSync(fd, head, 0, 9, 0) < 9) return false;
    const headerLength = head.readBigUInt64LE(0);
    return headerLength > 1n && headerLength < 100_000_000n && head[8] === 0x7b; // '{'
  } finally {
    closeSync(fd);
  }
}

const isRecord = (v: unknown): v is Record<string, Saveable> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Tensor) && !(v instanceof Uint8Array);

function entriesOf(value: Saveable): [string, Saveable][] | null {
  if (value instanceof Map) return [...value.entries()].map(([k, v]) => [String(k), v]);
  if (isRecord(value)) return Object.entries(value);
  return null;
}

/** A value that holds itself, so that no walk over it ends. */
export class CyclicValueError extends MocoError {
  override readonly name = "CyclicValueError";
  constructor(message: string) {
    super("ERR_CYCLIC_VALUE", message);
  }
}

/**
 * Every tensor in a loaded value (to free them all), each once. Linear in the number of distinct
 * containers: a value that holds one list many times over (a "billion laughs" pickle) is walked
 * once per list, not once per path. `label` (the file) is named when the value holds itself, in
 * which case the tensors found are freed and a CyclicValueError is thrown.
 */
export function collectTensors(value: Saveable, label = "the value"): Tensor[] {
  const out: Tensor[] = [];
  const done = new Set<object>();
  const onPath = new Set<object>();
  // Depth-first with an explicit stack: deep nesting cannot overflow the call stack.
  const stack: { container: object; children: Iterator<Saveable> }[] = [];
  const enter = (item: Saveable): void => {
    if (item instanceof Tensor) {
      if (!done.has(item)) out.push(item);
      done.add(item);
      return;
    }
    let container: object;
    let children: Iterator<Saveable>;
    if (Array.isArray(item) || item instanceof Map) [container, children] = [item, item.values()];
    else if (isRecord(item)) [container, children] = [item, Object.values(item).values()];
    else return;
    if (onPath.has(container)) {
      for (const tensor of out) tensor.dispose();
      throw new CyclicValueError(`${label}: the loaded value holds itself (a cyclic reference)`);
    }
    if (done.has(container)) return;
    onPath.add(container);
    stack.push({ container, children });
  };
  enter(value);
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!;
    const next = frame.children.next();
    if (next.done === true) {
      stack.pop();
      onPath.delete(frame.container);
      done.add(frame.container);
    } else enter(next.value);
  }
  return out;
}

/** Splits `entries` into the tensors under `prefix` (renamed) and everything else. */
function takePrefixed(entries: [string, Saveable][], prefix: string, what: string): Map<string, Tensor> {
  const taken = new Map<string, Tensor>();
  for (const [key, value] of entries) {
    if (!key.startsWith(prefix)) continue;
    if (!(value instanceof Tensor)) throw new CheckpointFormatError(`${what}: "${key}" is not a tensor`);
    taken.set(key.slice(prefix.length), value);
  }
  return taken;
}

function keySample(entries: [string, Saveable][]): string {
  const keys = entries.slice(0, 5).map(([k]) => `"${k}"`);
  return keys.length === 0 ? "no keys" : `keys ${keys.join(", ")}${entries.length > 5 ? ", ..." : ""}`;
}

function fromStateDict(
  entries: [string, Saveable][],
  path: string,
  part: EncoderPart,
): { stateDict: Map<string, Tensor>; kind: "moco" | "plain" } {
  const has = (prefix: string) => entries.some(([k]) => k.startsWith(prefix));
  const encoder = part === "query" ? "encoder_q." : "encoder_k.";
  for (const prefix of [`module.${encoder}`, encoder]) {
    if (has(prefix)) return { stateDict: takePrefixed(entries, prefix, path), kind: "moco" };
  }
  if (has("module.encoder_q.") || has("encoder_q."))
    throw new CheckpointFormatError(`${path}: a MoCo checkpoint without the ${part} encoder`);
  for (const prefix of ["module.", ""]) {
    if (entries.some(([k]) => k === `${prefix}conv1.weight`))
      return { stateDict: takePrefixed(entries, prefix, path), kind: "plain" };
  }
  throw new CheckpointFormatError(
    `${path}: no ResNet weights found (expected module.encoder_q.*, module.conv1.* or conv1.*; found ${keySample(entries)})`,
  );
}

/** Reads `path` and returns the chosen network's state dict; the caller owns every tensor returned. */
export function readEncoderStateDict(path: string, part: EncoderPart = "query"): FoundStateDict {
  if (sniffSafetensors(path)) {
    const { tensors, metadata } = readSafetensors(path);
    try {
      const { stateDict } = fromStateDict([...tensors.entries()], path, part);
      const kept = new Set(stateDict.values());
      const others = [...tensors.values()].filter((t) => !kept.has(t));
      return { source: "safetensors", stateDict, arch: null, root: null, others, metadata };
    } catch (error) {
      for (const tensor of tensors.values()) tensor.dispose();
      throw error;
    }
  }
  const root = load(path);
  const all = collectTensors(root, path);
  try {
    const topEntries = entriesOf(root);
    if (topEntries === null)
      throw new CheckpointFormatError(`${path}: not a checkpoint of a network (a ${describeValue(root)} at the top)`);
    const record = isRecord(root) ? root : null;
    const wrapped = record?.["state_dict"];
    const stateEntries = wrapped === undefined ? topEntries : entriesOf(wrapped);
    if (stateEntries === null) throw new CheckpointFormatError(`${path}: "state_dict" is not a dict`);
    const { stateDict, kind } = fromStateDict(stateEntries, path, part);
    const arch = typeof record?.["arch"] === "string" ? record["arch"] : null;
    const source: EncoderSource =
      kind === "moco"
        ? record !== null && "moco_ts" in record
          ? "moco-ts"
          : "moco"
        : wrapped !== undefined
          ? "lincls"
          : "torchvision";
    const kept = new Set(stateDict.values());
    return { source, stateDict, arch, root: record, others: all.filter((t) => !kept.has(t)) };
  } catch (error) {
    for (const tensor of all) tensor.dispose();
    throw error;
  }
}

function describeValue(value: Saveable): string {
  if (value === null) return "None";
  if (value instanceof Tensor) return "tensor";
  if (Array.isArray(value)) return "list";
  return typeof value;
}
