// The safetensors header (https://github.com/huggingface/safetensors): a u64 little-endian length
// N, then N bytes of JSON {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}},
// padded with spaces to a multiple of 8; the data follows, each tensor contiguous, little-endian,
// at offsets relative to the data's start. Encoding follows the reference implementation's layout;
// decoding checks everything the reference's own validation checks.
import { DTYPES, type DType } from "../torch/index.js";

/** The safetensors dtype names moco-ts has tensors for. */
export type SafetensorsDType = "BOOL" | "U8" | "I8" | "I16" | "F16" | "BF16" | "I32" | "F32" | "F64" | "I64";

/** In the order of the reference implementation's Dtype enum, which orders its data. */
const DTYPE_OF: ReadonlyMap<SafetensorsDType, DType> = new Map<SafetensorsDType, DType>([
  ["BOOL", "bool"],
  ["U8", "uint8"],
  ["I8", "int8"],
  ["I16", "int16"],
  ["F16", "float16"],
  ["BF16", "bfloat16"],
  ["I32", "int32"],
  ["F32", "float32"],
  ["F64", "float64"],
  ["I64", "int64"],
]);
const RANK = new Map([...DTYPE_OF.keys()].map((name, i) => [name, i]));
const NAME_OF = new Map([...DTYPE_OF].map(([name, dtype]) => [dtype, name]));
/** Valid safetensors dtypes without a moco-ts dtype: refused as unsupported rather than unknown. */
const UNSUPPORTED = new Set(["U16", "U32", "U64", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64"]);

/** The reference implementation refuses longer headers. */
export const MAX_HEADER_BYTES = 100_000_000;
export const LENGTH_BYTES = 8;
const METADATA_KEY = "__metadata__";

export interface TensorEntry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Byte offsets relative to the start of the data: [begin, end). */
  readonly begin: number;
  readonly end: number;
}

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === "string" && DTYPE_OF.has(value as SafetensorsDType);
}

export function dtypeOfSafetensors(name: SafetensorsDType): DType {
  return DTYPE_OF.get(name)!;
}

/** Every moco-ts dtype has a safetensors name. */
export function safetensorsNameOf(dtype: DType): SafetensorsDType {
  return NAME_OF.get(dtype)!;
}

export function byteLengthOf(dtype: DType, shape: readonly number[]): number {
  return shape.reduce((n, size) => n * size, DTYPES[dtype].bytes);
}

/** The reference implementation's name order: UTF-8 bytes, as Rust compares strings. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Lays tensors out as the reference implementation does: larger dtypes first (so that every
 * tensor is aligned to its element size), then by name.
 */
export function layOut(tensors: readonly { name: string; dtype: DType; shape: readonly number[] }[]): TensorEntry[] {
  const rank = (dtype: DType): number => RANK.get(safetensorsNameOf(dtype))!;
  const sorted = [...tensors].sort((a, b) => rank(b.dtype) - rank(a.dtype) || compareNames(a.name, b.name));
  let offset = 0;
  return sorted.map(({ name, dtype, shape }) => {
    const begin = offset;
    offset += byteLengthOf(dtype, shape);
    return { name, dtype, shape: [...shape], begin, end: offset };
  });
}

/** The length field and the padded JSON: everything before the data. */
export function encodeHeader(
  entries: readonly TensorEntry[],
  metadata: Record<string, string> | undefined,
): Uint8Array {
  const members: [string, unknown][] = entries.map(({ name, dtype, shape, begin, end }) => [
    name,
    { dtype: safetensorsNameOf(dtype), shape, data_offsets: [begin, end] },
  ]);
  if (metadata !== undefined) members.unshift([METADATA_KEY, metadata]);
  // Joined by hand: a JS object would move integer-like names ("0") to the front.
  const text = members.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(",");
  const json = Buffer.from(`{${text}}`, "utf8");
  const padded = json.length + ((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(LENGTH_BYTES + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, LENGTH_BYTES);
  return out;
}

/** The entries, sorted by offset, and the metadata of a header whose data holds `dataBytes` bytes. */
export function decodeHeader(
  text: string,
  dataBytes: number,
  fail: (message: string) => never,
): { entries: TensorEntry[]; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    fail(`the header is not valid JSON (${(error as Error).message})`);
  }
  if (!isPlainObject(parsed)) fail("the header is not a JSON object");
  let metadata: Record<string, string> = {};
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(parsed)) {
    if (name === METADATA_KEY) metadata = decodeMetadata(info, fail);
    else entries.push(decodeEntry(name, info, fail));
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  for (const entry of entries) {
    if (entry.begin !== covered) {
      fail(
        entry.begin < covered
          ? `tensor '${entry.name}' (bytes ${entry.begin}..${entry.end}) overlaps the tensor before it`
          : `bytes ${covered}..${entry.begin} of the data belong to no tensor`,
      );
    }
    covered = entry.end;
  }
  if (covered !== dataBytes) {
    fail(
      covered > dataBytes
        ? `truncated: the tensors need ${covered} bytes of data, but the file holds ${dataBytes}`
        : `bytes ${covered}..${dataBytes} of the data belong to no tensor`,
    );
  }
  return { entries, metadata };
}

function decodeMetadata(value: unknown, fail: (message: string) => never): Record<string, string> {
  if (!isPlainObject(value)) fail(`"${METADATA_KEY}" is not a JSON object`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== "string") fail(`"${METADATA_KEY}" entry '${key}' is not a string`);
  }
  return Object.fromEntries(Object.entries(value)) as Record<string, string>;
}

function decodeEntry(name: string, info: unknown, fail: (message: string) => never): TensorEntry {
  const where = `tensor '${name}'`;
  if (!isPlainObject(info)) fail(`${where}: the entry is not a JSON object`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (!isSafetensorsDType(dtype)) {
    const supported = [...DTYPE_OF.keys()].join(", ");
    fail(
      typeof dtype === "string" && UNSUPPORTED.has(dtype)
        ? `${where}: dtype ${dtype} is not supported (supported: ${supported})`
        : `${where}: unknown dtype ${JSON.stringify(dtype)} (supported: ${supported})`,
    );
  }
  if (!isCounts(shape)) fail(`${where}: shape must be a list of non-negative integers`);
  if (!isCounts(offsets) || offsets.length !== 2 || offsets[0]! > offsets[1]!) {
    fail(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets as [number, number];
  const ours = dtypeOfSafetensors(dtype);
  const needed = byteLengthOf(ours, shape);
  if (needed !== end - begin) {
    fail(
      `${where}: shape [${shape.join(", ")}] of ${dtype} needs ${needed} bytes, but data_offsets span ${end - begin}`,
    );
  }
  return { name, dtype: ours, shape, begin, end };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCounts(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
}
