// The few protocol-buffers wire-format primitives an ONNX file needs (developers.google.com/protocol-buffers
// /docs/encoding): varints, 32-bit floats and length-delimited fields. A message is built as a list
// of parts, nested messages included by reference, and flattened once at the end, so that megabytes
// of weights are copied once rather than once per nesting level.

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const utf8 = new TextEncoder();

/** The varint bytes of a non-negative safe integer, or of a negative one as its 64-bit two's complement. */
function varintBytes(value: number, out: number[]): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf: ${value} is not a safe integer`);
  if (value < 0) {
    // Bitwise operators truncate to 32 bits; int64 needs the full 10-byte form.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    return;
  }
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** One protobuf message under construction; fields are written in call order. */
export class ProtoMessage {
  private readonly parts: (Uint8Array | ProtoMessage)[] = [];
  /** Small bytes not yet moved into `parts`, so that each varint does not become an array of its own. */
  private pending: number[] = [];
  private partsLength = 0;

  /** The encoded size in bytes. */
  get byteLength(): number {
    return this.partsLength + this.pending.length;
  }

  private tag(field: number, wireType: number): void {
    varintBytes(field * 8 + wireType, this.pending);
  }

  private flush(): void {
    if (this.pending.length === 0) return;
    this.parts.push(Uint8Array.from(this.pending));
    this.partsLength += this.pending.length;
    this.pending = [];
  }

  /** An int32/int64/enum field (negative values as 64-bit two's complement, as protobuf does). */
  int(field: number, value: number): this {
    this.tag(field, WIRE_VARINT);
    varintBytes(value, this.pending);
    return this;
  }

  /** A `float` field (IEEE 754 single precision, little-endian). */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setFloat32(0, value, true);
    this.pending.push(...bytes);
    return this;
  }

  /** A `bytes` field; the array is referenced, not copied, until toBytes(). */
  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    varintBytes(data.byteLength, this.pending);
    this.flush();
    this.parts.push(data);
    this.partsLength += data.byteLength;
    return this;
  }

  /** A `string` field, UTF-8. */
  string(field: number, value: string): this {
    return this.bytes(field, utf8.encode(value));
  }

  /** An embedded-message field; `message` must not change afterwards (its length is taken now). */
  message(field: number, message: ProtoMessage): this {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    varintBytes(message.byteLength, this.pending);
    this.flush();
    this.parts.push(message);
    this.partsLength += message.byteLength;
    return this;
  }

  /** The encoded message. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    this.writeInto(out, 0);
    return out;
  }

  private writeInto(out: Uint8Array, offset: number): number {
    let at = offset;
    for (const part of this.parts) {
      if (part instanceof ProtoMessage) at = part.writeInto(out, at);
      else {
        out.set(part, at);
        at += part.byteLength;
      }
    }
    out.set(this.pending, at);
    return at + this.pending.length;
  }
}
