// Walks a module tree and emits the ONNX nodes of its eval-mode forward. Each supported module class
// is matched exactly (a subclass may have changed forward), its forward re-expressed with ONNX
// operators, and every shape checked on the way, so that a model the graph would not reproduce is
// refused here with the module's path rather than by a runtime later.
import {
  AdaptiveAvgPool2d,
  BasicBlock,
  BatchNorm2d,
  Bottleneck,
  Conv2d,
  Flatten,
  Identity,
  Linear,
  MaxPool2d,
  ReLU,
  ResNet,
  Sequential,
  SplitBatchNorm,
  type AnyModule,
} from "../../nn/index.js";
import { floatAttr, intAttr, intsAttr, type GraphBuilder, type Value } from "./graph.js";
import type { AttributeProto } from "./proto.js";
import { evalBatchNorm, floatData, foldIntoConv } from "./weights.js";

const SUPPORTED_MODULES = [
  ResNet,
  BasicBlock,
  Bottleneck,
  Sequential,
  Conv2d,
  BatchNorm2d,
  SplitBatchNorm,
  ReLU,
  MaxPool2d,
  AdaptiveAvgPool2d,
  Flatten,
  Linear,
  Identity,
].map((c) => c.name);

/** F.normalize's default eps: the norm is clamped to at least this before dividing. */
const NORMALIZE_EPS = 1e-12;

const RESNET_FEATURES = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"];
const BASIC_BLOCK_BRANCH = ["conv1", "bn1", "relu", "conv2", "bn2"];
const BOTTLENECK_BRANCH = ["conv1", "bn1", "relu", "conv2", "bn2", "relu", "conv3", "bn3"];

type Named = readonly [path: string, module: AnyModule];

const join = (path: string, name: string): string => (path === "" ? name : `${path}.${name}`);
const describe = (path: string, m: AnyModule): string => `${path === "" ? "the model" : path} (${m.typeName})`;
const shapeText = (v: Value): string => `[batch, ${v.shape.join(", ")}]`;
const isBatchNorm = (m: AnyModule): m is BatchNorm2d =>
  m.constructor === BatchNorm2d || m.constructor === SplitBatchNorm;

/** kernel_shape, strides, pads (ONNX: begins then ends) and dilations of a Conv or MaxPool node. */
const windowAttributes = (m: Conv2d | MaxPool2d): AttributeProto[] => [
  intsAttr("kernel_shape", m.kernelSize),
  intsAttr("strides", m.stride),
  intsAttr("pads", [...m.padding, ...m.padding]),
  intsAttr("dilations", m.dilation),
];

export interface LowerOptions {
  /** Fold each BatchNorm that directly follows a Conv2d into that convolution. */
  foldBatchNorm: boolean;
  /** For a ResNet: include `fc` (else the graph ends at the pooled, flattened features). */
  includeHead: boolean;
}

export class Lowering {
  constructor(
    private readonly g: GraphBuilder,
    private readonly options: LowerOptions,
  ) {}

  /** The value `m` computes from `x`; `path` is `m`'s dotted name in the exported model ("" for the root). */
  module(m: AnyModule, path: string, x: Value): Value {
    switch (m.constructor) {
      case ResNet:
        return this.resnet(m as ResNet, path, x);
      case BasicBlock:
        return this.residual(m, path, x, BASIC_BLOCK_BRANCH, (m as BasicBlock).downsample);
      case Bottleneck:
        return this.residual(m, path, x, BOTTLENECK_BRANCH, (m as Bottleneck).downsample);
      case Sequential:
        return this.chain(
          m.namedChildren().map(([name, child]) => [join(path, name), child] as const),
          x,
        );
      case Conv2d:
        return this.conv(m as Conv2d, path, x, null);
      case BatchNorm2d:
      case SplitBatchNorm:
        return this.batchNorm(m as BatchNorm2d, path, x);
      case ReLU:
        return { name: this.g.node("Relu", [x.name], path || "relu"), shape: x.shape };
      case MaxPool2d:
        return this.maxPool(m as MaxPool2d, path, x);
      case AdaptiveAvgPool2d:
        return this.adaptiveAvgPool(m as AdaptiveAvgPool2d, path, x);
      case Flatten:
        return this.flattenModule(m as Flatten, path, x);
      case Linear:
        return this.linear(m as Linear, path, x);
      case Identity:
        return x;
      default:
        throw new TypeError(
          `exportOnnx: cannot export ${describe(path, m)}: unsupported module type (supported: ${SUPPORTED_MODULES.join(", ")})`,
        );
    }
  }

  /** y = x / max(‖x‖₂, eps) along dim 1, as F.normalize. */
  l2Normalize(x: Value): Value {
    const norm = this.g.node("ReduceL2", [x.name], "normalize.norm", [intsAttr("axes", [1]), intAttr("keepdims", 1)]);
    const eps = this.g.constant("normalize.eps", [], Float32Array.of(NORMALIZE_EPS));
    const clamped = this.g.node("Max", [norm, eps], "normalize.clamped");
    return { name: this.g.node("Div", [x.name, clamped], "normalize"), shape: x.shape };
  }

  /** Runs `modules` one after the other, fusing each Conv2d → BatchNorm pair when folding. */
  private chain(modules: readonly Named[], x: Value): Value {
    let out = x;
    for (let i = 0; i < modules.length; i++) {
      const [path, m] = modules[i] as Named;
      const next = modules[i + 1];
      if (this.options.foldBatchNorm && m.constructor === Conv2d && next !== undefined && isBatchNorm(next[1])) {
        out = this.conv(m as Conv2d, path, out, next);
        i++;
      } else out = this.module(m, path, out);
    }
    return out;
  }

  private children(m: AnyModule, path: string, names: readonly string[]): Named[] {
    return names.map((name) => [join(path, name), m.getSubmodule(name)] as const);
  }

  private resnet(m: ResNet, path: string, x: Value): Value {
    const pooled = this.chain(this.children(m, path, RESNET_FEATURES), x);
    const features = this.flatten(pooled, join(path, "flatten"));
    return this.options.includeHead ? this.module(m.fc, join(path, "fc"), features) : features;
  }

  /** relu(branch(x) + downsample(x) or x): BasicBlock's and Bottleneck's forward. */
  private residual(
    m: AnyModule,
    path: string,
    x: Value,
    branchNames: readonly string[],
    downsample: Sequential | null,
  ): Value {
    const branch = this.chain(this.children(m, path, branchNames), x);
    const identity = downsample === null ? x : this.module(downsample, join(path, "downsample"), x);
    if (branch.shape.join() !== identity.shape.join()) {
      throw new RangeError(
        `exportOnnx: ${describe(path, m)}: the residual branch gives ${shapeText(branch)} but the shortcut ${shapeText(identity)}`,
      );
    }
    const sum = this.g.node("Add", [branch.name, identity.name], join(path, "add"));
    return { name: this.g.node("Relu", [sum], join(path, "relu")), shape: branch.shape };
  }

  /** [channels, height, width] of an image batch `x`; `channels`, when given, must match. */
  private image(m: AnyModule, path: string, x: Value, channels?: number): [number, number, number] {
    const [c, h, w] = x.shape;
    if (x.shape.length !== 3 || (channels !== undefined && c !== channels)) {
      throw new RangeError(
        `exportOnnx: ${describe(path, m)} expects input [batch, ${channels ?? "channels"}, height, width], got ${shapeText(x)}`,
      );
    }
    return [c as number, h as number, w as number];
  }

  /** Output height and width of a Conv2d or MaxPool2d on `x`, as PyTorch computes them (floor mode). */
  private windowOutput(
    m: Conv2d | MaxPool2d,
    path: string,
    x: Value,
    size: readonly [number, number],
  ): [number, number] {
    const out = size.map(
      (n, i) =>
        Math.floor(
          (n + 2 * (m.padding[i] as number) - (m.dilation[i] as number) * ((m.kernelSize[i] as number) - 1) - 1) /
            (m.stride[i] as number),
        ) + 1,
    ) as [number, number];
    if (out[0] < 1 || out[1] < 1)
      throw new RangeError(`exportOnnx: ${describe(path, m)}: input ${shapeText(x)} is too small for its window`);
    return out;
  }

  /** Conv2d, followed by `bn` (folded into it) when given. */
  private conv(m: Conv2d, path: string, x: Value, bn: Named | null): Value {
    const [, h, w] = this.image(m, path, x, m.inChannels);
    const dims = [m.outChannels, m.inChannels / m.groups, ...m.kernelSize];
    const inputs = [x.name];
    let base = path || "conv";
    if (bn === null) {
      inputs.push(this.g.constant(join(path, "weight"), dims, floatData(m.weight)));
      if (m.bias !== null) inputs.push(this.g.constant(join(path, "bias"), [m.outChannels], floatData(m.bias)));
    } else {
      const [bnPath, bnModule] = bn as readonly [string, BatchNorm2d];
      if (bnModule.numFeatures !== m.outChannels) {
        throw new RangeError(
          `exportOnnx: ${describe(bnPath, bnModule)} has ${bnModule.numFeatures} features but follows a convolution with ${m.outChannels} output channels`,
        );
      }
      const folded = foldIntoConv(m, evalBatchNorm(bnModule, bnPath));
      inputs.push(this.g.constant(join(path, "weight_folded"), dims, folded.weight));
      inputs.push(this.g.constant(join(path, "bias_folded"), [m.outChannels], folded.bias));
      base = bnPath;
    }
    const [oh, ow] = this.windowOutput(m, path, x, [h, w]);
    const out = this.g.node("Conv", inputs, base, [...windowAttributes(m), intAttr("group", m.groups)]);
    return { name: out, shape: [m.outChannels, oh, ow] };
  }

  private batchNorm(m: BatchNorm2d, path: string, x: Value): Value {
    this.image(m, path, x, m.numFeatures);
    const p = evalBatchNorm(m, path);
    const n = [m.numFeatures];
    const inputs = [
      x.name,
      this.g.constant(join(path, "weight"), n, p.weight),
      this.g.constant(join(path, "bias"), n, p.bias),
      this.g.constant(join(path, "running_mean"), n, p.mean),
      this.g.constant(join(path, "running_var"), n, p.variance),
    ];
    const out = this.g.node("BatchNormalization", inputs, path || "batch_norm", [floatAttr("epsilon", p.eps)]);
    return { name: out, shape: x.shape };
  }

  private maxPool(m: MaxPool2d, path: string, x: Value): Value {
    // ONNX's ceil mode may differ from PyTorch's at the border (PyTorch drops a last window that
    // starts in the padding), so only floor mode is exported.
    if (m.ceilMode) throw new RangeError(`exportOnnx: ${describe(path, m)}: ceilMode is not supported`);
    const [channels, h, w] = this.image(m, path, x);
    const [oh, ow] = this.windowOutput(m, path, x, [h, w]);
    const out = this.g.node("MaxPool", [x.name], path || "max_pool", windowAttributes(m));
    return { name: out, shape: [channels, oh, ow] };
  }

  private adaptiveAvgPool(m: AdaptiveAvgPool2d, path: string, x: Value): Value {
    const [oh, ow] = m.outputSize;
    if (oh !== 1 || ow !== 1) {
      throw new RangeError(`exportOnnx: ${describe(path, m)}: only outputSize (1, 1) is supported, got (${oh}, ${ow})`);
    }
    const [channels] = this.image(m, path, x);
    return { name: this.g.node("GlobalAveragePool", [x.name], path || "avg_pool"), shape: [channels, 1, 1] };
  }

  /** torch.flatten(x, 1): every dim after the batch into one. */
  private flatten(x: Value, base: string): Value {
    const size = x.shape.reduce((a, b) => a * b, 1);
    return { name: this.g.node("Flatten", [x.name], base, [intAttr("axis", 1)]), shape: [size] };
  }

  private flattenModule(m: Flatten, path: string, x: Value): Value {
    const rank = x.shape.length + 1;
    const start = m.startDim < 0 ? m.startDim + rank : m.startDim;
    const end = m.endDim < 0 ? m.endDim + rank : m.endDim;
    if (start !== 1 || end !== rank - 1) {
      throw new RangeError(
        `exportOnnx: ${describe(path, m)}: only flattening every dim after the batch (startDim 1, endDim -1) is supported`,
      );
    }
    return this.flatten(x, path || "flatten");
  }

  private linear(m: Linear, path: string, x: Value): Value {
    if (x.shape.length !== 1 || x.shape[0] !== m.inFeatures) {
      throw new RangeError(
        `exportOnnx: ${describe(path, m)} expects input [batch, ${m.inFeatures}], got ${shapeText(x)}`,
      );
    }
    const inputs = [x.name, this.g.constant(join(path, "weight"), [m.outFeatures, m.inFeatures], floatData(m.weight))];
    if (m.bias !== null) inputs.push(this.g.constant(join(path, "bias"), [m.outFeatures], floatData(m.bias)));
    const out = this.g.node("Gemm", inputs, path || "linear", [intAttr("transB", 1)]);
    return { name: out, shape: [m.outFeatures] };
  }
}
