// Reads back what an ONNX file says about itself without an ONNX runtime: ModelProto's
// metadata_props (field 14, StringStringEntryProto {key = 1, value = 2}), and from them the input
// the encoder expects. A small protobuf walk: top-level fields are skipped by wire type, so the
// (large) graph is never decoded.
import { readFileSync } from "node:fs";

import { inputFromMetadata, type EncoderInput } from "../../encoder/input.js";
import { MocoError } from "../../errors.js";

export class OnnxFormatError extends MocoError {
  override name = "OnnxFormatError";
  constructor(message: string) {
    super("ERR_ONNX_FORMAT", message);
  }
}

class Reader {
  at = 0;
  constructor(
    readonly bytes: Uint8Array,
    readonly where: string,
  ) {}

  get done(): boolean {
    return this.at >= this.bytes.length;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.at >= this.bytes.length) throw new OnnxFormatError(`${this.where}: truncated varint`);
      const byte = this.bytes[this.at++] as number;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new OnnxFormatError(`${this.where}: varint longer than 10 bytes`);
  }

  bytesField(): Uint8Array {
    const length = this.varint();
    if (this.at + length > this.bytes.length)
      throw new OnnxFormatError(`${this.where}: a field of ${length} bytes runs past the end`);
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.at += 8;
    else if (wireType === 2) this.bytesField();
    else if (wireType === 5) this.at += 4;
    else throw new OnnxFormatError(`${this.where}: unsupported protobuf wire type ${wireType}`);
    if (this.at > this.bytes.length) throw new OnnxFormatError(`${this.where}: truncated field`);
  }
}

/** ModelProto.metadata_props of an .onnx file (or its bytes), as a record. */
export function readOnnxMetadata(source: string | Uint8Array): Record<string, string> {
  const where = typeof source === "string" ? source : "ONNX bytes";
  const reader = new Reader(typeof source === "string" ? readFileSync(source) : source, where);
  const metadata: Record<string, string> = {};
  const text = new TextDecoder("utf-8", { fatal: true });
  while (!reader.done) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field !== 14 || wireType !== 2) {
      reader.skip(wireType);
      continue;
    }
    const entry = new Reader(reader.bytesField(), where);
    let key = "";
    let value = "";
    while (!entry.done) {
      const t = entry.varint();
      if (t === (1 << 3) + 2) key = text.decode(entry.bytesField());
      else if (t === (2 << 3) + 2) value = text.decode(entry.bytesField());
      else entry.skip(t % 8);
    }
    metadata[key] = value;
  }
  return metadata;
}

/** The input an ONNX export of ours declares in its metadata (null for files from other tools). */
export function readOnnxInput(source: string | Uint8Array): EncoderInput | null {
  return inputFromMetadata(readOnnxMetadata(source), typeof source === "string" ? source : "ONNX bytes");
}
