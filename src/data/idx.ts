// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// (0, 0, type, rank), rank big-endian u32 sizes, then the elements. Gzipped files are accepted
// (recognised by their magic bytes, whatever the file name).
import { constants as bufferConstants } from "node:buffer";
import { constants as zlibConstants, gunzipSync } from "node:zlib";

import { DatasetError } from "./dataset.js";
import { readFileOrThrow } from "./files.js";

export interface IdxArray {
  shape: number[];
  /** The raw elements (uint8 for image and label files). */
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

/** zlib never inflates more than about 1032 bytes per compressed byte (deflate's best case). */
const MAX_DEFLATE_RATIO = 1032;
/** The output of one probe for the header; far above any IDX header (4 + 4 × 255 bytes). */
const HEADER_PROBE_LIMIT = 1 << 20;

function gzipError(cause: unknown, path: string): DatasetError {
  const truncated = (cause as NodeJS.ErrnoException).code === "Z_BUF_ERROR";
  return new DatasetError(
    truncated ? "TRUNCATED" : "CORRUPT",
    path,
    `${truncated ? "truncated" : "corrupt"} gzip data (${(cause as Error).message})`,
    { cause },
  );
}

/**
 * At least the first `need` bytes of a gzip stream (fewer only when it holds fewer), inflating no
 * more than HEADER_PROBE_LIMIT bytes: compressed prefixes grow until their output covers `need`,
 * and shrink (bisection) when a prefix would inflate past the limit.
 */
function gunzipHead(raw: Uint8Array, need: number, path: string): Uint8Array {
  let short = 0; // a prefix length known to give fewer than `need` bytes
  let tooLong = raw.length + 1; // a prefix length known to inflate past the limit
  let length = Math.min(raw.length, 256);
  for (;;) {
    let out: Uint8Array | null = null;
    try {
      out = gunzipSync(raw.subarray(0, length), {
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: HEADER_PROBE_LIMIT,
      });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== "ERR_BUFFER_TOO_LARGE") throw gzipError(cause, path);
    }
    if (out !== null && (out.length >= need || length === raw.length)) return out;
    if (out === null) tooLong = length;
    else short = length;
    length = tooLong > raw.length ? Math.min(raw.length, 2 * length) : Math.floor((short + tooLong) / 2);
    if (length <= short) throw gzipError(new Error("no prefix inflates to the header"), path);
  }
}

/**
 * A gzipped IDX file, inflated to no more than its header declares: a gzip bomb stops at the size
 * of the images it claims, and a claim that its compressed size cannot hold is refused before
 * inflating anything (docs/file-safety.md).
 */
function gunzipIdx(raw: Uint8Array, path: string): Uint8Array {
  const head = gunzipHead(raw, 4, path);
  const rank = head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === UNSIGNED_BYTE ? head[3]! : 0;
  if (rank === 0) return head; // readIdx refuses it, naming what is wrong
  const headerLength = 4 + 4 * rank;
  const header = head.length >= headerLength ? head : gunzipHead(raw, headerLength, path);
  if (header.length < headerLength) return header;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const declared = headerLength + shape.reduce((a, b) => a * b, 1);
  if (declared > raw.length * MAX_DEFLATE_RATIO + HEADER_PROBE_LIMIT) {
    throw new DatasetError(
      "TRUNCATED",
      path,
      `truncated: the IDX header says ${shape.join("×")} bytes, more than ${raw.length} bytes of gzip data can hold`,
    );
  }
  try {
    return gunzipSync(raw, { maxOutputLength: Math.min(Math.max(1, declared), bufferConstants.MAX_LENGTH) });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      throw new DatasetError(
        "CORRUPT",
        path,
        `has trailing data: the IDX header says ${shape.join("×")} = ${declared - headerLength} bytes, the gzip data inflates to more`,
        { cause },
      );
    }
    throw gzipError(cause, path);
  }
}

function readBytes(path: string): Uint8Array {
  const raw = readFileOrThrow(path, "IDX file");
  const gzipped = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  return gzipped ? gunzipIdx(raw, path) : raw;
}

/** Reads an unsigned-byte IDX file, checking its header against its length. */
export function readIdx(path: string): IdxArray {
  const bytes = readBytes(path);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new DatasetError("CORRUPT", path, "not an IDX file (bad magic number)");
  }
  const type = bytes[2];
  const rank = bytes[3] ?? 0;
  if (type !== UNSIGNED_BYTE) {
    throw new DatasetError(
      "CORRUPT",
      path,
      `IDX element type 0x${(type ?? 0).toString(16)} is not supported (only unsigned bytes)`,
    );
  }
  const headerLength = 4 + 4 * rank;
  if (rank === 0) throw new DatasetError("CORRUPT", path, "IDX header with rank 0");
  if (bytes.length < headerLength) throw new DatasetError("TRUNCATED", path, "truncated IDX header");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = shape.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual !== expected) {
    throw new DatasetError(
      actual < expected ? "TRUNCATED" : "CORRUPT",
      path,
      `${actual < expected ? "truncated" : "has trailing data"}: the IDX header says ${shape.join("×")} = ${expected} bytes, the file has ${actual}`,
    );
  }
  return { shape, data: bytes.subarray(headerLength) };
}
