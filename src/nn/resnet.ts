// torchvision.models.resnet (v1.5: the stride of a Bottleneck is on its 3×3 conv), with the options
// MoCo needs: the fc size (or none), input channels, a CIFAR stem, a width for small models and the
// normalisation layer (plain or split BN). Parameter and buffer names, their order and the random
// initialisation (draw for draw, from the global generator) are torchvision's, so torchvision weights
// load strictly into ours, ours into torchvision, and `manualSeed(s); resnet18()` equals
// `torch.manual_seed(s); torchvision.models.resnet18()`.
import { tensor, type Tensor } from "../torch/index.js";
import { BatchNorm2d, SplitBatchNorm, type NormLayerFactory } from "./batchnorm.js";
import { constant_, kaimingNormal_ } from "./init.js";
import { AdaptiveAvgPool2d, Conv2d, Identity, Linear, MaxPool2d, ReLU, Sequential } from "./layers.js";
import { Module } from "./module.js";

const defaultNorm: NormLayerFactory = (numFeatures) => new BatchNorm2d(numFeatures);

function conv3x3(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false });
}

function conv1x1(inPlanes: number, outPlanes: number, stride = 1): Conv2d {
  return new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false });
}

/** Runs `m` on `x` and frees the handle of `x` unless it is `keepInput` or `m` returned it. */
function step(m: Module, x: Tensor, keepInput: Tensor): Tensor {
  const y = m.forward(x);
  if (y !== x && x !== keepInput) x.dispose();
  return y;
}

/** The two-conv residual block of ResNet-18/34 (torchvision's BasicBlock). */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  readonly stride: number;

  constructor(
    inPlanes: number,
    planes: number,
    stride = 1,
    downsample: Sequential | null = null,
    normLayer: NormLayerFactory = defaultNorm,
  ) {
    super();
    this.registerModule("conv1", conv3x3(inPlanes, planes, stride));
    this.registerModule("bn1", normLayer(planes));
    this.registerModule("relu", new ReLU({ inplace: true }));
    this.registerModule("conv2", conv3x3(planes, planes));
    this.registerModule("bn2", normLayer(planes));
    if (downsample !== null) this.registerModule("downsample", downsample);
    this.stride = stride;
  }

  get conv1(): Conv2d {
    return this.child("conv1");
  }
  get bn1(): BatchNorm2d {
    return this.child("bn1");
  }
  get relu(): ReLU {
    return this.child("relu");
  }
  get conv2(): Conv2d {
    return this.child("conv2");
  }
  get bn2(): BatchNorm2d {
    return this.child("bn2");
  }
  get downsample(): Sequential | null {
    return (this._modules.get("downsample") as Sequential | undefined) ?? null;
  }

  forward(x: Tensor): Tensor {
    let out = step(this.conv1, x, x);
    out = step(this.bn1, out, x);
    out = step(this.relu, out, x);
    out = step(this.conv2, out, x);
    out = step(this.bn2, out, x);
    const downsample = this.downsample;
    const identity = downsample === null ? x : downsample.forward(x);
    out.add_(identity);
    if (identity !== x) identity.dispose();
    return step(this.relu, out, x);
  }
}

/** The 1×1-3×3-1×1 block of ResNet-50/101/152, stride on the 3×3 (torchvision's Bottleneck, v1.5). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  readonly stride: number;

  constructor(
    inPlanes: number,
    planes: number,
    stride = 1,
    downsample: Sequential | null = null,
    normLayer: NormLayerFactory = defaultNorm,
  ) {
    super();
    const width = planes; // torchvision: int(planes * (base_width / 64.)) * groups, with base_width 64, groups 1
    this.registerModule("conv1", conv1x1(inPlanes, width));
    this.registerModule("bn1", normLayer(width));
    this.registerModule("conv2", conv3x3(width, width, stride));
    this.registerModule("bn2", normLayer(width));
    this.registerModule("conv3", conv1x1(width, planes * Bottleneck.expansion));
    this.registerModule("bn3", normLayer(planes * Bottleneck.expansion));
    this.registerModule("relu", new ReLU({ inplace: true }));
    if (downsample !== null) this.registerModule("downsample", downsample);
    this.stride = stride;
  }

  get conv1(): Conv2d {
    return this.child("conv1");
  }
  get bn1(): BatchNorm2d {
    return this.child("bn1");
  }
  get conv2(): Conv2d {
    return this.child("conv2");
  }
  get bn2(): BatchNorm2d {
    return this.child("bn2");
  }
  get conv3(): Conv2d {
    return this.child("conv3");
  }
  get bn3(): BatchNorm2d {
    return this.child("bn3");
  }
  get relu(): ReLU {
    return this.child("relu");
  }
  get downsample(): Sequential | null {
    return (this._modules.get("downsample") as Sequential | undefined) ?? null;
  }

  forward(x: Tensor): Tensor {
    const relu = this.relu;
    let out = step(this.conv1, x, x);
    out = step(this.bn1, out, x);
    out = step(relu, out, x);
    out = step(this.conv2, out, x);
    out = step(this.bn2, out, x);
    out = step(relu, out, x);
    out = step(this.conv3, out, x);
    out = step(this.bn3, out, x);
    const downsample = this.downsample;
    const identity = downsample === null ? x : downsample.forward(x);
    out.add_(identity);
    if (identity !== x) identity.dispose();
    return step(relu, out, x);
  }
}

export type BlockKind = "basic" | "bottleneck";

export interface ResNetOptions {
  /** Outputs of `fc` (default 1000); 0 makes `fc` an Identity, so the model returns features. */
  numClasses?: number;
  /** Channels of the input images (default 3). */
  inChannels?: number;
  /** 3×3 stride-1 conv1 and no max-pool (`maxpool` is an Identity), for 32×32 images; names unchanged. */
  cifarStem?: boolean;
  /** Base width: channels of the stem and of layer1's 3×3 convs (default 64); stage widths are w, 2w, 4w, 8w. */
  width?: number;
  /** Alternative to `width`: width = round(64 × widthMultiplier). */
  widthMultiplier?: number;
  /** The normalisation layer (default BatchNorm2d with PyTorch's defaults); e.g. splitBatchNorm(8). */
  normLayer?: NormLayerFactory;
  /** Zero the last BN weight of each residual block, so each block starts as the identity (default false). */
  zeroInitResidual?: boolean;
}

const OPTION_KEYS = new Set([
  "numClasses",
  "inChannels",
  "cifarStem",
  "width",
  "widthMultiplier",
  "normLayer",
  "zeroInitResidual",
]);

function nonNegativeInt(value: unknown, what: string, min: number): number {
  if (!Number.isSafeInteger(value) || (value as number) < min) {
    throw new RangeError(`ResNet: ${what} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value as number;
}

/** torchvision's ResNet. Children: conv1, bn1, relu, maxpool, layer1..layer4, avgpool, fc. */
export class ResNet extends Module {
  readonly block: BlockKind;
  readonly layers: readonly number[];
  readonly numClasses: number;
  readonly inChannels: number;
  readonly cifarStem: boolean;
  readonly width: number;
  /** Channels of the pooled features fed to `fc` (512 for ResNet-18/34 at width 64, 2048 for ResNet-50+). */
  readonly featureDim: number;
  /**
   * S when every norm layer is a SplitBatchNorm of S > 1 splits: the batch is then reordered so each
   * split is a block of consecutive samples (see SplitOrder), and put back in order at the output. 1 otherwise.
   */
  readonly batchSplits: number;

  constructor(block: BlockKind, layers: readonly number[], options: ResNetOptions = {}) {
    super();
    for (const key of Object.keys(options)) {
      if (!OPTION_KEYS.has(key))
        throw new TypeError(`ResNet: unknown option "${key}" (known: ${[...OPTION_KEYS].join(", ")})`);
    }
    if (block !== "basic" && block !== "bottleneck")
      throw new TypeError(`ResNet: block must be "basic" or "bottleneck", got ${String(block)}`);
    if (!Array.isArray(layers) || layers.length !== 4) throw new TypeError("ResNet: layers must list 4 block counts");
    layers.forEach((n, i) => nonNegativeInt(n, `layers[${i}]`, 1));
    if (options.width !== undefined && options.widthMultiplier !== undefined) {
      throw new TypeError("ResNet: give width or widthMultiplier, not both");
    }
    let width = options.width ?? 64;
    if (options.widthMultiplier !== undefined) {
      if (!(options.widthMultiplier > 0))
        throw new RangeError(`ResNet: widthMultiplier must be positive, got ${options.widthMultiplier}`);
      width = Math.max(1, Math.round(64 * options.widthMultiplier));
    }
    this.width = nonNegativeInt(width, "width", 1);
    this.numClasses = nonNegativeInt(options.numClasses ?? 1000, "numClasses", 0);
    this.inChannels = nonNegativeInt(options.inChannels ?? 3, "inChannels", 1);
    this.cifarStem = options.cifarStem ?? false;
    this.block = block;
    this.layers = Object.freeze([...layers]);
    const normLayer = options.normLayer ?? defaultNorm;
    const Block = block === "basic" ? BasicBlock : Bottleneck;
    const expansion = Block.expansion;

    // Construction order = torchvision's, so that default initialisations draw in the same order.
    let inPlanes = this.width;
    this.registerModule(
      "conv1",
      this.cifarStem
        ? new Conv2d(this.inChannels, inPlanes, 3, { stride: 1, padding: 1, bias: false })
        : new Conv2d(this.inChannels, inPlanes, 7, { stride: 2, padding: 3, bias: false }),
    );
    this.registerModule("bn1", normLayer(inPlanes));
    this.registerModule("relu", new ReLU({ inplace: true }));
    this.registerModule("maxpool", this.cifarStem ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 }));
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      let downsample: Sequential | null = null;
      if (stride !== 1 || inPlanes !== planes * expansion) {
        downsample = new Sequential(conv1x1(inPlanes, planes * expansion, stride), normLayer(planes * expansion));
      }
      const seq = new Sequential(new Block(inPlanes, planes, stride, downsample, normLayer));
      inPlanes = planes * expansion;
      for (let i = 1; i < blocks; i++) seq.append(new Block(inPlanes, planes, 1, null, normLayer));
      return seq;
    };
    const w = this.width;
    this.registerModule("layer1", makeLayer(w, layers[0] as number, 1));
    this.registerModule("layer2", makeLayer(2 * w, layers[1] as number, 2));
    this.registerModule("layer3", makeLayer(4 * w, layers[2] as number, 2));
    this.registerModule("layer4", makeLayer(8 * w, layers[3] as number, 2));
    this.registerModule("avgpool", new AdaptiveAvgPool2d([1, 1]));
    this.featureDim = 8 * w * expansion;
    this.registerModule("fc", this.numClasses > 0 ? new Linear(this.featureDim, this.numClasses) : new Identity());

    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: "fan_out", nonlinearity: "relu" });
      else if (m instanceof BatchNorm2d) {
        if (m.weight !== null) constant_(m.weight, 1);
        if (m.bias !== null) constant_(m.bias, 0);
      }
    }
    const splitLayers = this.modules().filter((m): m is SplitBatchNorm => m instanceof SplitBatchNorm);
    const splits = new Set(splitLayers.map((m) => m.numSplits));
    const allSplit =
      splitLayers.length > 0 && splitLayers.length === this.modules().filter((m) => m instanceof BatchNorm2d).length;
    this.batchSplits = allSplit && splits.size === 1 ? (splitLayers[0] as SplitBatchNorm).numSplits : 1;
    if (this.batchSplits > 1) for (const m of splitLayers) m.order = "consecutive";
    if (options.zeroInitResidual === true) {
      for (const m of this.modules()) {
        const last = m instanceof Bottleneck ? m.bn3 : m instanceof BasicBlock ? m.bn2 : null;
        if (last?.weight != null) constant_(last.weight, 0);
      }
    }
  }

  get conv1(): Conv2d {
    return this.child("conv1");
  }
  get bn1(): BatchNorm2d {
    return this.child("bn1");
  }
  get relu(): ReLU {
    return this.child("relu");
  }
  get maxpool(): Module {
    return this.child("maxpool");
  }
  get layer1(): Sequential {
    return this.child("layer1");
  }
  get layer2(): Sequential {
    return this.child("layer2");
  }
  get layer3(): Sequential {
    return this.child("layer3");
  }
  get layer4(): Sequential {
    return this.child("layer4");
  }
  get avgpool(): Module {
    return this.child("avgpool");
  }
  /** The classifier (a Linear, an Identity without classes, or any module set in its place, e.g. MoCo v2's MLP). */
  get fc(): Module {
    return this.child("fc");
  }
  /** Replaces the head, as `model.fc = ...` in PyTorch (the old head is not disposed). */
  set fc(module: Module) {
    this.registerModule("fc", module);
  }

  /** Pooled features (N, featureDim): everything but `fc`. */
  forwardFeatures(x: Tensor): Tensor {
    return this.inSplitOrder(x, (grouped) => this.features(grouped));
  }

  forward(x: Tensor): Tensor {
    return this.inSplitOrder(x, (grouped) => {
      const features = this.features(grouped);
      return step(this.fc, features, grouped);
    });
  }

  private features(x: Tensor): Tensor {
    let out = step(this.conv1, x, x);
    for (const name of ["bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"]) {
      out = step(this.child<Module>(name), out, x);
    }
    const flat = out.flatten(1);
    if (out !== x) out.dispose();
    return flat;
  }

  /**
   * Runs `body` on the batch reordered so that the official split s (samples n with n mod S = s) is
   * the s-th block of N/S samples, and returns its per-sample output in the original order. Only while
   * a split layer trains: otherwise every layer treats samples independently.
   */
  private inSplitOrder(x: Tensor, body: (grouped: Tensor) => Tensor): Tensor {
    const s = this.batchSplits;
    const n = x.shape[0] ?? 0;
    if (s === 1 || n % s !== 0 || !this.bn1.training) return body(x);
    const blocks = n / s;
    const toBlocks = Array.from({ length: n }, (_, i) => (i % blocks) * s + Math.floor(i / blocks));
    const back = Array.from({ length: n }, (_, i) => (i % s) * blocks + Math.floor(i / s));
    using order = tensor(toBlocks, { dtype: "int64", device: x.device });
    using restore = tensor(back, { dtype: "int64", device: x.device });
    using grouped = x.indexSelect(0, order);
    using out = body(grouped);
    return out.indexSelect(0, restore);
  }
}

export type ResNetArch = "resnet18" | "resnet34" | "resnet50" | "resnet101" | "resnet152";

/** Block kind and block counts per stage, as torchvision. */
export const RESNET_ARCHS: Readonly<Record<ResNetArch, { block: BlockKind; layers: readonly number[] }>> =
  Object.freeze({
    resnet18: { block: "basic", layers: [2, 2, 2, 2] },
    resnet34: { block: "basic", layers: [3, 4, 6, 3] },
    resnet50: { block: "bottleneck", layers: [3, 4, 6, 3] },
    resnet101: { block: "bottleneck", layers: [3, 4, 23, 3] },
    resnet152: { block: "bottleneck", layers: [3, 8, 36, 3] },
  });

/** A ResNet by torchvision's name ("resnet18" ... "resnet152"). */
export function resnet(arch: ResNetArch, options: ResNetOptions = {}): ResNet {
  const spec = Object.hasOwn(RESNET_ARCHS, arch) ? RESNET_ARCHS[arch] : undefined;
  if (spec === undefined)
    throw new TypeError(`resnet: unknown arch "${String(arch)}" (known: ${Object.keys(RESNET_ARCHS).join(", ")})`);
  return new ResNet(spec.block, spec.layers, options);
}

export const resnet18 = (options: ResNetOptions = {}): ResNet => resnet("resnet18", options);
export const resnet34 = (options: ResNetOptions = {}): ResNet => resnet("resnet34", options);
export const resnet50 = (options: ResNetOptions = {}): ResNet => resnet("resnet50", options);
export const resnet101 = (options: ResNetOptions = {}): ResNet => resnet("resnet101", options);
export const resnet152 = (options: ResNetOptions = {}): ResNet => resnet("resnet152", options);
