// Module: the torch.nn.Module of moco-ts. A tree of modules, each holding named parameters, buffers
// and child modules in registration order, so that dotted names (`layer1.0.downsample.1.running_mean`)
// and iteration orders are exactly PyTorch's.
//
// Ownership: a module owns the tensors registered with it. They are exempt from every enclosing
// `scope()` (registration calls `keep`) and live until `module.dispose()`.
//
// Subclasses keep their tensors and submodules in the registries (register*), and expose them through
// getters (`get weight() { return this.param("weight") }`), not through fields of their own: then
// `copy()`, `loadStateDict()` and `toDevice()` see everything. Other own fields should be plain
// configuration values (numbers, strings, booleans, functions, frozen arrays); `copy()` copies them
// shallowly. Do not keep state in `#private` fields: `copy()` cannot see them.
import { DTYPES, Tensor, keep, noGrad, type DType, type MemoryFormat, type Shape } from "../torch/index.js";
import { MocoError } from "../errors.js";

/** A state dict: names to tensors, in PyTorch's order (an ordered Map, like Python's OrderedDict). */
export type StateDict = Map<string, Tensor>;

/** What loadStateDict accepts: a Map (e.g. from stateDict() or a checkpoint) or a plain object. */
export type StateDictLike = ReadonlyMap<string, Tensor> | Readonly<Record<string, Tensor>>;

export interface LoadStateDictOptions {
  /** Missing or unexpected keys are errors (default true), as PyTorch's `strict`. */
  strict?: boolean;
  /**
   * Only keys starting with this prefix are considered, with the prefix removed; keys without it are
   * ignored (neither loaded nor reported). E.g. "module.encoder_q." for an official MoCo checkpoint.
   */
  stripPrefix?: string;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export interface ShapeMismatch {
  key: string;
  /** The shape in this module. */
  expected: Shape;
  /** The shape in the state dict being loaded. */
  got: Shape;
}

/** Raised by loadStateDict; nothing is copied when it is thrown. */
export class StateDictError extends MocoError {
  override name = "StateDictError";
  readonly missingKeys: readonly string[];
  readonly unexpectedKeys: readonly string[];
  readonly mismatchedKeys: readonly ShapeMismatch[];

  constructor(
    moduleName: string,
    missingKeys: readonly string[],
    unexpectedKeys: readonly string[],
    mismatchedKeys: readonly ShapeMismatch[],
  ) {
    const lines = [`Error(s) in loading state_dict for ${moduleName}:`];
    const quote = (keys: readonly string[]) => keys.map((k) => `"${k}"`).join(", ");
    if (missingKeys.length > 0) lines.push(`\tMissing key(s) in state_dict: ${quote(missingKeys)}.`);
    if (unexpectedKeys.length > 0) lines.push(`\tUnexpected key(s) in state_dict: ${quote(unexpectedKeys)}.`);
    for (const m of mismatchedKeys) {
      lines.push(
        `\tsize mismatch for ${m.key}: copying a param with shape [${m.got.join(", ")}] from checkpoint,` +
          ` the shape in current model is [${m.expected.join(", ")}].`,
      );
    }
    super("ERR_STATE_DICT", lines.join("\n"));
    this.missingKeys = missingKeys;
    this.unexpectedKeys = unexpectedKeys;
    this.mismatchedKeys = mismatchedKeys;
  }
}

/** Any module, whatever its forward signature. */
export type AnyModule = Module<unknown[], unknown>;

const NAME_RE = /^[^.]+$/;

function checkName(name: unknown, what: string): string {
  if (typeof name !== "string" || !NAME_RE.test(name)) {
    throw new TypeError(`${what}: name must be a non-empty string without ".", got ${JSON.stringify(name)}`);
  }
  return name;
}

function stateEntries(dict: StateDictLike): [string, unknown][] {
  if (dict instanceof Map) return [...dict.entries()];
  if (typeof dict === "object" && dict !== null) return Object.entries(dict);
  throw new TypeError("loadStateDict: expected a Map<string, Tensor> or a plain object of tensors");
}

/**
 * The base class of every layer and model. `TIn` are forward's arguments, `TOut` its result; most
 * layers are `Module` = `Module<[Tensor], Tensor>`.
 */
export abstract class Module<TIn extends unknown[] = [Tensor], TOut = Tensor> {
  /** Train mode (batch statistics in BN); set through train()/eval(). */
  training = true;
  /** @internal Registries, in registration order. A null entry is a declared but absent tensor (bias=None). */
  _parameters = new Map<string, Tensor | null>();
  /** @internal */
  _buffers = new Map<string, Tensor | null>();
  /** @internal */
  _nonPersistent = new Set<string>();
  /** @internal */
  _modules = new Map<string, AnyModule>();
  /** @internal */
  _disposed = false;

  abstract forward(...input: TIn): TOut;

  /** The class name, as PyTorch prints it (`ResNet`, `Conv2d`). */
  get typeName(): string {
    return this.constructor.name;
  }

  // ---- registration ---------------------------------------------------------------------------

  /**
   * Registers a parameter (or declares an absent one with null, like `bias=False`). The tensor must be
   * a leaf; it is made to require grad (unless `requiresGrad: false`) and kept from enclosing scopes.
   * Re-registering a name replaces the entry; the old tensor is not freed (the caller owns it).
   */
  registerParameter(name: string, tensor: Tensor | null, options: { requiresGrad?: boolean } = {}): Tensor | null {
    checkName(name, "registerParameter");
    this.checkFree(name, this._parameters, "registerParameter");
    if (tensor !== null) {
      if (!(tensor instanceof Tensor)) throw new TypeError(`registerParameter: "${name}" must be a Tensor or null`);
      if (!tensor.isLeaf) {
        throw new TypeError(
          `registerParameter: "${name}" must be a leaf tensor (create it under noGrad or detach() it first)`,
        );
      }
      keep(tensor);
      if (tensor.requiresGrad !== (options.requiresGrad ?? true)) tensor.requiresGrad_(options.requiresGrad ?? true);
    }
    this._parameters.set(name, tensor);
    return tensor;
  }

  /** Registers a buffer (state that is not a parameter, e.g. running_mean). Non-persistent buffers stay out of stateDict. */
  registerBuffer(name: string, tensor: Tensor | null, options: { persistent?: boolean } = {}): Tensor | null {
    checkName(name, "registerBuffer");
    this.checkFree(name, this._buffers, "registerBuffer");
    if (tensor !== null) {
      if (!(tensor instanceof Tensor)) throw new TypeError(`registerBuffer: "${name}" must be a Tensor or null`);
      keep(tensor);
    }
    this._buffers.set(name, tensor);
    if (options.persistent ?? true) this._nonPersistent.delete(name);
    else this._nonPersistent.add(name);
    return tensor;
  }

  /** Registers (or replaces) a child module; the old one is not disposed (the caller owns it). */
  registerModule<M extends AnyModule>(name: string, module: M): M {
    checkName(name, "registerModule");
    this.checkFree(name, this._modules, "registerModule");
    if (!(module instanceof Module)) throw new TypeError(`registerModule: "${name}" must be a Module`);
    this._modules.set(name, module);
    return module;
  }

  private checkFree(name: string, own: Map<string, unknown>, op: string): void {
    for (const registry of [this._parameters, this._buffers, this._modules] as Map<string, unknown>[]) {
      if (registry !== own && registry.has(name))
        throw new Error(`${op}: "${name}" is already registered as another kind`);
    }
  }

  /** A registered parameter of this module (not of children); throws if none is registered. */
  protected param(name: string): Tensor {
    const t = this._parameters.get(name);
    if (t == null) throw new Error(`${this.typeName}: no parameter "${name}"`);
    return t;
  }
  protected optionalParam(name: string): Tensor | null {
    return this._parameters.get(name) ?? null;
  }
  protected buffer(name: string): Tensor {
    const t = this._buffers.get(name);
    if (t == null) throw new Error(`${this.typeName}: no buffer "${name}"`);
    return t;
  }
  protected optionalBuffer(name: string): Tensor | null {
    return this._buffers.get(name) ?? null;
  }
  protected child<M extends AnyModule = AnyModule>(name: string): M {
    const m = this._modules.get(name);
    if (m === undefined) throw new Error(`${this.typeName}: no submodule "${name}"`);
    return m as M;
  }

  /** The submodule at a dotted path ("layer1.0.downsample"); "" is this module. */
  getSubmodule(target: string): AnyModule {
    let m = this as AnyModule;
    if (target === "") return m;
    for (const part of target.split(".")) {
      const next = m._modules.get(part);
      if (next === undefined)
        throw new Error(`getSubmodule: ${m.typeName} has no submodule "${part}" (in "${target}")`);
      m = next;
    }
    return m;
  }

  /** The parameter at a dotted path ("layer1.0.conv1.weight"). */
  getParameter(target: string): Tensor {
    const cut = target.lastIndexOf(".");
    const owner = this.getSubmodule(cut < 0 ? "" : target.slice(0, cut));
    const t = owner._parameters.get(target.slice(cut + 1));
    if (t == null) throw new Error(`getParameter: no parameter "${target}"`);
    return t;
  }

  /** The buffer at a dotted path ("bn1.running_mean"). */
  getBuffer(target: string): Tensor {
    const cut = target.lastIndexOf(".");
    const owner = this.getSubmodule(cut < 0 ? "" : target.slice(0, cut));
    const t = owner._buffers.get(target.slice(cut + 1));
    if (t == null) throw new Error(`getBuffer: no buffer "${target}"`);
    return t;
  }

  // ---- traversal (PyTorch's orders; shared tensors and modules appear once) --------------------

  /** [name, module] for this module ("" or prefix) and every descendant, preorder. */
  namedModules(prefix = ""): [string, AnyModule][] {
    const out: [string, AnyModule][] = [];
    const seen = new Set<AnyModule>();
    const visit = (m: AnyModule, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([name, m]);
      for (const [childName, child] of m._modules) visit(child, name === "" ? childName : `${name}.${childName}`);
    };
    visit(this, prefix);
    return out;
  }

  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  namedChildren(): [string, AnyModule][] {
    const seen = new Set<AnyModule>();
    const out: [string, AnyModule][] = [];
    for (const [name, m] of this._modules) {
      if (!seen.has(m)) {
        seen.add(m);
        out.push([name, m]);
      }
    }
    return out;
  }

  children(): AnyModule[] {
    return this.namedChildren().map(([, m]) => m);
  }

  private namedMembers(which: "_parameters" | "_buffers", prefix: string, recurse: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    const modules: [string, AnyModule][] = recurse ? this.namedModules(prefix) : [[prefix, this]];
    for (const [moduleName, m] of modules) {
      for (const [name, t] of m[which]) {
        if (t === null || seen.has(t)) continue;
        seen.add(t);
        out.push([moduleName === "" ? name : `${moduleName}.${name}`, t]);
      }
    }
    return out;
  }

  /** [dotted name, parameter] in PyTorch's order (the order optimisers see them). */
  namedParameters(prefix = "", recurse = true): [string, Tensor][] {
    return this.namedMembers("_parameters", prefix, recurse);
  }

  /** The parameters in PyTorch's order. These are the module's own tensors: do not dispose them. */
  parameters(recurse = true): Tensor[] {
    return this.namedParameters("", recurse).map(([, t]) => t);
  }

  namedBuffers(prefix = "", recurse = true): [string, Tensor][] {
    return this.namedMembers("_buffers", prefix, recurse);
  }

  buffers(recurse = true): Tensor[] {
    return this.namedBuffers("", recurse).map(([, t]) => t);
  }

  /** The number of parameter elements (each shared tensor counted once). */
  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel, 0);
  }

  // ---- modes and gradients --------------------------------------------------------------------

  /** Sets train mode (true) or eval mode (false) on this module and every descendant. */
  train(mode = true): this {
    if (typeof mode !== "boolean") throw new TypeError("train: mode must be a boolean");
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Sets requiresGrad on every parameter (e.g. false to freeze a backbone). */
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Calls fn on every descendant, children first, then on this module (as PyTorch's apply). */
  apply(fn: (module: AnyModule) => void): this {
    for (const child of this.children()) child.apply(fn);
    fn(this);
    return this;
  }

  // ---- state ----------------------------------------------------------------------------------

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's order (each module: its parameters,
   * then its buffers, then its children). The values are new detached handles sharing storage with the
   * module, like PyTorch's: the caller owns the handles (dispose them, or call inside scope()); writing
   * into them writes into the module.
   */
  stateDict(prefix = ""): StateDict {
    const out: StateDict = new Map();
    const seen = new Set<AnyModule>();
    const visit = (m: AnyModule, name: string) => {
      if (seen.has(m)) return;
      seen.add(m);
      const key = (k: string) => (name === "" ? k : `${name}.${k}`);
      for (const [k, t] of m._parameters) if (t !== null) out.set(key(k), t.detach());
      for (const [k, t] of m._buffers) if (t !== null && !m._nonPersistent.has(k)) out.set(key(k), t.detach());
      for (const [childName, child] of m._modules) visit(child, key(childName));
    };
    visit(this, prefix);
    return out;
  }

  /** The module's own tensors by state-dict name (no new handles). */
  private stateTensors(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [moduleName, m] of this.namedModules()) {
      const key = (k: string) => (moduleName === "" ? k : `${moduleName}.${k}`);
      for (const [k, t] of m._parameters) if (t !== null) out.set(key(k), t);
      for (const [k, t] of m._buffers) if (t !== null && !m._nonPersistent.has(k)) out.set(key(k), t);
    }
    return out;
  }

  /** The state-dict keys, in order, without creating tensors. */
  stateDictKeys(): string[] {
    return [...this.stateTensors().keys()];
  }

  /**
   * Copies values into this module's tensors in place (under noGrad; dtypes are converted as by
   * copy_). Shape mismatches always throw; missing and unexpected keys throw when `strict` (the
   * default). A thrown StateDictError names every offending key, and nothing is copied. Returns the
   * missing and unexpected keys (both empty after a strict load).
   */
  loadStateDict(dict: StateDictLike, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const strict = options.strict ?? true;
    const prefix = options.stripPrefix ?? "";
    if (typeof prefix !== "string") throw new TypeError("loadStateDict: stripPrefix must be a string");
    const given = new Map<string, Tensor>();
    for (const [rawKey, value] of stateEntries(dict)) {
      if (!rawKey.startsWith(prefix)) continue;
      const key = rawKey.slice(prefix.length);
      if (!(value instanceof Tensor)) {
        throw new TypeError(
          `loadStateDict: value of "${rawKey}" must be a Tensor, got ${value === null ? "null" : typeof value}`,
        );
      }
      if (value.isDisposed) throw new Error(`loadStateDict: the tensor of "${rawKey}" was disposed`);
      given.set(key, value);
    }
    const own = this.stateTensors();
    const missingKeys: string[] = [];
    const mismatchedKeys: ShapeMismatch[] = [];
    for (const [key, target] of own) {
      const source = given.get(key);
      if (source === undefined) missingKeys.push(key);
      else if (!sameShape(source.shape, target.shape))
        mismatchedKeys.push({ key, expected: target.shape, got: source.shape });
    }
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    if (mismatchedKeys.length > 0 || (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0))) {
      throw new StateDictError(this.typeName, strict ? missingKeys : [], strict ? unexpectedKeys : [], mismatchedKeys);
    }
    noGrad(() => {
      for (const [key, target] of own) {
        const source = given.get(key);
        if (source !== undefined && source !== target) target.copy_(source);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- copies, devices, lifetime -------------------------------------------------------------

  /**
   * A deep copy: the same structure and configuration, every parameter and buffer cloned (same
   * values, independent storage; parameters are leaves with the same requiresGrad, without grad).
   * Tensors shared within the tree stay shared in the copy. MoCo's key encoder starts as one.
   */
  copy(): this {
    const tensors = new Map<Tensor, Tensor>();
    const cloneTensor = (t: Tensor, isParam: boolean): Tensor => {
      let c = tensors.get(t);
      if (c === undefined) {
        c = keep(noGrad(() => t.clone()));
        if (isParam && t.requiresGrad) c.requiresGrad_(true);
        tensors.set(t, c);
      }
      return c;
    };
    const modules = new Map<AnyModule, AnyModule>();
    for (const m of this.modules()) {
      const c = Object.create(Object.getPrototypeOf(m) as object) as AnyModule;
      modules.set(m, c);
    }
    const remap = (value: unknown, where: string): unknown => {
      if (value instanceof Module) {
        const c = modules.get(value);
        if (c === undefined) throw new Error(`copy: ${where} refers to a module outside the copied tree`);
        return c;
      }
      if (value instanceof Tensor) {
        const c = tensors.get(value);
        if (c === undefined) throw new Error(`copy: ${where} holds a tensor that is not registered; register it`);
        return c;
      }
      if (Array.isArray(value)) {
        const mapped = value.map((v, i) => remap(v, `${where}[${i}]`));
        return Object.isFrozen(value) ? Object.freeze(mapped) : mapped;
      }
      return value;
    };
    for (const [m, c] of modules) {
      const target = c as unknown as Record<string, unknown>;
      target._parameters = new Map([...m._parameters].map(([k, t]) => [k, t === null ? null : cloneTensor(t, true)]));
      target._buffers = new Map([...m._buffers].map(([k, t]) => [k, t === null ? null : cloneTensor(t, false)]));
      target._nonPersistent = new Set(m._nonPersistent);
    }
    for (const [m, c] of modules) {
      const target = c as unknown as Record<string, unknown>;
      target._modules = new Map([...m._modules].map(([k, child]) => [k, modules.get(child) as AnyModule]));
      for (const key of Object.keys(m)) {
        if (key === "_parameters" || key === "_buffers" || key === "_nonPersistent" || key === "_modules") continue;
        target[key] = remap((m as unknown as Record<string, unknown>)[key], `${m.typeName}.${key}`);
      }
    }
    return modules.get(this) as this;
  }

  /**
   * The device of this module's tensors (its first parameter's, else its first buffer's; "cpu" when it
   * has none): what a caller moves inputs to and makes new tensors on.
   */
  get device(): string {
    for (const m of this.modules()) {
      for (const t of m._parameters.values()) if (t !== null) return t.device;
    }
    for (const m of this.modules()) {
      for (const t of m._buffers.values()) if (t !== null) return t.device;
    }
    return "cpu";
  }

  /**
   * Moves every parameter and buffer to `device` ("cpu", "cuda:0"), replacing the tensors in the
   * registries (parameters stay leaves with their requiresGrad; grads are dropped). The old tensors are
   * freed. Returns this.
   */
  toDevice(device: string): this {
    if (typeof device !== "string") throw new TypeError('toDevice: device must be a string like "cpu" or "cuda:0"');
    const moved = new Map<Tensor, Tensor>();
    const move = (t: Tensor, isParam: boolean): Tensor => {
      let c = moved.get(t);
      if (c === undefined) {
        if (t.device === device) c = t;
        else {
          c = keep(noGrad(() => t.toDevice(device)));
          if (isParam && t.requiresGrad) c.requiresGrad_(true);
        }
        moved.set(t, c);
      }
      return c;
    };
    for (const m of this.modules()) {
      for (const [k, t] of m._parameters) if (t !== null) m._parameters.set(k, move(t, true));
      for (const [k, t] of m._buffers) if (t !== null) m._buffers.set(k, move(t, false));
    }
    for (const [old, c] of moved) if (old !== c) old.dispose();
    return this;
  }

  /**
   * PyTorch's `module.to(dtype=..., memory_format=...)`: floating parameters and buffers (and their
   * gradients) to `dtype`; 4-d and 5-d ones to `memoryFormat` (e.g. "channelsLast" for the conv
   * weights; 1-d BN parameters are untouched, as in PyTorch). Tensors are converted in place of their
   * data, as PyTorch's `param.data = ...`: the same Tensor objects, so optimizers and parameter lists
   * taken before stay valid. Returns this.
   */
  to(options: { dtype?: DType; memoryFormat?: MemoryFormat }): this {
    const op = "Module.to";
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`${op}: options must be an object like { memoryFormat: "channelsLast" }`);
    }
    const { dtype, memoryFormat } = options;
    if (dtype !== undefined && !(Object.hasOwn(DTYPES, dtype) && DTYPES[dtype].isFloating)) {
      throw new TypeError(`${op}: only floating dtypes are accepted, got ${String(dtype)}`);
    }
    const convert = (t: Tensor): void => {
      const castTo = dtype !== undefined && DTYPES[t.dtype].isFloating && t.dtype !== dtype ? dtype : undefined;
      const layout = memoryFormat !== undefined && (t.ndim === 4 || t.ndim === 5) ? memoryFormat : undefined;
      if (castTo === undefined && (layout === undefined || t.isContiguousIn(layout))) return;
      noGrad(() => {
        const cast = castTo === undefined ? t : t.to(castTo);
        const converted = layout === undefined ? cast : cast.contiguous({ memoryFormat: layout });
        t.setData_(converted);
        if (converted !== cast) converted.dispose();
        if (cast !== t) cast.dispose();
      });
    };
    const seen = new Set<Tensor>();
    for (const m of this.modules()) {
      for (const t of [...m._parameters.values(), ...m._buffers.values()]) {
        if (t === null || seen.has(t)) continue;
        seen.add(t);
        convert(t);
        const grad = t.grad;
        if (grad !== null) {
          convert(grad);
          grad.dispose();
        }
      }
    }
    return this;
  }

  /** Frees every parameter and buffer of this module and its descendants. Idempotent. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const t of m._parameters.values()) t?.dispose();
      for (const t of m._buffers.values()) t?.dispose();
      m._disposed = true;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  // ---- printing -------------------------------------------------------------------------------

  /** The configuration shown in toString(), as PyTorch's extra_repr. */
  extraRepr(): string {
    return "";
  }

  toString(): string {
    const extra = this.extraRepr();
    if (this._modules.size === 0) return `${this.typeName}(${extra})`;
    const lines = [`${this.typeName}(`];
    if (extra !== "") lines.push(`  ${extra}`);
    for (const [name, m] of this._modules) {
      lines.push(`  (${name}): ${String(m).split("\n").join("\n  ")}`);
    }
    lines.push(")");
    return lines.join("\n");
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * `tensor` on `device`: itself when it is already there (no copy, no new handle), else a copy there
 * (the caller owns it). Inputs go to their module's device this way.
 */
export function onDevice(tensor: Tensor, device: string): Tensor {
  return tensor.device === device ? tensor : tensor.toDevice(device);
}
