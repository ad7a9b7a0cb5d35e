// A protocol-2 pickler for the values a checkpoint holds, emitting what Python's pickler emits for
// the same objects under torch.save (protocol 2 is torch.save's default and what every torch
// release loads): tensors as persistent ids plus torch._utils._rebuild_tensor_v2, bytes through
// _codecs.encode, containers memoized so that shared and cyclic references survive.
import { OP } from "./opcodes.js";

/** Everything the pickler writes for one tensor; the caller has already planned its storage record. */
export interface TensorRecord {
  /** The storage class's name without `torch.`, e.g. "FloatStorage". */
  readonly storageType: string;
  readonly key: string;
  /** Elements in the storage record (of the storage's dtype). */
  readonly storageNumel: number;
  readonly storageOffset: number;
  readonly size: readonly number[];
  readonly stride: readonly number[];
  readonly requiresGrad: boolean;
}

export interface PickleHooks {
  /** The record for `value` when it is a tensor; undefined for anything else. */
  tensorRecord(value: object): TensorRecord | undefined;
}

const BATCH = 1000; // items per APPENDS/SETITEMS, as CPython batches them

class ByteWriter {
  private buffer = new Uint8Array(1024);
  private view = new DataView(this.buffer.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buffer.length) return;
    let capacity = this.buffer.length * 2;
    while (capacity < this.length + n) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
    this.view = new DataView(next.buffer);
  }

  u8(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  u16(value: number): void {
    this.reserve(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  i32(value: number): void {
    this.reserve(4);
    this.view.setInt32(this.length, value, true);
    this.length += 4;
  }

  u32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
  }

  f64BigEndian(value: number): void {
    this.reserve(8);
    this.view.setFloat64(this.length, value, false);
    this.length += 8;
  }

  bytes(data: Uint8Array): void {
    this.reserve(data.length);
    this.buffer.set(data, this.length);
    this.length += data.length;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

const utf8 = new TextEncoder();

/** LONG1/LONG4 payload: minimal little-endian two's complement, as Python's encode_long. */
export function encodeLong(value: bigint): Uint8Array {
  if (value === 0n) return new Uint8Array(0);
  const magnitude = value < 0n ? -value : value;
  const nbytes = (magnitude.toString(2).length >> 3) + 1;
  let twos = value < 0n ? (1n << BigInt(8 * nbytes)) + value : value;
  const out = new Uint8Array(nbytes);
  for (let i = 0; i < nbytes; i++) {
    out[i] = Number(twos & 0xffn);
    twos >>= 8n;
  }
  if (value < 0n && nbytes > 1 && out[nbytes - 1] === 0xff && (out[nbytes - 2]! & 0x80) !== 0) {
    return out.subarray(0, nbytes - 1);
  }
  return out;
}

function isPlainObject(value: object): value is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
}

class Pickler {
  private readonly out = new ByteWriter();
  private readonly memo = new Map<object, number>();
  private readonly globalMemo = new Map<string, number>();
  private memoSize = 0;

  constructor(
    private readonly hooks: PickleHooks,
    private readonly op: string,
  ) {}

  run(value: unknown): Uint8Array {
    this.out.u8(OP.PROTO);
    this.out.u8(2);
    this.save(value, "value");
    this.out.u8(OP.STOP);
    return this.out.result();
  }

  private fail(where: string, what: string, why = ""): never {
    throw new TypeError(`${this.op}: cannot save ${what} at ${where}${why === "" ? "" : `: ${why}`}`);
  }

  private save(value: unknown, where: string): void {
    switch (typeof value) {
      case "undefined":
        return this.out.u8(OP.NONE);
      case "boolean":
        return this.out.u8(value ? OP.NEWTRUE : OP.NEWFALSE);
      case "number":
        // Safe integers are Python ints (so that 0 stays usable as a key); anything else a float.
        return Number.isSafeInteger(value) ? this.saveInt(BigInt(value)) : this.saveFloat(value);
      case "bigint":
        return this.saveInt(value);
      case "string":
        return this.saveString(value);
      case "object":
        if (value === null) return this.out.u8(OP.NONE);
        return this.saveObject(value, where);
      default:
        this.fail(where, `a ${typeof value}`);
    }
  }

  private saveObject(value: object, where: string): void {
    const memoIndex = this.memo.get(value);
    if (memoIndex !== undefined) return this.get(memoIndex);
    const record = this.hooks.tensorRecord(value);
    if (record !== undefined) {
      this.saveTensor(record);
      this.put(value);
      return;
    }
    if (value instanceof Uint8Array) {
      this.saveBytes(value);
      this.put(value);
      return;
    }
    if (Array.isArray(value)) return this.saveList(value as unknown[], where);
    if (value instanceof Map) return this.saveMap(value as Map<unknown, unknown>, where);
    if (isPlainObject(value)) return this.saveDict(value, where);
    this.fail(
      where,
      `a ${describe(value)}`,
      "only tensors, numbers, bigints, strings, booleans, null, Uint8Array, arrays, Maps and plain objects can be saved",
    );
  }

  // --- scalars ---------------------------------------------------------------------------------

  private saveInt(value: bigint): void {
    if (value >= 0n && value <= 0xffn) {
      this.out.u8(OP.BININT1);
      this.out.u8(Number(value));
    } else if (value >= 0n && value <= 0xffffn) {
      this.out.u8(OP.BININT2);
      this.out.u16(Number(value));
    } else if (value >= -(2n ** 31n) && value < 2n ** 31n) {
      this.out.u8(OP.BININT);
      this.out.i32(Number(value));
    } else {
      const payload = encodeLong(value);
      if (payload.length < 256) {
        this.out.u8(OP.LONG1);
        this.out.u8(payload.length);
      } else {
        this.out.u8(OP.LONG4);
        this.out.u32(payload.length);
      }
      this.out.bytes(payload);
    }
  }

  private saveFloat(value: number): void {
    this.out.u8(OP.BINFLOAT);
    this.out.f64BigEndian(value);
  }

  private saveString(value: string): void {
    const encoded = utf8.encode(value);
    this.out.u8(OP.BINUNICODE);
    this.out.u32(encoded.length);
    this.out.bytes(encoded);
  }

  /** Protocol 2 has no bytes opcode; Python writes _codecs.encode(<latin-1 text>, 'latin1'). */
  private saveBytes(value: Uint8Array): void {
    if (value.length === 0) {
      this.saveGlobal("__builtin__", "bytes");
      this.out.u8(OP.EMPTY_TUPLE);
      this.out.u8(OP.REDUCE);
      return;
    }
    this.saveGlobal("_codecs", "encode");
    this.saveString(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1"));
    this.saveString("latin1");
    this.out.u8(OP.TUPLE2);
    this.out.u8(OP.REDUCE);
  }

  // --- containers ------------------------------------------------------------------------------

  private saveList(items: readonly unknown[], where: string): void {
    this.out.u8(OP.EMPTY_LIST);
    this.put(items);
    for (let start = 0; start < items.length; start += BATCH) {
      this.out.u8(OP.MARK);
      const end = Math.min(items.length, start + BATCH);
      for (let i = start; i < end; i++) this.save(items[i], `${where}[${i}]`);
      this.out.u8(OP.APPENDS);
    }
  }

  private saveDict(object: Record<string, unknown>, where: string): void {
    this.out.u8(OP.EMPTY_DICT);
    this.put(object);
    this.saveItems(
      Object.keys(object).map((key) => [key, object[key]] as const),
      where,
    );
  }

  private saveMap(map: Map<unknown, unknown>, where: string): void {
    this.out.u8(OP.EMPTY_DICT);
    this.put(map);
    for (const key of map.keys()) {
      if (typeof key !== "string" && typeof key !== "number") {
        this.fail(where, `a Map key of type ${typeof key}`, "Map keys must be strings or numbers");
      }
    }
    this.saveItems([...map.entries()] as [string | number, unknown][], where);
  }

  private saveItems(entries: readonly (readonly [string | number, unknown])[], where: string): void {
    for (let start = 0; start < entries.length; start += BATCH) {
      this.out.u8(OP.MARK);
      for (const [key, item] of entries.slice(start, start + BATCH)) {
        this.save(key, `${where} key`);
        this.save(
          item,
          typeof key === "string" && /^[A-Za-z_$][\w$]*$/.test(key)
            ? `${where}.${key}`
            : `${where}[${JSON.stringify(key)}]`,
        );
      }
      this.out.u8(OP.SETITEMS);
    }
  }

  private saveTuple(items: readonly (() => void)[]): void {
    if (items.length === 0) return this.out.u8(OP.EMPTY_TUPLE);
    const short = [OP.TUPLE1, OP.TUPLE2, OP.TUPLE3][items.length - 1];
    if (short === undefined) this.out.u8(OP.MARK);
    for (const item of items) item();
    this.out.u8(short ?? OP.TUPLE);
  }

  private saveIntTuple(values: readonly number[]): void {
    this.saveTuple(values.map((v) => () => this.saveInt(BigInt(v))));
  }

  // --- tensors ---------------------------------------------------------------------------------

  /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()) */
  private saveTensor(record: TensorRecord): void {
    this.saveGlobal("torch._utils", "_rebuild_tensor_v2");
    this.saveTuple([
      () => {
        // persistent id: ('storage', torch.<T>Storage, key, location, numel)
        this.saveTuple([
          () => this.saveString("storage"),
          () => this.saveGlobal("torch", record.storageType),
          () => this.saveString(record.key),
          () => this.saveString("cpu"),
          () => this.saveInt(BigInt(record.storageNumel)),
        ]);
        this.out.u8(OP.BINPERSID);
      },
      () => this.saveInt(BigInt(record.storageOffset)),
      () => this.saveIntTuple(record.size),
      () => this.saveIntTuple(record.stride),
      () => this.out.u8(record.requiresGrad ? OP.NEWTRUE : OP.NEWFALSE),
      () => {
        this.saveGlobal("collections", "OrderedDict");
        this.out.u8(OP.EMPTY_TUPLE);
        this.out.u8(OP.REDUCE);
      },
    ]);
    this.out.u8(OP.REDUCE);
  }

  // --- memo ------------------------------------------------------------------------------------

  private saveGlobal(module: string, name: string): void {
    const qualified = `${module}\n${name}\n`;
    const index = this.globalMemo.get(qualified);
    if (index !== undefined) return this.get(index);
    this.out.u8(OP.GLOBAL);
    this.out.bytes(utf8.encode(qualified));
    this.globalMemo.set(qualified, this.memoSize);
    this.emitPut();
  }

  private put(value: object): void {
    this.memo.set(value, this.memoSize);
    this.emitPut();
  }

  private emitPut(): void {
    const index = this.memoSize++;
    if (index < 256) {
      this.out.u8(OP.BINPUT);
      this.out.u8(index);
    } else {
      this.out.u8(OP.LONG_BINPUT);
      this.out.u32(index);
    }
  }

  private get(index: number): void {
    if (index < 256) {
      this.out.u8(OP.BINGET);
      this.out.u8(index);
    } else {
      this.out.u8(OP.LONG_BINGET);
      this.out.u32(index);
    }
  }
}

/**
 * Pickles `value` (protocol 2). Tensors are recognised and described by `hooks`; anything that
 * is not a checkpoint value throws a TypeError naming `op` and where in `value` it sits.
 */
export function pickle(value: unknown, hooks: PickleHooks, op = "save"): Uint8Array {
  return new Pickler(hooks, op).run(value);
}
