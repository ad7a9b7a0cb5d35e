// Stochastic gradient descent with momentum, dampening, weight decay and Nesterov momentum, exactly
// as torch.optim.SGD (PyTorch 1.13, `_single_tensor_sgd`), with parameter groups and a state dict in
// PyTorch's layout so that optimizer checkpoints travel both ways.
//
// The update, for each parameter p with gradient g (Sutskever et al.'s form as PyTorch writes it):
//   g ← -g                           if maximize
//   g ← g + weight_decay · p         if weight_decay ≠ 0
//   b ← clone(g)                     on the first step with momentum ≠ 0 (PyTorch's rule)
//   b ← momentum · b + (1 − dampening) · g   on later steps
//   g ← g + momentum · b if nesterov, else g ← b
//   p ← p − lr · g
//
// Two implementations of that update, with bit-identical results: one pass per parameter
// (`_single_tensor_sgd`), and one multi-tensor pass per group over libtorch's _foreach_* ops
// (`_multi_tensor_sgd`), which crosses into native code a handful of times per group instead of a
// handful of times per parameter. The group's `foreach` chooses: false the per-parameter pass, true
// or null (the default) the multi-tensor pass.
import {
  Tensor,
  foreachAdd,
  foreachAdd_,
  foreachMul_,
  foreachNeg,
  gradsOf,
  keep,
  noGrad,
  scope,
} from "../torch/index.js";

/** Hyper-parameters of one parameter group (camelCase; the state dict uses PyTorch's snake_case). */
export interface SGDHyperParams {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

/**
 * The implementation choice, PyTorch's `foreach`: false one pass per parameter, true or null (default)
 * the multi-tensor pass. Both give the same bits; the multi-tensor one makes fewer native calls.
 */
export interface SGDForeach {
  foreach?: boolean | null;
}

/** Constructor defaults: `lr` is required, as in PyTorch. */
export type SGDOptions = Partial<SGDHyperParams> & SGDForeach & { lr: number };

/** A parameter group as passed to the constructor: its own hyper-parameters override the defaults. */
export type SGDParamGroupSpec = Partial<SGDHyperParams> & SGDForeach & { params: Iterable<Tensor> };

/** A live parameter group; change `lr` (or use setLr) to schedule the learning rate. */
export interface SGDParamGroup extends SGDHyperParams {
  readonly params: readonly Tensor[];
  /** false: one pass per parameter; true or null: the multi-tensor pass (same results). */
  foreach: boolean | null;
  /** Carried for PyTorch's state-dict layout only. */
  differentiable: boolean;
}

/** Per-parameter state: the momentum buffer (null while momentum is 0, as PyTorch stores None). */
export type SGDParamState = {
  momentum_buffer: Tensor | null;
};

/** One group in the state dict: PyTorch 1.13's keys, `params` as indices into the flattened groups. */
export type SGDStateDictGroup = {
  lr: number;
  momentum: number;
  dampening: number;
  weight_decay: number;
  nesterov: boolean;
  maximize: boolean;
  foreach: boolean | null;
  differentiable?: boolean;
  params: number[];
};

/**
 * `optimizer.state_dict()` of torch.optim.SGD: state keyed by parameter index (a Map, as our serializer
 * represents Python dicts with int keys) and the groups' hyper-parameters.
 */
export type SGDStateDict = {
  state: Map<number, SGDParamState>;
  param_groups: SGDStateDictGroup[];
};

const OP = "SGD";

function describe(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Tensor) return "a Tensor";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

function checkHyper(h: SGDHyperParams, where: string): void {
  const num = (value: unknown, name: string): void => {
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new TypeError(`${OP}: ${name} must be a finite number${where}, got ${describe(value)}`);
    }
  };
  num(h.lr, "lr");
  num(h.momentum, "momentum");
  num(h.dampening, "dampening");
  num(h.weightDecay, "weightDecay");
  if (typeof h.nesterov !== "boolean")
    throw new TypeError(`${OP}: nesterov must be a boolean${where}, got ${describe(h.nesterov)}`);
  if (typeof h.maximize !== "boolean")
    throw new TypeError(`${OP}: maximize must be a boolean${where}, got ${describe(h.maximize)}`);
  if (h.lr < 0) throw new RangeError(`${OP}: invalid learning rate ${h.lr}${where}: lr must be >= 0`);
  if (h.momentum < 0) throw new RangeError(`${OP}: invalid momentum ${h.momentum}${where}: momentum must be >= 0`);
  if (h.weightDecay < 0)
    throw new RangeError(`${OP}: invalid weightDecay ${h.weightDecay}${where}: weightDecay must be >= 0`);
  if (h.nesterov && (h.momentum <= 0 || h.dampening !== 0)) {
    throw new RangeError(
      `${OP}: Nesterov momentum requires momentum > 0 and dampening 0${where}, got momentum ${h.momentum} and dampening ${h.dampening}`,
    );
  }
}

const HYPER_KEYS = ["lr", "momentum", "dampening", "weightDecay", "nesterov", "maximize"] as const;

function pickHyper(source: Partial<SGDHyperParams>, defaults: SGDHyperParams): SGDHyperParams {
  const out = { ...defaults };
  for (const key of HYPER_KEYS) {
    const value = source[key];
    if (value !== undefined) (out as Record<string, unknown>)[key] = value;
  }
  return out;
}

function checkKeys(object: object, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(object)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${OP}: unknown option "${key}" in ${what} (expected one of ${allowed.join(", ")})`);
    }
  }
}

/** A number from a state dict: Python ints may arrive as bigint from the unpickler. */
function dictNumber(value: unknown, name: string, where: string): number {
  if (typeof value === "bigint") return Number(value);
  if (typeof value === "number") return value;
  throw new TypeError(`${OP}.loadStateDict: ${where}.${name} must be a number, got ${describe(value)}`);
}

function dictBool(value: unknown, name: string, where: string, fallback?: boolean): boolean {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value === "boolean") return value;
  throw new TypeError(`${OP}.loadStateDict: ${where}.${name} must be a boolean, got ${describe(value)}`);
}

function checkForeach(value: unknown, where: string): boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "boolean")
    throw new TypeError(`${OP}: foreach must be a boolean or null${where}, got ${describe(value)}`);
  return value;
}

export class SGD {
  readonly defaults: Readonly<SGDHyperParams>;
  readonly #defaultForeach: boolean | null;
  readonly paramGroups: SGDParamGroup[] = [];
  /** Per-parameter state, present for every parameter that has been stepped (PyTorch's rule). */
  readonly #state = new Map<Tensor, SGDParamState>();

  /**
   * @param params the tensors to optimise (leaf tensors), or parameter groups each with its own
   *   hyper-parameters; the options are the defaults of every group.
   */
  constructor(params: Iterable<Tensor> | Iterable<SGDParamGroupSpec>, options: SGDOptions) {
    if (typeof options !== "object" || options === null)
      throw new TypeError(`${OP}: options must be an object with lr`);
    checkKeys(options, [...HYPER_KEYS, "foreach"], "the options");
    if (options.lr === undefined) throw new TypeError(`${OP}: lr is required`);
    const defaults: SGDHyperParams = pickHyper(options, {
      lr: options.lr,
      momentum: 0,
      dampening: 0,
      weightDecay: 0,
      nesterov: false,
      maximize: false,
    });
    checkHyper(defaults, "");
    this.defaults = Object.freeze(defaults);
    this.#defaultForeach = checkForeach(options.foreach, "");
    if (params === null || typeof (params as Iterable<unknown>)?.[Symbol.iterator] !== "function") {
      throw new TypeError(`${OP}: params must be an iterable of Tensors or of parameter groups`);
    }
    const list = [...(params as Iterable<Tensor | SGDParamGroupSpec>)];
    if (list.length === 0) throw new RangeError(`${OP}: got an empty parameter list`);
    if (list.every((item) => item instanceof Tensor)) {
      this.addParamGroup({ params: list as Tensor[] });
    } else if (list.every((item) => !(item instanceof Tensor) && typeof item === "object" && item !== null)) {
      for (const group of list as SGDParamGroupSpec[]) this.addParamGroup(group);
    } else {
      throw new TypeError(`${OP}: params must be all Tensors or all parameter groups ({ params, ...options })`);
    }
  }

  /** Adds a group, as torch.optim.Optimizer.add_param_group; missing hyper-parameters come from the defaults. */
  addParamGroup(group: SGDParamGroupSpec): void {
    const where = ` (parameter group ${this.paramGroups.length})`;
    if (typeof group !== "object" || group === null) throw new TypeError(`${OP}: a parameter group must be an object`);
    checkKeys(group, ["params", ...HYPER_KEYS, "foreach"], `parameter group ${this.paramGroups.length}`);
    if (group.params === undefined || typeof group.params[Symbol.iterator] !== "function") {
      throw new TypeError(`${OP}: params of a parameter group must be an iterable of Tensors${where}`);
    }
    const params = [...group.params];
    const seen = new Set<Tensor>();
    for (const [i, p] of params.entries()) {
      if (!(p instanceof Tensor))
        throw new TypeError(`${OP}: params[${i}]${where} must be a Tensor, got ${describe(p)}`);
      if (p.isDisposed) throw new TypeError(`${OP}: params[${i}]${where} has been disposed`);
      if (!p.isLeaf) throw new TypeError(`${OP}: can't optimize a non-leaf Tensor (params[${i}]${where})`);
      if (seen.has(p)) throw new RangeError(`${OP}: params[${i}]${where} appears twice in the group`);
      seen.add(p);
    }
    for (const other of this.paramGroups) {
      if (other.params.some((p) => seen.has(p))) {
        throw new RangeError(`${OP}: some parameters appear in more than one parameter group`);
      }
    }
    const hyper = pickHyper(group, this.defaults);
    checkHyper(hyper, where);
    const foreach = group.foreach === undefined ? this.#defaultForeach : checkForeach(group.foreach, where);
    this.paramGroups.push({ ...hyper, params: Object.freeze(params), foreach, differentiable: false });
  }

  /** Every parameter's gradient to null (PyTorch's `zero_grad(set_to_none=True)`), or to zeros in place. */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    const setToNone = options.setToNone ?? true;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (setToNone) {
          p.grad = null;
        } else {
          const g = p.grad;
          if (g !== null) {
            noGrad(() => g.zero_());
            g.dispose();
          }
        }
      }
    }
  }

  /** One update of every parameter that has a gradient, in place, without recording autograd. */
  step(): void {
    noGrad(() =>
      scope(() => {
        for (const group of this.paramGroups) {
          if (group.foreach === false) this.#stepSingleTensor(group);
          else this.#stepMultiTensor(group);
        }
      }),
    );
  }

  #stateFor(p: Tensor): SGDParamState {
    let state = this.#state.get(p);
    if (state === undefined) {
      state = { momentum_buffer: null };
      this.#state.set(p, state);
    }
    return state;
  }

  /** PyTorch's `_single_tensor_sgd`: the update, one parameter at a time. */
  #stepSingleTensor(group: SGDParamGroup): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    for (const p of group.params) {
      const grad = p.grad;
      if (grad === null) continue;
      let dp = maximize ? grad.neg() : grad;
      if (weightDecay !== 0) dp = dp.add(p, weightDecay);
      const state = this.#stateFor(p);
      if (momentum !== 0) {
        let buf = state.momentum_buffer;
        if (buf === null) {
          buf = keep(dp.clone());
          state.momentum_buffer = buf;
        } else {
          buf.mul_(momentum).add_(dp, 1 - dampening);
        }
        dp = nesterov ? dp.add(buf, momentum) : buf;
      }
      p.add_(dp, -lr);
    }
  }

  /**
   * PyTorch's `_multi_tensor_sgd`: each line of the update over all the group's parameters at once.
   * Per parameter the same ops with the same scalars as the single-tensor pass, hence the same bits;
   * unlike PyTorch 1.13's version it never writes into `.grad` (Nesterov's step uses a new tensor).
   */
  #stepMultiTensor(group: SGDParamGroup): void {
    const { lr, momentum, dampening, weightDecay, nesterov, maximize } = group;
    const params: Tensor[] = [];
    const grads: Tensor[] = [];
    gradsOf(group.params).forEach((g, i) => {
      if (g === null) return;
      params.push(group.params[i] as Tensor);
      grads.push(g);
    });
    if (params.length === 0) return;
    let dps = maximize ? foreachNeg(grads) : grads;
    if (weightDecay !== 0) dps = foreachAdd(dps, params, weightDecay);
    const states = params.map((p) => this.#stateFor(p));
    if (momentum !== 0) {
      const existing = states.map((s) => s.momentum_buffer);
      let bufs: Tensor[];
      if (existing.every((b): b is Tensor => b !== null)) {
        bufs = existing;
        foreachMul_(bufs, momentum);
        foreachAdd_(bufs, dps, 1 - dampening);
      } else {
        // A first step (for some parameters at least): as PyTorch does, one at a time.
        bufs = states.map((state, i) => {
          const dp = dps[i] as Tensor;
          const buf = state.momentum_buffer;
          if (buf === null) {
            state.momentum_buffer = keep(dp.clone());
            return state.momentum_buffer;
          }
          return buf.mul_(momentum).add_(dp, 1 - dampening);
        });
      }
      dps = nesterov ? foreachAdd(dps, bufs, momentum) : bufs;
    }
    foreachAdd_(params, dps, -lr);
  }

  /** The state of one parameter (undefined before its first step). Its tensors are the optimizer's own. */
  stateOf(param: Tensor): Readonly<SGDParamState> | undefined {
    return this.#state.get(param);
  }

  /**
   * torch.optim.SGD's `state_dict()`: parameters numbered in group order. The momentum buffers are the
   * optimizer's own tensors (as in PyTorch), not copies: read or save them, do not dispose them.
   */
  stateDict(): SGDStateDict {
    const index = new Map<Tensor, number>();
    const param_groups: SGDStateDictGroup[] = this.paramGroups.map((group) => {
      const params = group.params.map((p) => {
        let i = index.get(p);
        if (i === undefined) {
          i = index.size;
          index.set(p, i);
        }
        return i;
      });
      return {
        lr: group.lr,
        momentum: group.momentum,
        dampening: group.dampening,
        weight_decay: group.weightDecay,
        nesterov: group.nesterov,
        maximize: group.maximize,
        foreach: group.foreach,
        differentiable: group.differentiable,
        params,
      };
    });
    const state = new Map<number, SGDParamState>();
    for (const [p, s] of this.#state) {
      const i = index.get(p);
      if (i !== undefined) state.set(i, { momentum_buffer: s.momentum_buffer });
    }
    return { state, param_groups };
  }

  /**
   * Loads a state dict from stateDict() or from PyTorch (`torch.load` of `optimizer.state_dict()`):
   * the groups' hyper-parameters and the momentum buffers, copied and cast to each parameter's dtype.
   * `state` may be a Map with number keys or an object with numeric string keys (JSON). Everything is
   * validated before anything changes.
   */
  loadStateDict(dict: SGDStateDict | { state: unknown; param_groups: unknown }): void {
    const op = `${OP}.loadStateDict`;
    if (typeof dict !== "object" || dict === null) throw new TypeError(`${op}: expected { state, param_groups }`);
    const savedGroups = (dict as { param_groups: unknown }).param_groups;
    if (!Array.isArray(savedGroups))
      throw new TypeError(`${op}: param_groups must be an array, got ${describe(savedGroups)}`);
    if (savedGroups.length !== this.paramGroups.length) {
      throw new RangeError(
        `${op}: loaded state dict has ${savedGroups.length} parameter groups, the optimizer has ${this.paramGroups.length}`,
      );
    }
    // Hyper-parameters and the index → parameter map, validated.
    const idMap = new Map<number, Tensor>();
    const newHyper: Array<SGDHyperParams & { foreach: boolean | null; differentiable: boolean }> = [];
    savedGroups.forEach((saved: unknown, g) => {
      const where = `param_groups[${g}]`;
      if (typeof saved !== "object" || saved === null) throw new TypeError(`${op}: ${where} must be an object`);
      const s = saved as Record<string, unknown>;
      const group = this.paramGroups[g] as SGDParamGroup;
      if (!Array.isArray(s.params)) throw new TypeError(`${op}: ${where}.params must be an array of indices`);
      if (s.params.length !== group.params.length) {
        throw new RangeError(
          `${op}: ${where} holds ${s.params.length} parameters, the optimizer's group ${g} holds ${group.params.length}`,
        );
      }
      s.params.forEach((id: unknown, k) => {
        const n = dictNumber(id, `params[${k}]`, where);
        if (!Number.isSafeInteger(n)) throw new TypeError(`${op}: ${where}.params[${k}] must be an integer, got ${n}`);
        idMap.set(n, group.params[k] as Tensor);
      });
      const foreach = s.foreach === undefined || s.foreach === null ? null : dictBool(s.foreach, "foreach", where);
      const hyper = {
        lr: dictNumber(s.lr, "lr", where),
        momentum: dictNumber(s.momentum, "momentum", where),
        dampening: dictNumber(s.dampening, "dampening", where),
        weightDecay: dictNumber(s.weight_decay, "weight_decay", where),
        nesterov: dictBool(s.nesterov, "nesterov", where, false),
        maximize: dictBool(s.maximize, "maximize", where, false),
        foreach,
        differentiable: dictBool(s.differentiable, "differentiable", where, false),
      };
      checkHyper(hyper, ` (${op}, ${where})`);
      newHyper.push(hyper);
    });
    // Per-parameter state, validated.
    const rawState = (dict as { state: unknown }).state;
    const entries: [number, unknown][] = [];
    if (rawState instanceof Map) {
      for (const [k, v] of rawState) entries.push([dictNumber(k, "key", "state"), v]);
    } else if (typeof rawState === "object" && rawState !== null && !Array.isArray(rawState)) {
      for (const [k, v] of Object.entries(rawState)) {
        const n = Number(k);
        if (!Number.isSafeInteger(n)) throw new TypeError(`${op}: state key "${k}" is not a parameter index`);
        entries.push([n, v]);
      }
    } else {
      throw new TypeError(
        `${op}: state must be a Map or an object keyed by parameter index, got ${describe(rawState)}`,
      );
    }
    const pending: [Tensor, Tensor | null][] = [];
    for (const [k, v] of entries) {
      const param = idMap.get(k);
      if (param === undefined) {
        throw new RangeError(`${op}: state[${k}] names no parameter (the groups list ${idMap.size} parameters)`);
      }
      if (typeof v !== "object" || v === null) throw new TypeError(`${op}: state[${k}] must be an object`);
      const entry = v instanceof Map ? Object.fromEntries(v) : (v as Record<string, unknown>);
      checkKeys(entry, ["momentum_buffer"], `state[${k}]`);
      const buf = entry.momentum_buffer;
      if (buf === undefined || buf === null) {
        pending.push([param, null]);
        continue;
      }
      if (!(buf instanceof Tensor))
        throw new TypeError(`${op}: state[${k}].momentum_buffer must be a Tensor or null, got ${describe(buf)}`);
      if (buf.isDisposed) throw new TypeError(`${op}: state[${k}].momentum_buffer has been disposed`);
      const [a, b] = [buf.shape, param.shape];
      if (a.length !== b.length || a.some((d, i) => d !== b[i])) {
        throw new RangeError(
          `${op}: state[${k}].momentum_buffer has shape [${a.join(", ")}], its parameter has shape [${b.join(", ")}]`,
        );
      }
      pending.push([param, buf]);
    }
    // Commit: copies of the buffers (cast like PyTorch's load_state_dict), then the hyper-parameters.
    const copies = noGrad(() =>
      pending.map(([param, buf]): [Tensor, Tensor | null] => {
        if (buf === null) return [param, null];
        const isFloat = param.dtype.startsWith("float") || param.dtype === "bfloat16";
        let copy = isFloat && buf.dtype !== param.dtype ? buf.to(param.dtype) : buf.clone();
        if (copy.device !== param.device) {
          const moved = copy.toDevice(param.device);
          copy.dispose();
          copy = moved;
        }
        return [param, keep(copy)];
      }),
    );
    this.#disposeState();
    for (const [param, buf] of copies) this.#state.set(param, { momentum_buffer: buf });
    newHyper.forEach((hyper, g) => Object.assign(this.paramGroups[g] as SGDParamGroup, hyper));
  }

  /** Frees the momentum buffers and forgets all state (the parameters are not touched). */
  dispose(): void {
    this.#disposeState();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  #disposeState(): void {
    for (const s of this.#state.values()) s.momentum_buffer?.dispose();
    this.#state.clear();
  }
}
