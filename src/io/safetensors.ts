// safetensors files (Hugging Face's format for tensors: a JSON header and raw data, nothing
// executable), read and written whole, or written a batch of rows at a time for arrays too big to
// hold (embeddings of a whole dataset). The header's layout and checks are in safetensors-header.ts.
import { Tensor, fromBytes } from "../torch/index.js";
import { AtomicFile } from "../util/atomic-file.js";
import { InputFile } from "./input-file.js";
import { RowFile } from "./row-file.js";
import {
  LENGTH_BYTES,
  MAX_HEADER_BYTES,
  compareNames,
  decodeHeader,
  dtypeOfSafetensors,
  encodeHeader,
  isSafetensorsDType,
  layOut,
  type SafetensorsDType,
} from "./safetensors-header.js";
import { checkMetadata, checkRowCount, checkTensor } from "./checks.js";

export type { SafetensorsDType } from "./safetensors-header.js";

/**
 * Writes `tensors` to `path` as a safetensors file, with optional string `metadata`
 * ("__metadata__"). Tensors are written contiguous, from the CPU, in the reference
 * implementation's order; the file appears at `path` only once complete.
 */
export function writeSafetensors(
  path: string,
  tensors: Iterable<[string, Tensor]> | Map<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  const op = "writeSafetensors";
  const named = new Map<string, Tensor>();
  for (const pair of tensors) {
    const [name, tensor] = Array.isArray(pair) ? pair : [undefined, undefined];
    if (typeof name !== "string") throw new TypeError(`${op}: tensors must be [name, Tensor] pairs with string names`);
    if (name === "__metadata__") throw new TypeError(`${op}: "__metadata__" is reserved and cannot name a tensor`);
    if (named.has(name)) throw new TypeError(`${op}: two tensors are named '${name}'`);
    named.set(name, checkTensor(tensor, `tensor '${name}'`, op));
  }
  if (metadata !== undefined) checkMetadata(metadata, op);
  const entries = layOut([...named].map(([name, tensor]) => ({ name, dtype: tensor.dtype, shape: tensor.shape })));
  const file = AtomicFile.create(path, op);
  try {
    file.write(encodeHeader(entries, metadata));
    for (const entry of entries) file.write(named.get(entry.name)!.toBytes());
    file.commit();
  } catch (error) {
    file.abort();
    throw error;
  }
}

/**
 * Reads a safetensors file: its tensors (new CPU tensors, owned by the caller, sorted by name)
 * and its metadata. The header is checked strictly before any tensor is made.
 */
export function readSafetensors(path: string): { tensors: Map<string, Tensor>; metadata: Record<string, string> } {
  const file = InputFile.open(path, "readSafetensors");
  const tensors = new Map<string, Tensor>();
  try {
    const fail = (message: string): never => {
      throw file.error(message);
    };
    const length = Buffer.from(file.read(0, LENGTH_BYTES, "the header length")).readBigUInt64LE(0);
    if (length > BigInt(MAX_HEADER_BYTES)) {
      fail(`the header length ${length} is over the limit of ${MAX_HEADER_BYTES} bytes; not a safetensors file?`);
    }
    const headerBytes = file.read(LENGTH_BYTES, Number(length), "the header");
    const dataStart = LENGTH_BYTES + Number(length);
    const { entries, metadata } = decodeHeader(new TextDecoder().decode(headerBytes), file.size - dataStart, fail);
    const byName = [...entries].sort((a, b) => compareNames(a.name, b.name));
    for (const { name, dtype, shape, begin, end } of byName) {
      tensors.set(name, fromBytes(file.read(dataStart + begin, end - begin, `tensor '${name}'`), dtype, shape));
    }
    return { tensors, metadata };
  } catch (error) {
    for (const tensor of tensors.values()) tensor.dispose();
    throw error;
  } finally {
    file.close();
  }
}

export interface SafetensorsRowWriterOptions {
  /** The tensor's name in the file. */
  readonly name: string;
  /** Rows the tensor will have; `close` checks that exactly these many were appended. */
  readonly rows: number;
  readonly cols: number;
  /** Default "F32". */
  readonly dtype?: SafetensorsDType;
  readonly metadata?: Record<string, string>;
}

/**
 * Writes one 2-D tensor [rows, cols] whose row count is known in advance, a batch of rows at a
 * time, straight to the file, so that memory stays bounded whatever the size. The file appears at
 * its path only on `close`; `abort` (or leaving a `using` block without `close`) discards it.
 */
export class SafetensorsRowWriter extends RowFile {
  private readonly rows: number;

  constructor(path: string, options: SafetensorsRowWriterOptions) {
    const op = "SafetensorsRowWriter";
    const { name, rows, cols, dtype = "F32", metadata } = options;
    if (typeof name !== "string" || name === "__metadata__") {
      throw new TypeError(`${op}: name must be a string other than "__metadata__", got ${String(name)}`);
    }
    checkRowCount(rows, "rows", op);
    checkRowCount(cols, "cols", op);
    if (!isSafetensorsDType(dtype)) throw new TypeError(`${op}: unknown dtype ${String(dtype)}`);
    if (metadata !== undefined) checkMetadata(metadata, op);
    const header = encodeHeader(layOut([{ name, dtype: dtypeOfSafetensors(dtype), shape: [rows, cols] }]), metadata);
    const file = AtomicFile.create(path, op);
    file.write(header);
    super(file, op, cols, dtypeOfSafetensors(dtype), { rows, of: `'${name}'` });
    this.rows = rows;
  }

  /** Checks that every declared row was written and puts the file in place. */
  close(): void {
    const op = `SafetensorsRowWriter.close (${this.file.path})`;
    this.checkOpen(op);
    if (this.rowsWritten !== this.rows) {
      this.abort();
      throw new Error(
        `${op}: only ${this.rowsWritten} of the ${this.rows} declared rows were written; the file was discarded`,
      );
    }
    this.file.commit();
  }
}
