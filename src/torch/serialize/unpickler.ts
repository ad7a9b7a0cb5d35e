// A strict unpickler for torch.save's pickles (a zip checkpoint's data.pkl, a legacy file's
// stream). Python's pickle runs whatever callable a file names; this one runs nothing. GLOBAL
// resolves only names on a short allowlist (containers, tensor rebuilders, storage type markers)
// and REDUCE/NEWOBJ/BUILD apply our own implementation of those few names, so a malicious
// checkpoint can at worst make loading fail.
import { HIGHEST_PROTOCOL, OP } from "./opcodes.js";
import { MocoError, type MocoErrorOptions } from "../../errors.js";

/** What a torch persistent id names: one storage, `data/<key>` in a zip checkpoint. */
export interface StorageRef {
  /** The storage class's name without `torch.`, e.g. "FloatStorage". */
  readonly storageType: string;
  readonly key: string;
  /** Where the storage lived when saved, e.g. "cpu" or "cuda:0" (informational). */
  readonly location: string;
  /** Number of elements of the storage's dtype. */
  readonly numel: number;
  /** Legacy files only: the tensor's storage is this window of storage `key` (an old storage view). */
  readonly view: StorageView | null;
}

/** A storage that is a window of another (storage `key` of the persistent id), in elements. */
export interface StorageView {
  readonly key: string;
  readonly offset: number;
  readonly numel: number;
}

/** Which torch.save format's persistent ids the pickle holds (see persistentLoad). */
export type PickleFormat = "zip" | "legacy";

/** A pickle that ends before its STOP; legacy files, which hold pickles back to back, retry longer. */
export class TruncatedPickleError extends MocoError {
  override name = "TruncatedPickleError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_TRUNCATED_PICKLE", message, options);
  }
}

/** The arguments of torch._utils._rebuild_tensor_v2 once checked. */
export interface TensorArgs {
  readonly storage: StorageRef;
  readonly storageOffset: number;
  readonly size: number[];
  readonly stride: number[];
  readonly requiresGrad: boolean;
}

/** How tensors come into being; the unpickler knows nothing about native memory. */
export interface UnpickleHooks<T> {
  rebuildTensor(args: TensorArgs): T;
  /** torch.nn.Parameter's rebuild: the same tensor, with requires_grad set as saved. */
  setRequiresGrad(tensor: T, requiresGrad: boolean): T;
}

/**
 * What an unpickled value becomes in JS: dict → plain object when every key is a string
 * (insertion order kept), else Map; list, tuple and set → array; int → number when it is a safe
 * integer, else bigint; float → number; bytes → Uint8Array; None → null.
 */
export type Unpickled<T> =
  | T
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Unpickled<T>[]
  | Map<string | number, Unpickled<T>>
  | { [key: string]: Unpickled<T> };

// ---------------------------------------------------------------------------------------------
// The Python-side object model while unpickling

type DictKey = string | number | bigint | boolean | null;

class PyDict {
  readonly items = new Map<DictKey, PyValue>();
  constructor(readonly ordered: boolean) {}
}

class PySet {
  readonly items: PyValue[] = [];
}

type GlobalKind =
  | "OrderedDict"
  | "rebuild_tensor_v2"
  | "rebuild_parameter"
  | "rebuild_parameter_with_state"
  | "device"
  | "set"
  | "frozenset"
  | "bytes"
  | "bytearray"
  | "codecs_encode"
  | "torch_version"
  | "storage_type";

/** A name that resolved against the allowlist; calling it runs our code, not Python's. */
class PyGlobal {
  constructor(
    readonly qualifiedName: string,
    readonly kind: GlobalKind,
    readonly name: string,
  ) {}
}

class PyStorage implements StorageRef {
  constructor(
    readonly storageType: string,
    readonly key: string,
    readonly location: string,
    readonly numel: number,
    readonly view: StorageView | null,
  ) {}
}

class PyTensor {
  constructor(readonly tensor: unknown) {}
}

/**
 * A Python float. Kept apart from ints until the value leaves the unpickler, because JS numbers
 * cannot tell `3.0` from `3`: where Python needs an int (a tensor's size, a storage's numel),
 * torch.load refuses a float, and so must we.
 */
class PyFloat {
  constructor(readonly value: number) {}
}

/** Lists are arrays; tuples are frozen arrays, so that list-only opcodes can reject them. */
type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyValue[]
  | PyDict
  | PySet
  | PyGlobal
  | PyStorage
  | PyTensor
  | PyFloat;

/**
 * The most containers (lists, tuples, dicts, sets) one pickle may create: memory for the objects
 * of a pickle stays bounded whatever its size (docs/file-safety.md). A ResNet-50 MoCo checkpoint
 * with its optimizer state creates about 10 000.
 */
export const MAX_PICKLE_CONTAINERS = 500_000;
/** The deepest nesting of containers accepted (Python's own recursion limit is 1000). */
export const MAX_PICKLE_DEPTH = 1000;

const ALLOWED_GLOBALS: ReadonlyMap<string, GlobalKind> = new Map<string, GlobalKind>([
  ["collections.OrderedDict", "OrderedDict"],
  ["torch._utils._rebuild_tensor_v2", "rebuild_tensor_v2"],
  ["torch._utils._rebuild_parameter", "rebuild_parameter"],
  ["torch._utils._rebuild_parameter_with_state", "rebuild_parameter_with_state"],
  ["torch.device", "device"],
  // Protocol 2 writes Python 3's builtins under their Python 2 module name.
  ["builtins.set", "set"],
  ["__builtin__.set", "set"],
  ["builtins.frozenset", "frozenset"],
  ["__builtin__.frozenset", "frozenset"],
  ["builtins.bytes", "bytes"],
  ["__builtin__.bytes", "bytes"],
  ["builtins.bytearray", "bytearray"],
  ["__builtin__.bytearray", "bytearray"],
  ["_codecs.encode", "codecs_encode"],
  // A str subclass: checkpoints that record torch.__version__ hold one.
  ["torch.torch_version.TorchVersion", "torch_version"],
]);

function resolveGlobal(module: string, name: string, fail: (message: string) => never): PyGlobal {
  const qualifiedName = `${module}.${name}`;
  const kind = ALLOWED_GLOBALS.get(qualifiedName);
  if (kind !== undefined) return new PyGlobal(qualifiedName, kind, name);
  // Like torch's own find_class: any torch.*Storage is a dtype marker; the loader decides
  // which dtypes it supports, so an unsupported one is reported as such, not as unsafe.
  if (module === "torch" && /^[A-Za-z0-9]*Storage$/.test(name))
    return new PyGlobal(qualifiedName, "storage_type", name);
  fail(`refusing to load '${qualifiedName}': only tensors and plain containers are allowed`);
}

function typeName(value: PyValue): string {
  if (value === null) return "None";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "int";
  if (value instanceof PyFloat) return "float";
  if (typeof value === "bigint") return "int";
  if (typeof value === "string") return "str";
  if (value instanceof Uint8Array) return "bytes";
  if (Array.isArray(value)) return Object.isFrozen(value) ? "tuple" : "list";
  if (value instanceof PyDict) return value.ordered ? "OrderedDict" : "dict";
  if (value instanceof PySet) return "set";
  if (value instanceof PyGlobal) return value.qualifiedName;
  if (value instanceof PyStorage) return `torch.${value.storageType}`;
  return "Tensor";
}

function normalizeInt(value: bigint): number | bigint {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

function tuple(items: PyValue[]): PyValue[] {
  return Object.freeze(items) as PyValue[];
}

// ---------------------------------------------------------------------------------------------
// The machine

/** Fatal: Python refuses invalid UTF-8 in a str (UnicodeDecodeError) rather than replacing it. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const latin1 = new TextDecoder("latin1");

class Unpickler {
  private pos = 0;
  private readonly dv: DataView;
  private stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private containers = 0;

  constructor(
    private readonly data: Uint8Array,
    private readonly hooks: UnpickleHooks<unknown>,
    private readonly label: string,
    private readonly format: PickleFormat,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  fail(message: string): never {
    throw new Error(`${this.label}: ${message}`);
  }

  private corrupt(message: string): never {
    this.fail(`corrupt pickle at byte ${this.pos}: ${message}`);
  }

  private truncated(message: string): never {
    throw new TruncatedPickleError(`${this.label}: truncated pickle (${message})`);
  }

  /** Where the pickle ended: the byte after its STOP. */
  get end(): number {
    return this.pos;
  }

  run(): PyValue {
    for (;;) {
      const op = this.u8();
      if (op === OP.STOP) {
        if (this.stack.length !== 1 || this.marks.length !== 0) this.corrupt("STOP with an unbalanced stack");
        return this.stack[0]!;
      }
      this.step(op);
    }
  }

  private step(op: number): void {
    switch (op) {
      case OP.PROTO: {
        const protocol = this.u8();
        if (protocol > HIGHEST_PROTOCOL) this.fail(`unsupported pickle protocol ${protocol}`);
        return;
      }
      case OP.FRAME: {
        // Frames only group opcodes for buffered readers, but Python checks that one is whole.
        const length = this.dv.getBigUint64(this.advance(8), true);
        if (length > BigInt(this.data.length - this.pos)) this.truncated("a frame reaches past the end of the data");
        return;
      }
      case OP.MARK:
        this.marks.push(this.stack.length);
        return;
      case OP.POP:
        this.pop();
        return;
      case OP.POP_MARK:
        this.popMark();
        return;
      case OP.DUP:
        this.push(this.top());
        return;

      case OP.NONE:
        return this.push(null);
      case OP.NEWTRUE:
        return this.push(true);
      case OP.NEWFALSE:
        return this.push(false);
      case OP.BININT:
        return this.push(this.dv.getInt32(this.advance(4), true));
      case OP.BININT1:
        return this.push(this.u8());
      case OP.BININT2:
        return this.push(this.dv.getUint16(this.advance(2), true));
      case OP.LONG1:
        return this.push(normalizeInt(decodeLong(this.take(this.u8()))));
      case OP.LONG4:
        return this.push(normalizeInt(decodeLong(this.take(this.length32()))));
      case OP.INT:
        return this.push(this.textInt());
      case OP.LONG:
        return this.push(normalizeInt(this.parseBigInt(this.line().replace(/L$/, ""))));
      case OP.BINFLOAT:
        return this.push(new PyFloat(this.dv.getFloat64(this.advance(8), false)));
      case OP.FLOAT: {
        const text = this.line();
        const value = Number(text);
        if (Number.isNaN(value) && !/^[-+]?nan$/i.test(text)) this.corrupt(`bad FLOAT '${text}'`);
        return this.push(new PyFloat(value));
      }

      case OP.BINUNICODE:
        return this.push(this.text(this.take(this.length32())));
      case OP.SHORT_BINUNICODE:
        return this.push(this.text(this.take(this.u8())));
      case OP.BINUNICODE8:
        return this.push(this.text(this.take(this.length64())));
      // Python 2 str; torch.load decodes them as ASCII/latin-1 text by default too.
      case OP.SHORT_BINSTRING:
        return this.push(latin1.decode(this.take(this.u8())));
      case OP.BINSTRING:
        return this.push(latin1.decode(this.take(this.length32())));
      case OP.SHORT_BINBYTES:
        return this.push(Uint8Array.from(this.take(this.u8())));
      case OP.BINBYTES:
        return this.push(Uint8Array.from(this.take(this.length32())));
      case OP.BINBYTES8:
      case OP.BYTEARRAY8:
        return this.push(Uint8Array.from(this.take(this.length64())));

      case OP.EMPTY_LIST:
        return this.push(this.counted([]));
      case OP.EMPTY_TUPLE:
        return this.push(tuple(this.counted([])));
      case OP.EMPTY_DICT:
        return this.push(this.counted(new PyDict(false)));
      case OP.EMPTY_SET:
        return this.push(this.counted(new PySet()));
      case OP.LIST:
        return this.push(this.counted(this.popMark()));
      case OP.TUPLE:
        return this.push(tuple(this.counted(this.popMark())));
      case OP.TUPLE1:
        return this.push(tuple(this.counted(this.popN(1))));
      case OP.TUPLE2:
        return this.push(tuple(this.counted(this.popN(2))));
      case OP.TUPLE3:
        return this.push(tuple(this.counted(this.popN(3))));
      case OP.DICT: {
        const dict = this.counted(new PyDict(false));
        this.setItems(dict, this.popMark());
        return this.push(dict);
      }
      case OP.FROZENSET: {
        const set = this.counted(new PySet());
        for (const item of this.popMark()) set.items.push(item);
        return this.push(set);
      }
      case OP.APPEND: {
        const item = this.pop();
        this.list(this.top()).push(item);
        return;
      }
      case OP.APPENDS: {
        const items = this.popMark();
        const list = this.list(this.top());
        for (const item of items) list.push(item);
        return;
      }
      case OP.SETITEM: {
        const [key, value] = this.popN(2) as [PyValue, PyValue];
        this.setItems(this.dict(this.top()), [key, value]);
        return;
      }
      case OP.SETITEMS: {
        const items = this.popMark();
        this.setItems(this.dict(this.top()), items);
        return;
      }
      case OP.ADDITEMS: {
        const items = this.popMark();
        const set = this.top();
        if (!(set instanceof PySet)) this.corrupt(`ADDITEMS on a ${typeName(set)}`);
        for (const item of items) set.items.push(item);
        return;
      }

      case OP.BINPUT:
        return this.put(this.u8());
      case OP.LONG_BINPUT:
        return this.put(this.length32());
      case OP.PUT:
        return this.put(Number(this.textNonNegative()));
      case OP.MEMOIZE:
        return this.put(this.memo.size);
      case OP.BINGET:
        return this.push(this.get(this.u8()));
      case OP.LONG_BINGET:
        return this.push(this.get(this.length32()));
      case OP.GET:
        return this.push(this.get(Number(this.textNonNegative())));

      case OP.GLOBAL: {
        const module = this.line();
        const name = this.line();
        return this.push(resolveGlobal(module, name, (m) => this.fail(m)));
      }
      case OP.STACK_GLOBAL: {
        const [module, name] = this.popN(2);
        if (typeof module !== "string" || typeof name !== "string") this.corrupt("STACK_GLOBAL needs two strings");
        return this.push(resolveGlobal(module, name, (m) => this.fail(m)));
      }
      case OP.REDUCE:
      case OP.NEWOBJ: {
        const args = this.pop();
        const callable = this.pop();
        if (!Array.isArray(args)) this.corrupt(`arguments must be a tuple, got ${typeName(args)}`);
        return this.push(this.call(callable, args));
      }
      case OP.BUILD: {
        const state = this.pop();
        const target = this.top();
        // A state_dict's OrderedDict carries `_metadata` (module versions) as instance state;
        // it only matters to Python's load_state_dict, so it is dropped.
        if (target instanceof PyDict && target.ordered) return;
        return this.fail(`cannot set state (BUILD) on a ${typeName(target)} with ${typeName(state)} state`);
      }
      case OP.BINPERSID:
        return this.push(this.persistentLoad(this.pop()));
      default:
        this.corrupt(`unsupported opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }

  // --- calls to allowlisted globals -----------------------------------------------------------

  private call(callable: PyValue, args: PyValue[]): PyValue {
    if (!(callable instanceof PyGlobal)) this.fail(`cannot call a ${typeName(callable)}`);
    const argsOf = (min: number, max: number): void => {
      if (args.length < min || args.length > max) {
        this.fail(
          `${callable.qualifiedName} takes ${min === max ? min : `${min}-${max}`} arguments, got ${args.length}`,
        );
      }
    };
    switch (callable.kind) {
      case "OrderedDict": {
        argsOf(0, 1);
        const dict = this.counted(new PyDict(true));
        const source = args[0];
        if (source !== undefined) {
          if (!Array.isArray(source)) this.fail(`OrderedDict(${typeName(source)}) is not supported`);
          for (const pair of source) {
            if (!Array.isArray(pair) || pair.length !== 2) this.fail("OrderedDict items must be (key, value) pairs");
            this.setItems(dict, pair);
          }
        }
        return dict;
      }
      case "rebuild_tensor_v2":
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        argsOf(6, 7);
        return new PyTensor(this.hooks.rebuildTensor(this.tensorArgs(args)));
      case "rebuild_parameter":
      case "rebuild_parameter_with_state": {
        // (data, requires_grad, backward_hooks[, state]); the state is Python attributes.
        argsOf(callable.kind === "rebuild_parameter" ? 3 : 4, callable.kind === "rebuild_parameter" ? 3 : 4);
        const [data, requiresGrad] = args;
        if (!(data instanceof PyTensor) || typeof requiresGrad !== "boolean") {
          this.fail(`${callable.qualifiedName} expects (Tensor, bool, ...)`);
        }
        return new PyTensor(this.hooks.setRequiresGrad(data.tensor, requiresGrad));
      }
      case "device": {
        argsOf(1, 2);
        const [type, index] = args;
        if (typeof type !== "string" || (index !== undefined && index !== null && typeof index !== "number")) {
          this.fail("torch.device expects (str[, int])");
        }
        return index === undefined || index === null ? type : `${type}:${index}`;
      }
      case "set":
      case "frozenset": {
        argsOf(0, 1);
        const set = this.counted(new PySet());
        const source = args[0];
        if (source !== undefined) {
          if (!Array.isArray(source)) this.fail(`${callable.name}(${typeName(source)}) is not supported`);
          for (const item of source) set.items.push(item);
        }
        return set;
      }
      case "bytes":
      case "bytearray": {
        argsOf(0, 2);
        const [source, encoding] = args;
        if (source === undefined) return new Uint8Array(0);
        if (source instanceof Uint8Array && encoding === undefined) return Uint8Array.from(source);
        if (typeof source === "string" && typeof encoding === "string") return this.encodeLatin1(source, encoding);
        return this.fail(`${callable.name}(${typeName(source)}) is not supported`);
      }
      case "codecs_encode": {
        // Protocol 2 has no bytes opcode: Python writes bytes as _codecs.encode(text, 'latin1').
        argsOf(2, 2);
        const [text, encoding] = args;
        if (typeof text !== "string" || typeof encoding !== "string") this.fail("_codecs.encode expects (str, str)");
        return this.encodeLatin1(text, encoding);
      }
      case "torch_version": {
        argsOf(1, 1);
        const [version] = args;
        if (typeof version !== "string") this.fail("TorchVersion expects (str)");
        return version;
      }
      case "storage_type":
        this.fail(`${callable.qualifiedName} cannot be called: raw storages are not supported, only tensors`);
    }
  }

  private encodeLatin1(text: string, encoding: string): Uint8Array {
    if (!/^latin[-_]?1$/i.test(encoding)) this.fail(`bytes encoded as '${encoding}' are not supported (only latin1)`);
    const out = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code > 0xff) this.fail("latin1-encoded bytes contain a character above U+00FF");
      out[i] = code;
    }
    return out;
  }

  private persistentLoad(pid: PyValue): PyStorage {
    // torch.save's persistent id: ('storage', torch.<T>Storage, key, location, numel); the legacy
    // format appends view metadata, None or (view_key, offset, view_numel).
    const arity = this.format === "zip" ? 5 : 6;
    if (!Array.isArray(pid) || pid.length !== arity) {
      const what = Array.isArray(pid) ? `a ${pid.length}-item ${typeName(pid)}` : typeName(pid);
      this.fail(`unsupported persistent id (${what}; the ${this.format} format has ${arity}-item tuples)`);
    }
    const [tag, storageType, key, location, numel, view] = pid;
    const tagText = pickledText(tag);
    const keyText = pickledText(key);
    const locationText = pickledText(location);
    if (tagText !== "storage")
      this.fail(`unsupported persistent id type '${String(tagText ?? typeName(tag ?? null))}'`);
    if (!(storageType instanceof PyGlobal) || storageType.kind !== "storage_type") {
      this.fail("persistent id does not name a storage type");
    }
    if (keyText === undefined || locationText === undefined || typeof numel !== "number" || !isCount(numel)) {
      this.fail("malformed storage persistent id");
    }
    return new PyStorage(storageType.name, keyText, locationText, numel, this.storageView(view ?? null));
  }

  private storageView(view: PyValue): StorageView | null {
    if (view === null) return null;
    if (!Array.isArray(view) || view.length !== 3) this.fail("malformed storage view metadata");
    const [key, offset, numel] = view;
    const keyText = pickledText(key);
    const counts = typeof offset === "number" && isCount(offset) && typeof numel === "number" && isCount(numel);
    if (keyText === undefined || !counts) this.fail("malformed storage view metadata");
    return { key: keyText, offset, numel };
  }

  private tensorArgs(args: PyValue[]): TensorArgs {
    const [storage, storageOffset, size, stride, requiresGrad] = args;
    if (!(storage instanceof PyStorage))
      this.fail(`_rebuild_tensor_v2: expected a storage, got ${typeName(storage ?? null)}`);
    if (typeof storageOffset !== "number" || !isCount(storageOffset))
      this.fail("_rebuild_tensor_v2: bad storage offset");
    const ints = (value: PyValue | undefined, what: string): number[] => {
      if (!Array.isArray(value) || !value.every((v) => typeof v === "number" && isCount(v))) {
        this.fail(`_rebuild_tensor_v2: ${what} must be a tuple of non-negative ints`);
      }
      return [...(value as number[])];
    };
    const sizes = ints(size, "size");
    const strides = ints(stride, "stride");
    if (sizes.length !== strides.length) this.fail("_rebuild_tensor_v2: size and stride differ in length");
    if (typeof requiresGrad !== "boolean") this.fail("_rebuild_tensor_v2: requires_grad must be a bool");
    return { storage, storageOffset, size: sizes, stride: strides, requiresGrad };
  }

  // --- containers ------------------------------------------------------------------------------

  /** Counts a new container against MAX_PICKLE_CONTAINERS. */
  private counted<C extends PyValue>(container: C): C {
    if (++this.containers > MAX_PICKLE_CONTAINERS) {
      this.fail(`the pickle creates more than ${MAX_PICKLE_CONTAINERS} lists, tuples, dicts and sets (the limit)`);
    }
    return container;
  }

  private text(bytes: Uint8Array): string {
    try {
      return utf8.decode(bytes);
    } catch {
      return this.corrupt("a string is not valid UTF-8");
    }
  }

  private setItems(dict: PyDict, flat: PyValue[]): void {
    if (flat.length % 2 !== 0) this.corrupt("odd number of dict items");
    for (let i = 0; i < flat.length; i += 2) {
      const raw = flat[i]!;
      const key = raw instanceof PyFloat ? raw.value : raw;
      if (
        key !== null &&
        typeof key !== "string" &&
        typeof key !== "number" &&
        typeof key !== "bigint" &&
        typeof key !== "boolean"
      ) {
        this.fail(`dict keys of type ${typeName(key)} are not supported`);
      }
      dict.items.set(key, flat[i + 1]!);
    }
  }

  private list(value: PyValue): PyValue[] {
    if (!Array.isArray(value) || Object.isFrozen(value)) this.corrupt(`APPEND on a ${typeName(value)}`);
    return value;
  }

  private dict(value: PyValue): PyDict {
    if (!(value instanceof PyDict)) this.corrupt(`SETITEM on a ${typeName(value)}`);
    return value;
  }

  // --- stack and memo --------------------------------------------------------------------------

  private push(value: PyValue): void {
    this.stack.push(value);
  }

  private pop(): PyValue {
    const floor = this.marks[this.marks.length - 1] ?? 0;
    if (this.stack.length <= floor) this.corrupt("stack underflow");
    return this.stack.pop()!;
  }

  private top(): PyValue {
    const floor = this.marks[this.marks.length - 1] ?? 0;
    if (this.stack.length <= floor) this.corrupt("stack underflow");
    return this.stack[this.stack.length - 1]!;
  }

  private popN(n: number): PyValue[] {
    const floor = this.marks[this.marks.length - 1] ?? 0;
    if (this.stack.length - n < floor) this.corrupt("stack underflow");
    return this.stack.splice(this.stack.length - n, n);
  }

  private popMark(): PyValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.corrupt("no MARK to pop to");
    return this.stack.splice(mark);
  }

  private put(index: number): void {
    this.memo.set(index, this.top());
  }

  private get(index: number): PyValue {
    if (!this.memo.has(index)) this.corrupt(`memo entry ${index} is missing`);
    return this.memo.get(index)!;
  }

  // --- reading ---------------------------------------------------------------------------------

  private advance(n: number): number {
    const at = this.pos;
    if (at + n > this.data.length) this.truncated("unexpected end of data");
    this.pos += n;
    return at;
  }

  private take(n: number): Uint8Array {
    const at = this.advance(n);
    return this.data.subarray(at, at + n);
  }

  private u8(): number {
    return this.data[this.advance(1)]!;
  }

  private length32(): number {
    return this.dv.getUint32(this.advance(4), true);
  }

  private length64(): number {
    const value = this.dv.getBigUint64(this.advance(8), true);
    if (value > BigInt(this.data.length)) this.truncated("length past the end of data");
    return Number(value);
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) this.truncated("unterminated line");
    const text = latin1.decode(this.data.subarray(this.pos, end));
    this.pos = end + 1;
    return text;
  }

  private textInt(): number | bigint | boolean {
    const text = this.line();
    // Protocol 0 spells booleans as INT 00 / 01.
    if (text === "00") return false;
    if (text === "01") return true;
    return normalizeInt(this.parseBigInt(text));
  }

  private textNonNegative(): bigint {
    const value = this.parseBigInt(this.line());
    if (value < 0n) this.corrupt("negative memo index");
    return value;
  }

  private parseBigInt(text: string): bigint {
    if (!/^[-+]?\d+$/.test(text)) this.corrupt(`bad integer '${text}'`);
    return BigInt(text);
  }
}

/** Python 3 str, or Python 2 str (bytes) as torch.load decodes it. */
function pickledText(value: PyValue | undefined): string | undefined {
  return typeof value === "string" ? value : value instanceof Uint8Array ? latin1.decode(value) : undefined;
}

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** LONG1/LONG4 payload: little-endian two's complement. */
function decodeLong(bytes: Uint8Array): bigint {
  if (bytes.length === 0) return 0n;
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  if (bytes[bytes.length - 1]! & 0x80) value -= 1n << BigInt(8 * bytes.length);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Python objects → JS values

function toJs<T>(root: PyValue, fail: (message: string) => never): Unpickled<T> {
  // Keyed by the Python object so that shared references stay shared.
  const converted = new Map<object, Unpickled<T>>();
  /** The containers being converted: the nesting depth. */
  const open = new Set<object>();
  // Where the conversion is, as keys and how each was reached; spelled out only for an error.
  const keys: (string | number)[] = [];
  const dotted: boolean[] = [];
  const where = (): string =>
    keys.length === 0
      ? "the root"
      : `the root${keys.map((key, i) => (dotted[i] === true ? `.${String(key)}` : `[${JSON.stringify(key)}]`)).join("")}`;
  const child = (key: string | number, dot: boolean, item: PyValue): Unpickled<T> => {
    keys.push(key);
    dotted.push(dot);
    const out = convert(item);
    keys.pop();
    dotted.pop();
    return out;
  };
  const convert = (value: PyValue): Unpickled<T> => {
    if (value === null || typeof value !== "object" || value instanceof Uint8Array) return value;
    if (value instanceof PyFloat) return value.value;
    if (value instanceof PyTensor) return value.tensor as T;
    if (value instanceof PyGlobal) fail(`a bare reference to ${value.qualifiedName} at ${where()} is not a value`);
    if (value instanceof PyStorage) fail(`a raw storage at ${where()} is not supported, only tensors`);
    // Shared references stay shared, and a container that holds itself (Python allows it, and
    // torch.load reads it) is found here before its conversion ends: it becomes a cyclic JS
    // value, which the walks over loaded values (collectTensors) refuse, naming the file.
    const seen = converted.get(value);
    if (seen !== undefined) return seen;
    if (open.size >= MAX_PICKLE_DEPTH) fail(`containers nested deeper than ${MAX_PICKLE_DEPTH} levels (at ${where()})`);
    open.add(value);
    const out = convertContainer(value);
    open.delete(value);
    return out;
  };
  const convertContainer = (value: PyValue[] | PySet | PyDict): Unpickled<T> => {
    if (Array.isArray(value) || value instanceof PySet) {
      const items = Array.isArray(value) ? value : value.items;
      const out: Unpickled<T>[] = [];
      converted.set(value, out);
      for (let i = 0; i < items.length; i++) out.push(child(i, false, items[i]!));
      return out;
    }
    let allStrings = true;
    for (const key of value.items.keys()) if (typeof key !== "string") allStrings = false;
    if (allStrings) {
      const out: { [key: string]: Unpickled<T> } = {};
      converted.set(value, out);
      for (const [key, item] of value.items) {
        // defineProperty, so that a key named "__proto__" is data, not a prototype change.
        Object.defineProperty(out, key as string, {
          value: child(key as string, true, item),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    const out = new Map<string | number, Unpickled<T>>();
    converted.set(value, out);
    for (const [key, item] of value.items) {
      if (typeof key !== "string" && typeof key !== "number") {
        fail(`dict key ${String(key)} (${typeName(key)}) at ${where()} cannot be a JS Map key`);
      }
      out.set(key, child(key, false, item));
    }
    return out;
  };
  return convert(root);
}

export interface UnpickleOptions {
  /** Which torch.save format's storage persistent ids to accept (default "zip"). */
  readonly format?: PickleFormat;
}

/**
 * Unpickles `data` (one pickle, protocols 2–5) into JS values. `label` starts every error message
 * (e.g. "load: model.pt"); tensors come from `hooks`.
 */
export function unpickle<T>(
  data: Uint8Array,
  hooks: UnpickleHooks<T>,
  label: string,
  options: UnpickleOptions = {},
): Unpickled<T> {
  return unpickleHead(data, hooks, label, options).value;
}

/**
 * Like `unpickle`, for a pickle that other data may follow: also says where it ended (the offset
 * after its STOP). Data that ends before the STOP throws a TruncatedPickleError.
 */
export function unpickleHead<T>(
  data: Uint8Array,
  hooks: UnpickleHooks<T>,
  label: string,
  options: UnpickleOptions = {},
): { value: Unpickled<T>; end: number } {
  const machine = new Unpickler(data, hooks as UnpickleHooks<unknown>, label, options.format ?? "zip");
  const root = machine.run();
  return { value: toJs<T>(root, (message) => machine.fail(message)), end: machine.end };
}
