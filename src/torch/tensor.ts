// The typed face of one at::Tensor. Methods validate their arguments, then call the addon; results
// are new tensors registered with the current scope (see scope.ts). In-place methods end in `_`
// and return `this`, as in PyTorch.
import { DTYPES, checkDType, dtypeFromCode, typedArrayView, type DType, type TypedArrayFor } from "./dtype.js";
import { formatTensor } from "./format.js";
import { checkMemoryFormat, type MemoryFormat } from "./memory-format.js";
import { native, type NativeHandle } from "./native.js";
import { markScoped, track, untrack, type ScopedResource } from "./scope.js";

export type Shape = readonly number[];
export type Scalar = number | boolean;

/** Options of factories: element type, device ("cpu", "cuda:0") and whether autograd records. */
export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

/** A pair returned by max/min along a dim, topk and sort, as PyTorch's named tuples. */
export interface ValuesIndices {
  values: Tensor;
  indices: Tensor;
}

export interface BackwardOptions {
  /** Keep the graph so that backward can run through it again (PyTorch's retain_graph). */
  retainGraph?: boolean;
  /** Record the backward pass itself, for higher-order gradients. */
  createGraph?: boolean;
}

export function isInt(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

export function checkInt(value: unknown, what: string, op: string): number {
  if (!isInt(value)) throw new TypeError(`${op}: ${what} must be an integer, got ${String(value)}`);
  return value;
}

export function checkInts(values: unknown, what: string, op: string): number[] {
  if (!Array.isArray(values) || !values.every(isInt)) {
    throw new TypeError(`${op}: ${what} must be an array of integers, got ${JSON.stringify(values)}`);
  }
  return values as number[];
}

/** Accepts both `f(2, 3)` and `f([2, 3])`, as PyTorch does for sizes and dims. */
export function sizesArg(args: readonly (number | Shape)[], what: string, op: string): number[] {
  const flat = args.length === 1 && Array.isArray(args[0]) ? args[0] : args;
  return checkInts(flat, what, op);
}

function checkNumber(value: unknown, what: string, op: string): number {
  if (typeof value !== "number") throw new TypeError(`${op}: ${what} must be a number, got ${String(value)}`);
  return value;
}

function checkTensor(value: unknown, what: string, op: string): Tensor {
  if (!(value instanceof Tensor)) {
    throw new TypeError(`${op}: ${what} must be a Tensor, got ${value === null ? "null" : typeof value}`);
  }
  return value;
}

/** A tensor or a scalar operand, as the addon takes it. */
function operand(value: unknown, op: string): NativeHandle | Scalar {
  if (value instanceof Tensor) return value.handle;
  if (typeof value === "number" || typeof value === "boolean") return value;
  throw new TypeError(`${op}: operand must be a Tensor or a number, got ${value === null ? "null" : typeof value}`);
}

function dimsArg(dim: number | Shape | undefined, op: string): number[] | null {
  if (dim === undefined) return null;
  return typeof dim === "number" ? [checkInt(dim, "dim", op)] : checkInts(dim, "dims", op);
}

// ---- the GC safety net ------------------------------------------------------------------------
// A tensor that is never disposed is freed when V8 collects its Tensor (docs/architecture.md §4: the backstop,
// not the plan). Registering every tensor with a FinalizationRegistry would cost more than a small op
// (~0.4 µs), and most tensors die young: disposed explicitly or by their scope. So a tensor owned by a
// scope is registered only if it outlives its scopes (see `unscoped`), and a tensor created outside
// any scope waits in `unwatched` until the next sweep (at the latest after SWEEP_EVERY creations, or
// when the current synchronous job ends); the sweep registers those still alive.
const registry = new FinalizationRegistry<NativeHandle>((handle) => native.dispose(handle));
const SWEEP_EVERY = 1024;
let unwatched: Tensor[] = [];
let sweepQueued = false;

function sweep(): void {
  const batch = unwatched;
  unwatched = [];
  for (const t of batch) t.watch();
}

function sweepAtJobEnd(): void {
  sweepQueued = false;
  sweep();
}

function enqueueUnwatched(t: Tensor): void {
  unwatched.push(t);
  if (unwatched.length >= SWEEP_EVERY) sweep();
  if (!sweepQueued) {
    sweepQueued = true;
    queueMicrotask(sweepAtJobEnd);
  }
}

export class Tensor implements ScopedResource {
  /** @internal The addon's handle. Use the methods instead. */
  readonly handle: NativeHandle;
  /** @internal The scope that frees this tensor. */
  owner: Set<ScopedResource> | null = null;
  #shape: Shape | undefined;
  #dtype: DType | undefined;
  #disposed = false;
  #watched = false;

  /** @internal Tensors come from factories and ops, not from this constructor. */
  constructor(handle: NativeHandle) {
    this.handle = handle;
    if (!track(this)) enqueueUnwatched(this);
  }

  /** @internal Puts a live tensor that no scope owns under the GC safety net (once). */
  watch(): void {
    if (this.#disposed || this.#watched || this.owner !== null) return;
    this.#watched = true;
    registry.register(this, this.handle, this);
    // Only now does V8 learn of the native memory: what scopes and dispose free must not make it
    // run full collections (7 per ResNet-18 MoCo step when every tensor was reported).
    native.accountExternalMemory(this.handle);
  }

  /** @internal Called by scopes when this tensor leaves them alive (returned to the top level, or kept). */
  unscoped(): void {
    this.watch();
  }

  // ---- metadata -------------------------------------------------------------------------------
  get shape(): Shape {
    this.#shape ??= Object.freeze(native.shape(this.handle));
    return this.#shape;
  }
  get dtype(): DType {
    this.#dtype ??= dtypeFromCode(native.dtype(this.handle));
    return this.#dtype;
  }
  get device(): string {
    return native.device(this.handle);
  }
  get strides(): Shape {
    return native.strides(this.handle);
  }
  get storageOffset(): number {
    return native.storageOffset(this.handle);
  }
  /** Equal for tensors that share one storage (views of each other). */
  get storageId(): string {
    return native.storageId(this.handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get isContiguous(): boolean {
    return native.isContiguous(this.handle, null);
  }
  /**
   * PyTorch's `is_contiguous(memory_format=...)`: whether the elements are dense in that format's
   * order ("channelsLast": N, H, W, C for a 4-d tensor). Named apart from `isContiguous`, which is
   * a property (row-major only).
   */
  isContiguousIn(memoryFormat: MemoryFormat): boolean {
    return native.isContiguous(this.handle, checkMemoryFormat(memoryFormat, "isContiguousIn"));
  }
  /** The layout libtorch's kernels will choose for their outputs (PyTorch's suggest_memory_format()). */
  get suggestedMemoryFormat(): MemoryFormat {
    return native.suggestMemoryFormat(this.handle);
  }
  get isDisposed(): boolean {
    return this.#disposed;
  }
  size(dim?: number): number | Shape {
    if (dim === undefined) return this.shape;
    const d = checkInt(dim, "dim", "size");
    const n = this.shape.length;
    const size = this.shape[d < 0 ? d + n : d];
    if (size === undefined) throw new RangeError(`size: dim ${dim} out of range for a ${n}-d tensor`);
    return size;
  }

  // ---- lifetime -------------------------------------------------------------------------------
  /** Frees the native tensor now. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    untrack(this);
    if (this.#watched) registry.unregister(this);
    native.dispose(this.handle);
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- conversion -----------------------------------------------------------------------------
  item(): number {
    const value = native.item(this.handle);
    return typeof value === "boolean" ? Number(value) : value;
  }
  /** A copy of the elements in row-major order, in the typed array of the dtype. */
  toTypedArray<D extends DType = DType>(): TypedArrayFor[D] {
    return typedArrayView(this.dtype as D, native.toBytes(this.handle));
  }
  /** A copy of the raw little-endian element bytes in row-major order. */
  toBytes(): Uint8Array {
    return new Uint8Array(native.toBytes(this.handle));
  }
  /** The elements as JS numbers in row-major order (int64 beyond 2^53 loses precision). */
  toArray(): number[] {
    const dtype = this.dtype;
    if (dtype === "float16" || dtype === "bfloat16") return this.to("float32").toArrayAndDispose();
    const data = this.toTypedArray();
    return data instanceof BigInt64Array ? Array.from(data, Number) : Array.from(data as ArrayLike<number>);
  }
  private toArrayAndDispose(): number[] {
    try {
      return this.toArray();
    } finally {
      this.dispose();
    }
  }
  /** Nested arrays, like PyTorch's tolist(). */
  tolist(): unknown {
    const flat = this.toArray();
    const nest = (dim: number, offset: number): unknown => {
      const size = this.shape[dim];
      if (size === undefined) return flat[offset];
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: size }, (_, i) => nest(dim + 1, offset + i * stride));
    };
    return nest(0, 0);
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.handle));
  }
  /** Dense in the memory format's order (default row-major); shares this storage when it already is. */
  contiguous(options: { memoryFormat?: MemoryFormat } = {}): Tensor {
    const format = options.memoryFormat === undefined ? null : checkMemoryFormat(options.memoryFormat, "contiguous");
    return new Tensor(native.contiguous(this.handle, format));
  }
  /**
   * @internal PyTorch's `t.data = other`: this tensor (every handle to it) takes other's data, dtype
   * and layout, keeping its identity, grad and requiresGrad. Module.to converts parameters with it.
   */
  setData_(other: Tensor): this {
    native.setData(this.handle, checkTensor(other, "other", "setData_").handle);
    this.#shape = undefined;
    this.#dtype = undefined;
    return this;
  }
  /** A copy with another dtype (always a new tensor). */
  to(dtype: DType): Tensor {
    return new Tensor(native.toDtype(this.handle, DTYPES[checkDType(dtype, "to")].code));
  }
  /**
   * A copy on `device` ("cpu", "cuda", "cuda:0"). `nonBlocking` (PyTorch's non_blocking) lets a copy
   * from pinned host memory to a GPU run while the host goes on; the GPU's later kernels wait for it.
   */
  toDevice(device: string, options: { nonBlocking?: boolean } = {}): Tensor {
    if (typeof device !== "string") throw new TypeError(`toDevice: device must be a string like "cpu" or "cuda:0"`);
    return new Tensor(native.toDevice(this.handle, device, options.nonBlocking === true));
  }
  /** A page-locked copy of this CPU tensor (PyTorch's pin_memory); needs a CUDA device. */
  pinMemory(): Tensor {
    return new Tensor(native.pinMemory(this.handle));
  }
  /** Whether this tensor lives in page-locked host memory. */
  get isPinned(): boolean {
    return native.isPinned(this.handle);
  }
  float(): Tensor {
    return this.to("float32");
  }
  double(): Tensor {
    return this.to("float64");
  }
  long(): Tensor {
    return this.to("int64");
  }
  int(): Tensor {
    return this.to("int32");
  }
  bool(): Tensor {
    return this.to("bool");
  }
  toString(): string {
    return formatTensor(this);
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  // ---- autograd -------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  requiresGrad_(flag = true): this {
    native.setRequiresGrad(this.handle, flag);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient as a new handle (null when none), like PyTorch's `.grad`. */
  get grad(): Tensor | null {
    const h = native.grad(this.handle);
    return h === null ? null : new Tensor(h);
  }
  set grad(value: Tensor | null) {
    native.setGrad(this.handle, value === null ? null : checkTensor(value, "grad", "grad").handle);
  }
  /** The name of the autograd node that produced this tensor, e.g. "AddBackward0". */
  get gradFn(): string | null {
    return native.gradFnName(this.handle);
  }
  retainGrad(): this {
    native.retainGrad(this.handle);
    return this;
  }
  backward(gradient?: Tensor, options: BackwardOptions = {}): void {
    const g = gradient === undefined ? null : checkTensor(gradient, "gradient", "backward").handle;
    native.backward(this.handle, g, options.retainGraph ?? null, options.createGraph ?? false);
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.handle));
  }

  // ---- shape ----------------------------------------------------------------------------------
  view(...shape: (number | Shape)[]): Tensor {
    return new Tensor(native.view(this.handle, sizesArg(shape, "shape", "view")));
  }
  reshape(...shape: (number | Shape)[]): Tensor {
    return new Tensor(native.reshape(this.handle, sizesArg(shape, "shape", "reshape")));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(
      native.flatten(this.handle, checkInt(startDim, "startDim", "flatten"), checkInt(endDim, "endDim", "flatten")),
    );
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim === undefined ? null : checkInt(dim, "dim", "squeeze")));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, checkInt(dim, "dim", "unsqueeze")));
  }
  permute(...dims: (number | Shape)[]): Tensor {
    return new Tensor(native.permute(this.handle, sizesArg(dims, "dims", "permute")));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(
      native.transpose(this.handle, checkInt(dim0, "dim0", "transpose"), checkInt(dim1, "dim1", "transpose")),
    );
  }
  /** Transpose of a 2-d tensor. */
  t(): Tensor {
    if (this.ndim !== 2) throw new RangeError(`t: expects a 2-d tensor, got shape [${this.shape.join(", ")}]`);
    return this.transpose(0, 1);
  }
  expand(...sizes: (number | Shape)[]): Tensor {
    return new Tensor(native.expand(this.handle, sizesArg(sizes, "sizes", "expand")));
  }
  expandAs(other: Tensor): Tensor {
    return this.expand(checkTensor(other, "other", "expandAs").shape);
  }
  repeat(...sizes: (number | Shape)[]): Tensor {
    return new Tensor(native.repeat(this.handle, sizesArg(sizes, "sizes", "repeat")));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(
      native.narrow(
        this.handle,
        checkInt(dim, "dim", "narrow"),
        checkInt(start, "start", "narrow"),
        checkInt(length, "length", "narrow"),
      ),
    );
  }
  /** Python's `x[..., start:end:step, ...]` along `dim`; omitted bounds mean the whole range. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    const op = "slice";
    return new Tensor(
      native.slice(
        this.handle,
        checkInt(dim, "dim", op),
        start == null ? null : checkInt(start, "start", op),
        end == null ? null : checkInt(end, "end", op),
        checkInt(step, "step", op),
      ),
    );
  }
  /** Python's `x[..., index, ...]` along `dim` (drops the dim). */
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, checkInt(dim, "dim", "select"), checkInt(index, "index", "select")));
  }
  asStrided(size: Shape, stride: Shape, storageOffset = 0): Tensor {
    const op = "asStrided";
    return new Tensor(
      native.asStrided(
        this.handle,
        checkInts(size, "size", op),
        checkInts(stride, "stride", op),
        checkInt(storageOffset, "storageOffset", op),
      ),
    );
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    const op = "indexSelect";
    return new Tensor(
      native.indexSelect(this.handle, checkInt(dim, "dim", op), checkTensor(index, "index", op).handle),
    );
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(
      native.gather(this.handle, checkInt(dim, "dim", "gather"), checkTensor(index, "index", "gather").handle),
    );
  }
  scatter(dim: number, index: Tensor, src: Tensor | number): Tensor {
    const op = "scatter";
    return new Tensor(
      native.scatter(this.handle, checkInt(dim, "dim", op), checkTensor(index, "index", op).handle, operand(src, op)),
    );
  }
  /** A copy of this tensor with the slices `index` along `dim` replaced by `source`'s, in order (index_copy). */
  indexCopy(dim: number, index: Tensor, source: Tensor): Tensor {
    const op = "indexCopy";
    return new Tensor(
      native.indexCopy(
        this.handle,
        checkInt(dim, "dim", op),
        checkTensor(index, "index", op).handle,
        checkTensor(source, "source", op).handle,
      ),
    );
  }
  /** indexCopy in place. */
  indexCopy_(dim: number, index: Tensor, source: Tensor): this {
    const op = "indexCopy_";
    native.indexCopy_(
      this.handle,
      checkInt(dim, "dim", op),
      checkTensor(index, "index", op).handle,
      checkTensor(source, "source", op).handle,
    );
    return this;
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    const op = "scatterAdd";
    return new Tensor(
      native.scatterAdd(
        this.handle,
        checkInt(dim, "dim", op),
        checkTensor(index, "index", op).handle,
        checkTensor(src, "src", op).handle,
      ),
    );
  }
  maskedFill(mask: Tensor, value: Tensor | number): Tensor {
    const op = "maskedFill";
    return new Tensor(native.maskedFill(this.handle, checkTensor(mask, "mask", op).handle, operand(value, op)));
  }
  maskedSelect(mask: Tensor): Tensor {
    return new Tensor(native.maskedSelect(this.handle, checkTensor(mask, "mask", "maskedSelect").handle));
  }
  split(sizeOrSizes: number | Shape, dim = 0): Tensor[] {
    const op = "split";
    const sizes =
      typeof sizeOrSizes === "number" ? checkInt(sizeOrSizes, "size", op) : checkInts(sizeOrSizes, "sizes", op);
    return native.split(this.handle, sizes, checkInt(dim, "dim", op)).map((h) => new Tensor(h));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return native
      .chunk(this.handle, checkInt(chunks, "chunks", "chunk"), checkInt(dim, "dim", "chunk"))
      .map((h) => new Tensor(h));
  }
  flip(...dims: (number | Shape)[]): Tensor {
    return new Tensor(native.flip(this.handle, sizesArg(dims, "dims", "flip")));
  }
  roll(shifts: number | Shape, dims: number | Shape): Tensor {
    const s = typeof shifts === "number" ? [shifts] : shifts;
    const d = typeof dims === "number" ? [dims] : dims;
    return new Tensor(native.roll(this.handle, checkInts(s, "shifts", "roll"), checkInts(d, "dims", "roll")));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.tril(this.handle, checkInt(diagonal, "diagonal", "tril")));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triu(this.handle, checkInt(diagonal, "diagonal", "triu")));
  }
  nonzero(): Tensor {
    return new Tensor(native.nonzero(this.handle));
  }
  oneHot(numClasses: number): Tensor {
    return new Tensor(native.oneHot(this.handle, checkInt(numClasses, "numClasses", "oneHot")));
  }

  // ---- arithmetic (broadcasting; a number operand acts like a Python scalar) ------------------
  /** this + alpha * other */
  add(other: Tensor | number, alpha?: number): Tensor {
    return new Tensor(native.add(this.handle, operand(other, "add"), alpha ?? null));
  }
  /** this - alpha * other */
  sub(other: Tensor | number, alpha?: number): Tensor {
    return new Tensor(native.sub(this.handle, operand(other, "sub"), alpha ?? null));
  }
  mul(other: Tensor | number): Tensor {
    return new Tensor(native.mul(this.handle, operand(other, "mul")));
  }
  div(other: Tensor | number): Tensor {
    return new Tensor(native.div(this.handle, operand(other, "div")));
  }
  pow(exponent: Tensor | number): Tensor {
    return new Tensor(native.pow(this.handle, operand(exponent, "pow")));
  }
  remainder(other: Tensor | number): Tensor {
    return new Tensor(native.remainder(this.handle, operand(other, "remainder")));
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(native.maximum(this.handle, checkTensor(other, "other", "maximum").handle));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(native.minimum(this.handle, checkTensor(other, "other", "minimum").handle));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.log(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.handle));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.handle));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.handle));
  }
  round(): Tensor {
    return new Tensor(native.round(this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.handle));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.isfinite(this.handle));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.handle));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.handle, checkInt(dim, "dim", "softmax")));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.handle, checkInt(dim, "dim", "logSoftmax")));
  }
  /** Limits values to [min, max]; either bound may be null. */
  clamp(min: number | null = null, max: number | null = null): Tensor {
    if (min === null && max === null) throw new TypeError("clamp: at least one of min and max is required");
    return new Tensor(
      native.clamp(
        this.handle,
        min === null ? null : checkNumber(min, "min", "clamp"),
        max === null ? null : checkNumber(max, "max", "clamp"),
      ),
    );
  }
  clampMin(min: number): Tensor {
    return this.clamp(min, null);
  }
  clampMax(max: number): Tensor {
    return this.clamp(null, max);
  }

  // ---- comparison and logic -------------------------------------------------------------------
  eq(other: Tensor | number): Tensor {
    return new Tensor(native.eq(this.handle, operand(other, "eq")));
  }
  ne(other: Tensor | number): Tensor {
    return new Tensor(native.ne(this.handle, operand(other, "ne")));
  }
  lt(other: Tensor | number): Tensor {
    return new Tensor(native.lt(this.handle, operand(other, "lt")));
  }
  le(other: Tensor | number): Tensor {
    return new Tensor(native.le(this.handle, operand(other, "le")));
  }
  gt(other: Tensor | number): Tensor {
    return new Tensor(native.gt(this.handle, operand(other, "gt")));
  }
  ge(other: Tensor | number): Tensor {
    return new Tensor(native.ge(this.handle, operand(other, "ge")));
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(native.logicalAnd(this.handle, checkTensor(other, "other", "logicalAnd").handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(native.logicalOr(this.handle, checkTensor(other, "other", "logicalOr").handle));
  }
  logicalXor(other: Tensor): Tensor {
    return new Tensor(native.logicalXor(this.handle, checkTensor(other, "other", "logicalXor").handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.handle));
  }
  /** |this - other| <= atol + rtol * |other| everywhere, as torch.allclose. */
  allclose(other: Tensor, rtol = 1e-5, atol = 1e-8, equalNan = false): boolean {
    return native.allclose(this.handle, checkTensor(other, "other", "allclose").handle, rtol, atol, equalNan);
  }
  /** Same shape and the same elements. */
  equal(other: Tensor): boolean {
    return native.equal(this.handle, checkTensor(other, "other", "equal").handle);
  }

  // ---- products -------------------------------------------------------------------------------
  matmul(other: Tensor): Tensor {
    return new Tensor(native.matmul(this.handle, checkTensor(other, "other", "matmul").handle));
  }
  mm(other: Tensor): Tensor {
    return new Tensor(native.mm(this.handle, checkTensor(other, "other", "mm").handle));
  }
  bmm(other: Tensor): Tensor {
    return new Tensor(native.bmm(this.handle, checkTensor(other, "other", "bmm").handle));
  }
  outer(other: Tensor): Tensor {
    return new Tensor(native.outer(this.handle, checkTensor(other, "other", "outer").handle));
  }

  // ---- reductions -----------------------------------------------------------------------------
  sum(dim?: number | Shape, keepdim = false, dtype?: DType): Tensor {
    const code = dtype === undefined ? null : DTYPES[checkDType(dtype, "sum")].code;
    return new Tensor(native.sum(this.handle, dimsArg(dim, "sum"), keepdim, code));
  }
  mean(dim?: number | Shape, keepdim = false, dtype?: DType): Tensor {
    const code = dtype === undefined ? null : DTYPES[checkDType(dtype, "mean")].code;
    return new Tensor(native.mean(this.handle, dimsArg(dim, "mean"), keepdim, code));
  }
  prod(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.prod(this.handle, dim === undefined ? null : checkInt(dim, "dim", "prod"), keepdim));
  }
  /** Standard deviation; `unbiased` uses N-1 as PyTorch's default. */
  std(dim?: number | Shape, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.std(this.handle, dimsArg(dim, "std"), unbiased, keepdim));
  }
  var(dim?: number | Shape, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.var(this.handle, dimsArg(dim, "var"), unbiased, keepdim));
  }
  norm(p = 2, dim?: number | Shape, keepdim = false): Tensor {
    return new Tensor(native.norm(this.handle, checkNumber(p, "p", "norm"), dimsArg(dim, "norm"), keepdim));
  }
  logsumexp(dim: number | Shape, keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.handle, dimsArg(dim, "logsumexp") ?? [], keepdim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, checkInt(dim, "dim", "cumsum")));
  }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return new Tensor(native.maxAll(this.handle));
    const [values, indices] = native.maxDim(this.handle, checkInt(dim, "dim", "max"), keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ValuesIndices {
    if (dim === undefined) return new Tensor(native.minAll(this.handle));
    const [values, indices] = native.minDim(this.handle, checkInt(dim, "dim", "min"), keepdim);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim === undefined ? null : checkInt(dim, "dim", "argmax"), keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmin(this.handle, dim === undefined ? null : checkInt(dim, "dim", "argmin"), keepdim));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): ValuesIndices {
    const [values, indices] = native.topk(
      this.handle,
      checkInt(k, "k", "topk"),
      checkInt(dim, "dim", "topk"),
      largest,
      sorted,
    );
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  /** A stable sort along `dim`. */
  sort(dim = -1, descending = false): ValuesIndices {
    const [values, indices] = native.sort(this.handle, checkInt(dim, "dim", "sort"), descending);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  argsort(dim = -1, descending = false): Tensor {
    return new Tensor(native.argsort(this.handle, checkInt(dim, "dim", "argsort"), descending));
  }
  all(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.all(this.handle, dim === undefined ? null : checkInt(dim, "dim", "all"), keepdim));
  }
  any(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.any(this.handle, dim === undefined ? null : checkInt(dim, "dim", "any"), keepdim));
  }

  // ---- in place -------------------------------------------------------------------------------
  add_(other: Tensor | number, alpha?: number): this {
    native.add_(this.handle, operand(other, "add_"), alpha ?? null);
    return this;
  }
  sub_(other: Tensor | number, alpha?: number): this {
    native.sub_(this.handle, operand(other, "sub_"), alpha ?? null);
    return this;
  }
  mul_(other: Tensor | number): this {
    native.mul_(this.handle, operand(other, "mul_"));
    return this;
  }
  div_(other: Tensor | number): this {
    native.div_(this.handle, operand(other, "div_"));
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    native.addcmul_(
      this.handle,
      checkTensor(t1, "t1", "addcmul_").handle,
      checkTensor(t2, "t2", "addcmul_").handle,
      value,
    );
    return this;
  }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: number): this {
    native.lerp_(this.handle, checkTensor(end, "end", "lerp_").handle, checkNumber(weight, "weight", "lerp_"));
    return this;
  }
  copy_(src: Tensor): this {
    native.copy_(this.handle, checkTensor(src, "src", "copy_").handle);
    return this;
  }
  zero_(): this {
    native.zero_(this.handle);
    return this;
  }
  fill_(value: number | boolean): this {
    if (typeof value !== "number" && typeof value !== "boolean") throw new TypeError("fill_: value must be a number");
    native.fill_(this.handle, value);
    return this;
  }
  clamp_(min: number | null = null, max: number | null = null): this {
    if (min === null && max === null) throw new TypeError("clamp_: at least one of min and max is required");
    native.clamp_(this.handle, min, max);
    return this;
  }
  relu_(): this {
    native.relu_(this.handle);
    return this;
  }
  maskedFill_(mask: Tensor, value: number): this {
    native.maskedFill_(
      this.handle,
      checkTensor(mask, "mask", "maskedFill_").handle,
      checkNumber(value, "value", "maskedFill_"),
    );
    return this;
  }
  uniform_(low = 0, high = 1): this {
    native.uniform_(this.handle, checkNumber(low, "low", "uniform_"), checkNumber(high, "high", "uniform_"));
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.normal_(this.handle, checkNumber(mean, "mean", "normal_"), checkNumber(std, "std", "normal_"));
    return this;
  }
}
markScoped(Tensor.prototype);
