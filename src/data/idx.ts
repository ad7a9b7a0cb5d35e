// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// (0, 0, type, rank), rank big-endian u32 sizes, then the elements. Gzipped files are accepted
// (recognised by their magic bytes, whatever the file name).
import { gunzipSync } from "node:zlib";

import { DatasetError } from "./dataset.js";
import { readFileOrThrow } from "./files.js";

export interface IdxArray {
  shape: number[];
  /** The raw elements (uint8 for image and label files). */
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

function readBytes(path: string): Uint8Array {
  const raw = readFileOrThrow(path, "IDX file");
  const gzipped = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (!gzipped) return raw;
  try {
    return gunzipSync(raw);
  } catch (cause) {
    const truncated = (cause as NodeJS.ErrnoException).code === "Z_BUF_ERROR";
    throw new DatasetError(
      truncated ? "TRUNCATED" : "CORRUPT",
      path,
      `${truncated ? "truncated" : "corrupt"} gzip data (${(cause as Error).message})`,
      { cause },
    );
  }
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
