// NumPy .npy files (version 1.0 written as numpy writes it; 1.0–3.0 read): one little-endian,
// C-ordered array each. The header's layout is in npy-header.ts.
import { DTYPES, Tensor, fromBytes, type DType } from "../torch/index.js";
import { AtomicFile } from "../util/atomic-file.js";
import { checkRowCount, checkTensor } from "./checks.js";
import { InputFile } from "./input-file.js";
import { RowFile } from "./row-file.js";
import {
  PREAMBLE_BYTES,
  decodeNpyDict,
  descrOf,
  encodeNpyHeader,
  readPreamble,
  supportedNpyDtypes,
} from "./npy-header.js";

/** numpy's type string for `dtype`, or an error saying that numpy has no such type. */
function descrFor(dtype: DType, op: string): string {
  const descr = descrOf(dtype);
  if (descr === undefined) {
    throw new TypeError(`${op}: numpy has no ${dtype} type (supported: ${supportedNpyDtypes()}); convert first`);
  }
  return descr;
}

/** Writes `tensor` to `path` as a .npy file (C order, from the CPU); the file appears only once complete. */
export function writeNpy(path: string, tensor: Tensor): void {
  const op = "writeNpy";
  checkTensor(tensor, "tensor", op);
  const header = encodeNpyHeader(descrFor(tensor.dtype, op), tensor.shape);
  const file = AtomicFile.create(path, op);
  try {
    file.write(header);
    file.write(tensor.toBytes());
    file.commit();
  } catch (error) {
    file.abort();
    throw error;
  }
}

/** Reads a .npy file into a new CPU tensor (owned by the caller). */
export function readNpy(path: string): Tensor {
  const file = InputFile.open(path, "readNpy");
  try {
    const fail = (message: string): never => {
      throw file.error(message);
    };
    const { lengthBytes, encoding } = readPreamble(file.read(0, PREAMBLE_BYTES, "the .npy preamble"), fail);
    const lengthField = Buffer.from(file.read(PREAMBLE_BYTES, lengthBytes, "the header length"));
    const headerLength = lengthBytes === 2 ? lengthField.readUInt16LE(0) : lengthField.readUInt32LE(0);
    const dataStart = PREAMBLE_BYTES + lengthBytes + headerLength;
    const text = Buffer.from(file.read(PREAMBLE_BYTES + lengthBytes, headerLength, "the header")).toString(encoding);
    const { dtype, shape } = decodeNpyDict(text, fail);
    const byteLength = shape.reduce((n, size) => n * size, DTYPES[dtype].bytes);
    const data = file.read(dataStart, byteLength, `the data of shape [${shape.join(", ")}]`);
    if (file.size > dataStart + byteLength) {
      fail(`${file.size - dataStart - byteLength} bytes follow the array; readNpy reads files of one array`);
    }
    return fromBytes(data, dtype, shape);
  } finally {
    file.close();
  }
}

export interface NpyRowWriterOptions {
  readonly cols: number;
  /** Default "float32". */
  readonly dtype?: DType;
}

/**
 * Writes a 2-D array [rows, cols] a batch of rows at a time, straight to the file, when the row
 * count is not known in advance: the header is rewritten with the count on `close` (numpy leaves
 * room for that). The file appears at its path only on `close`; `abort` (or leaving a `using`
 * block without `close`) discards it.
 */
export class NpyRowWriter extends RowFile {
  private readonly descr: string;
  private readonly columns: number;

  constructor(path: string, options: NpyRowWriterOptions) {
    const op = "NpyRowWriter";
    const cols = checkRowCount(options.cols, "cols", op);
    const dtype = options.dtype ?? "float32";
    const descr = descrFor(dtype, op);
    const file = AtomicFile.create(path, op);
    file.write(encodeNpyHeader(descr, [0, cols]));
    super(file, op, cols, dtype, null);
    this.descr = descr;
    this.columns = cols;
  }

  /** Writes the final row count into the header and puts the file in place. */
  close(): void {
    this.checkOpen(`NpyRowWriter.close (${this.file.path})`);
    // Same length as the placeholder: numpy pads the first dimension's digits to a fixed width.
    this.file.writeAt(encodeNpyHeader(this.descr, [this.rowsWritten, this.columns]), 0);
    this.file.commit();
  }
}
