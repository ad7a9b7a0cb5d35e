// The index `moco serve` searches and grows: the files `moco embed` wrote, read once and never
// rewritten, plus `added.log`, an append-only log of the images added since (POST /v1/index).
//
// Why a log and not a rewrite of embeddings.npy: an add then costs one record (id, label, D floats)
// and one fsync, not a rewrite of N×D floats (60 000 × 512 floats is 120 MB per request), and a crash
// can only tear the record being written. Each record is
//   u32 magic "MML1" | u32 payload length | u32 CRC-32 of the payload | payload
//   payload = u32 JSON length | JSON { row, id, label, file } | D float32 (little-endian)
// A request is answered only after its records are written and fsync'ed, so every completed add
// survives a kill -9. At load the log is replayed up to the first record that is short, has a bad
// magic or checksum, or names the wrong row (only the tail can be like that: records are appended in
// order and each is synced before the next request is answered); the file is truncated there so that
// new records follow the last good one.
import { closeSync, existsSync, fsyncSync, ftruncateSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";

import { readNpy } from "../io/index.js";
import { nearestNeighbours } from "../search/search.js";
import { INDEX_FILES, readEmbeddingIndex, type IndexMeta } from "../search/store.js";
import { fromTypedArray, scope, zeros, type Tensor } from "../torch/index.js";
import { IndexLogError } from "./errors.js";

export const ADDED_LOG = "added.log";
/** Where the bytes of added images are kept (thumbnails), named by content hash. */
export const ADDED_DIR = "added";
const MAGIC = 0x314c4d4d; // "MML1" little-endian
const HEADER_BYTES = 12;
/** Search takes the index this many rows at a time, so the similarity matrix stays small. */
const SEARCH_CHUNK_ROWS = 16384;

export interface AddedEntry {
  id: string;
  label: number | null;
  /** The image's file under ADDED_DIR (for thumbnails), or null. */
  file: string | null;
  /** float32 [D], L2-normalised like the index. */
  embedding: Float32Array;
}

interface RecordJson {
  row: number;
  id: string;
  label: number | null;
  file: string | null;
}

export interface Hit {
  row: number;
  score: number;
}

function encodeRecord(record: RecordJson, embedding: Float32Array): Buffer {
  const json = Buffer.from(JSON.stringify(record), "utf8");
  const payload = Buffer.alloc(4 + json.length + embedding.byteLength);
  payload.writeUInt32LE(json.length, 0);
  json.copy(payload, 4);
  Buffer.from(embedding.buffer, embedding.byteOffset, embedding.byteLength).copy(payload, 4 + json.length);
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt32LE(MAGIC, 0);
  header.writeUInt32LE(payload.length, 4);
  header.writeUInt32LE(crc32(payload), 8);
  return Buffer.concat([header, payload]);
}

interface Replayed {
  records: { json: RecordJson; embedding: Float32Array }[];
  /** Bytes of intact records; anything after is a torn tail. */
  goodBytes: number;
  totalBytes: number;
}

/** Reads the log's intact records; `firstRow` is the row the first record must have. */
export function replayLog(path: string, firstRow: number, dim: number): Replayed {
  const bytes = existsSync(path) ? readFileSync(path) : Buffer.alloc(0);
  const records: Replayed["records"] = [];
  let offset = 0;
  while (offset + HEADER_BYTES <= bytes.length) {
    if (bytes.readUInt32LE(offset) !== MAGIC) break;
    const length = bytes.readUInt32LE(offset + 4);
    const end = offset + HEADER_BYTES + length;
    if (length < 4 || end > bytes.length) break;
    const payload = bytes.subarray(offset + HEADER_BYTES, end);
    if (crc32(payload) !== bytes.readUInt32LE(offset + 8)) break;
    const jsonLength = payload.readUInt32LE(0);
    if (4 + jsonLength + dim * 4 !== payload.length) break;
    let json: RecordJson;
    try {
      json = JSON.parse(payload.subarray(4, 4 + jsonLength).toString("utf8")) as RecordJson;
    } catch {
      break;
    }
    if (json.row !== firstRow + records.length || typeof json.id !== "string") break;
    // Copied: the embedding must be 4-byte aligned and outlive the file's buffer.
    const embedding = new Float32Array(dim);
    new Uint8Array(embedding.buffer).set(payload.subarray(4 + jsonLength));
    records.push({ json, embedding });
    offset = end;
  }
  return { records, goodBytes: offset, totalBytes: bytes.length };
}

export class LiveIndex {
  readonly dir: string;
  readonly meta: IndexMeta;
  readonly ids: string[];
  /** Class index per row, or null (unlabeled index, or an image added without one). */
  readonly labels: (number | null)[];
  /** Rows added through the log: their stored image file under ADDED_DIR, if any. */
  readonly addedFiles = new Map<number, string>();
  /** Rows that came from `moco embed` (the rest came from the log). */
  readonly baseCount: number;
  #rowById = new Map<string, number>();
  /** float32 [capacity, D]; rows [0, count) are the index. */
  #buffer: Tensor;
  #count = 0;
  #log: number | null = null;
  #version = 0;

  private constructor(dir: string, meta: IndexMeta, ids: string[], labels: (number | null)[], buffer: Tensor) {
    this.dir = dir;
    this.meta = meta;
    this.ids = ids;
    this.labels = labels;
    this.#buffer = buffer;
    this.#count = ids.length;
    this.baseCount = ids.length;
    ids.forEach((id, row) => {
      if (!this.#rowById.has(id)) this.#rowById.set(id, row);
    });
  }

  /** Opens an index folder and replays its log; `onNote` hears about a torn tail it dropped. */
  static open(dir: string, onNote: (line: string) => void = () => undefined): LiveIndex {
    const base = readEmbeddingIndex(dir);
    let live: LiveIndex;
    try {
      const labelsPath = join(dir, INDEX_FILES.labels);
      let labels: (number | null)[] = base.ids.map(() => null);
      if (existsSync(labelsPath)) {
        const tensor = readNpy(labelsPath);
        try {
          labels = tensor.toArray();
        } finally {
          tensor.dispose();
        }
      }
      const count = base.ids.length;
      const dim = base.meta.dim;
      const logPath = join(dir, ADDED_LOG);
      const replayed = replayLog(logPath, count, dim);
      const total = count + replayed.records.length;
      const capacity = Math.max(total + 1024, Math.ceil(total * 1.25));
      const buffer = zeros([capacity, dim]);
      scope(() => buffer.narrow(0, 0, count).copy_(base.embeddings));
      live = new LiveIndex(dir, base.meta, [...base.ids], labels, buffer);
      for (const { json, embedding } of replayed.records) live.#append(json, embedding);
      if (replayed.goodBytes < replayed.totalBytes)
        onNote(
          `${logPath}: dropped a torn record at its end (${replayed.totalBytes - replayed.goodBytes} bytes after ` +
            `${replayed.records.length} intact records; that request had not completed)`,
        );
      try {
        live.#log = openSync(logPath, "a");
        // Drops the torn tail, so that the next record follows the last intact one.
        if (replayed.goodBytes < replayed.totalBytes) ftruncateSync(live.#log, replayed.goodBytes);
      } catch (error) {
        live.dispose();
        throw new IndexLogError(`${logPath}: cannot open for appending: ${(error as Error).message}`, { cause: error });
      }
      if (replayed.records.length > 0) onNote(`${logPath}: ${replayed.records.length} added images replayed`);
    } finally {
      base.dispose();
    }
    return live;
  }

  get count(): number {
    return this.#count;
  }

  get dim(): number {
    return this.meta.dim;
  }

  /** Grows by one on every add: caches derived from the rows (the 2-D map) compare it. */
  get version(): number {
    return this.#version;
  }

  rowOf(id: string): number | null {
    return this.#rowById.get(id) ?? null;
  }

  /** The stored embedding of a row. */
  vector(row: number): Float32Array {
    return scope(() => this.#buffer.select(0, row).toTypedArray<"float32">().slice());
  }

  /** float32 [count, D] view of the rows, for use inside a scope. */
  rows(): Tensor {
    return this.#buffer.narrow(0, 0, this.#count);
  }

  /** The k best rows for each query (float32 [Q·D], L2-normalised), by cosine similarity. */
  search(queries: Float32Array, k: number): Hit[][] {
    const q = queries.length / this.dim;
    return scope(() => {
      const found = nearestNeighbours(
        fromTypedArray(queries, [q, this.dim]),
        this.rows(),
        Math.min(k, this.#count),
        SEARCH_CHUNK_ROWS,
      );
      try {
        const rows = found.indices.toArray();
        const scores = found.similarities.toArray();
        const width = found.indices.shape[1] ?? 0;
        return Array.from({ length: q }, (_, i) =>
          Array.from({ length: width }, (_, j) => ({
            row: rows[i * width + j] as number,
            score: scores[i * width + j] as number,
          })),
        );
      } finally {
        found.indices.dispose();
        found.similarities.dispose();
      }
    });
  }

  /**
   * Appends images: written to the log and fsync'ed before the rows join the index, so a returned
   * call is durable. Returns their rows.
   */
  add(entries: readonly AddedEntry[]): number[] {
    if (this.#log === null) throw new IndexLogError(`${join(this.dir, ADDED_LOG)}: the index is closed`);
    const records = entries.map((entry, i) => {
      if (entry.embedding.length !== this.dim)
        throw new RangeError(`add: embedding of ${entry.embedding.length} values, the index has dimension ${this.dim}`);
      const json: RecordJson = { row: this.#count + i, id: entry.id, label: entry.label, file: entry.file };
      return { json, embedding: entry.embedding, bytes: encodeRecord(json, entry.embedding) };
    });
    const bytes = Buffer.concat(records.map((r) => r.bytes));
    for (let done = 0; done < bytes.length;) done += writeSync(this.#log, bytes, done);
    fsyncSync(this.#log);
    return records.map((r) => this.#append(r.json, r.embedding));
  }

  #append(json: RecordJson, embedding: Float32Array): number {
    const row = this.#count;
    const capacity = this.#buffer.shape[0] ?? 0;
    if (row >= capacity) {
      const grown = zeros([capacity * 2, this.dim]);
      scope(() => grown.narrow(0, 0, row).copy_(this.#buffer.narrow(0, 0, row)));
      this.#buffer.dispose();
      this.#buffer = grown;
    }
    scope(() => this.#buffer.select(0, row).copy_(fromTypedArray(embedding, [this.dim])));
    this.ids.push(json.id);
    this.labels.push(json.label);
    if (json.file !== null) this.addedFiles.set(row, json.file);
    if (!this.#rowById.has(json.id)) this.#rowById.set(json.id, row);
    this.#count = row + 1;
    this.#version += 1;
    return row;
  }

  dispose(): void {
    if (this.#log !== null) closeSync(this.#log);
    this.#log = null;
    this.#buffer.dispose();
  }
}
