// The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a 4-byte magic
// (0, 0, type, rank), rank big-endian u32 sizes, then the elements. Gzipped files are accepted.
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

export interface IdxArray {
  shape: number[];
  /** The raw elements (uint8 for image and label files). */
  data: Uint8Array;
}

const UNSIGNED_BYTE = 0x08;

function readBytes(path: string): Uint8Array {
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (cause) {
    throw new Error(`IDX file ${path}: ${(cause as NodeJS.ErrnoException).code === "ENOENT" ? "not found" : (cause as Error).message}`, {
      cause,
    });
  }
  const gzipped = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b;
  if (!gzipped) return raw;
  try {
    return gunzipSync(raw);
  } catch (cause) {
    throw new Error(`IDX file ${path}: corrupt or truncated gzip data (${(cause as Error).message})`, { cause });
  }
}

/** Reads an unsigned-byte IDX file, checking its header against its length. */
export function readIdx(path: string): IdxArray {
  const bytes = readBytes(path);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new Error(`IDX file ${path}: not an IDX file (bad magic number)`);
  }
  const type = bytes[2];
  const rank = bytes[3] ?? 0;
  if (type !== UNSIGNED_BYTE) {
    throw new Error(`IDX file ${path}: element type 0x${(type ?? 0).toString(16)} is not supported (only unsigned bytes)`);
  }
  const headerLength = 4 + 4 * rank;
  if (rank === 0 || bytes.length < headerLength) throw new Error(`IDX file ${path}: truncated header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i, false));
  const expected = shape.reduce((a, b) => a * b, 1);
  const actual = bytes.length - headerLength;
  if (actual !== expected) {
    throw new Error(
      `IDX file ${path}: ${actual < expected ? "truncated" : "has trailing data"}: header says ${shape.join("×")} = ${expected} bytes, file has ${actual}`,
    );
  }
  return { shape, data: bytes.subarray(headerLength) };
}
