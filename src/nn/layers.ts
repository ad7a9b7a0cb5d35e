// The layers of torch.nn that ResNets and MoCo heads are made of, with PyTorch's parameter names,
// shapes, defaults and default initialisation.
import { F, empty, type Tensor } from "../torch/index.js";
import { calculateFanInAndFanOut, kaimingUniform_, uniform_ } from "./init.js";
import { Module, type AnyModule } from "./module.js";

export type Pair = number | readonly [number, number];

function pairOf(value: Pair, what: string, op: string): readonly [number, number] {
  const p: readonly number[] = typeof value === "number" ? [value, value] : value;
  if (p.length !== 2 || !p.every((v) => Number.isSafeInteger(v) && v >= 0)) {
    throw new RangeError(
      `${op}: ${what} must be a non-negative integer or a pair of them, got ${JSON.stringify(value)}`,
    );
  }
  return Object.freeze([p[0] as number, p[1] as number]);
}

function positiveInt(value: unknown, what: string, op: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new RangeError(`${op}: ${what} must be a positive integer, got ${String(value)}`);
  }
  return value as number;
}

function fmtPair(p: readonly [number, number]): string {
  return `(${p[0]}, ${p[1]})`;
}

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  /** Default true, as PyTorch. */
  bias?: boolean;
}

/**
 * nn.Conv2d: `weight` (out, in/groups, kh, kw) and optional `bias` (out), initialised as PyTorch:
 * kaiming_uniform_(a=√5) on the weight, U(-1/√fan_in, 1/√fan_in) on the bias.
 */
export class Conv2d extends Module {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly groups: number;

  constructor(inChannels: number, outChannels: number, kernelSize: Pair, options: Conv2dOptions = {}) {
    super();
    const op = "Conv2d";
    this.inChannels = positiveInt(inChannels, "inChannels", op);
    this.outChannels = positiveInt(outChannels, "outChannels", op);
    this.kernelSize = pairOf(kernelSize, "kernelSize", op);
    this.stride = pairOf(options.stride ?? 1, "stride", op);
    this.padding = pairOf(options.padding ?? 0, "padding", op);
    this.dilation = pairOf(options.dilation ?? 1, "dilation", op);
    this.groups = positiveInt(options.groups ?? 1, "groups", op);
    if (this.kernelSize.includes(0) || this.stride.includes(0) || this.dilation.includes(0)) {
      throw new RangeError(`${op}: kernelSize, stride and dilation must be positive`);
    }
    if (inChannels % this.groups !== 0)
      throw new RangeError(`${op}: inChannels (${inChannels}) must be divisible by groups (${this.groups})`);
    if (outChannels % this.groups !== 0)
      throw new RangeError(`${op}: outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    this.registerParameter("weight", empty([outChannels, inChannels / this.groups, ...this.kernelSize]));
    this.registerParameter("bias", (options.bias ?? true) ? empty([outChannels]) : null);
    this.resetParameters();
  }

  get weight(): Tensor {
    return this.param("weight");
  }
  get bias(): Tensor | null {
    return this.optionalParam("bias");
  }

  /** PyTorch's default initialisation (draws from the global generator: weight, then bias). */
  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    const bias = this.bias;
    if (bias !== null) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      if (fanIn !== 0) {
        const bound = 1 / Math.sqrt(fanIn);
        uniform_(bias, -bound, bound);
      }
    }
  }

  forward(input: Tensor): Tensor {
    return F.conv2d(input, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    });
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${fmtPair(this.kernelSize)}, stride=${fmtPair(this.stride)}`;
    if (this.padding[0] !== 0 || this.padding[1] !== 0) s += `, padding=${fmtPair(this.padding)}`;
    if (this.dilation[0] !== 1 || this.dilation[1] !== 1) s += `, dilation=${fmtPair(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ", bias=False";
    return s;
  }
}

/**
 * nn.Linear: `weight` (out, in), optional `bias` (out); PyTorch's default initialisation
 * (kaiming_uniform_(a=√5), bias U(-1/√in, 1/√in)).
 */
export class Linear extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, options: { bias?: boolean } = {}) {
    super();
    this.inFeatures = positiveInt(inFeatures, "inFeatures", "Linear");
    this.outFeatures = positiveInt(outFeatures, "outFeatures", "Linear");
    this.registerParameter("weight", empty([outFeatures, inFeatures]));
    this.registerParameter("bias", (options.bias ?? true) ? empty([outFeatures]) : null);
    this.resetParameters();
  }

  get weight(): Tensor {
    return this.param("weight");
  }
  get bias(): Tensor | null {
    return this.optionalParam("bias");
  }

  resetParameters(): void {
    kaimingUniform_(this.weight, { a: Math.sqrt(5) });
    const bias = this.bias;
    if (bias !== null) {
      const [fanIn] = calculateFanInAndFanOut(this.weight);
      const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
      uniform_(bias, -bound, bound);
    }
  }

  forward(input: Tensor): Tensor {
    return F.linear(input, this.weight, this.bias);
  }

  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${this.bias === null ? "False" : "True"}`;
  }
}

/** nn.ReLU; with `inplace` the input is overwritten and returned (as torchvision's ResNet does). */
export class ReLU extends Module {
  readonly inplace: boolean;

  constructor(options: { inplace?: boolean } = {}) {
    super();
    this.inplace = options.inplace ?? false;
  }

  forward(input: Tensor): Tensor {
    return this.inplace ? input.relu_() : input.relu();
  }

  override extraRepr(): string {
    return this.inplace ? "inplace=True" : "";
  }
}

export interface MaxPool2dOptions {
  /** Default: kernelSize. */
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  readonly kernelSize: readonly [number, number];
  readonly stride: readonly [number, number];
  readonly padding: readonly [number, number];
  readonly dilation: readonly [number, number];
  readonly ceilMode: boolean;

  constructor(kernelSize: Pair, options: MaxPool2dOptions = {}) {
    super();
    const op = "MaxPool2d";
    this.kernelSize = pairOf(kernelSize, "kernelSize", op);
    this.stride = options.stride === undefined ? this.kernelSize : pairOf(options.stride, "stride", op);
    this.padding = pairOf(options.padding ?? 0, "padding", op);
    this.dilation = pairOf(options.dilation ?? 1, "dilation", op);
    this.ceilMode = options.ceilMode ?? false;
  }

  forward(input: Tensor): Tensor {
    return F.maxPool2d(input, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      ceilMode: this.ceilMode,
    });
  }

  override extraRepr(): string {
    return `kernel_size=${fmtPair(this.kernelSize)}, stride=${fmtPair(this.stride)}, padding=${fmtPair(this.padding)}, dilation=${fmtPair(this.dilation)}, ceil_mode=${this.ceilMode ? "True" : "False"}`;
  }
}

export class AdaptiveAvgPool2d extends Module {
  readonly outputSize: readonly [number, number];

  constructor(outputSize: Pair) {
    super();
    this.outputSize = pairOf(outputSize, "outputSize", "AdaptiveAvgPool2d");
  }

  forward(input: Tensor): Tensor {
    return F.adaptiveAvgPool2d(input, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=${fmtPair(this.outputSize)}`;
  }
}

/** nn.Flatten: flattens dims startDim..endDim (default 1..-1), a view where possible. */
export class Flatten extends Module {
  readonly startDim: number;
  readonly endDim: number;

  constructor(startDim = 1, endDim = -1) {
    super();
    this.startDim = startDim;
    this.endDim = endDim;
  }

  forward(input: Tensor): Tensor {
    return input.flatten(this.startDim, this.endDim);
  }

  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}

/** nn.Identity: returns its input (the same Tensor object). */
export class Identity extends Module {
  forward(input: Tensor): Tensor {
    return input;
  }
}

/**
 * nn.Sequential: children named "0", "1", ...; forward feeds each child's output to the next. The
 * handles of intermediate results are freed as soon as the next child has consumed them (autograd
 * keeps what backward needs), so a forward pass leaves only its result in the enclosing scope.
 */
export class Sequential extends Module {
  constructor(...modules: Module[]) {
    super();
    modules.forEach((m, i) => this.registerModule(String(i), m));
  }

  get length(): number {
    return this._modules.size;
  }

  /** The i-th child (negative counts from the end). */
  at(index: number): Module {
    const n = this._modules.size;
    const i = index < 0 ? index + n : index;
    const m = this._modules.get(String(i));
    if (m === undefined) throw new RangeError(`Sequential.at: index ${index} out of range for length ${n}`);
    return m as Module;
  }

  append(module: Module): this {
    this.registerModule(String(this._modules.size), module);
    return this;
  }

  [Symbol.iterator](): IterableIterator<Module> {
    return this._modules.values() as IterableIterator<AnyModule> as IterableIterator<Module>;
  }

  forward(input: Tensor): Tensor {
    let x = input;
    for (const m of this._modules.values()) {
      const y = (m as Module).forward(x);
      if (x !== input && y !== x) x.dispose();
      x = y;
    }
    return x;
  }
}
