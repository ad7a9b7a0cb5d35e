// What network a state dict holds, read from its keys and shapes alone: torchvision's ResNet names
// (conv1, bn1, layer1..4 of BasicBlock/Bottleneck, fc), and for the head MoCo's two forms: v1's
// Linear `fc.*` and v2's MLP `fc.0.*`/`fc.2.*`. Checkpoints of other networks are refused here,
// before any module is built, with the reason spelled out.
import { RESNET_ARCHS, type BlockKind, type ResNetArch } from "../nn/index.js";
import type { Tensor } from "../torch/index.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

export type HeadLayout =
  | { kind: "none" }
  | { kind: "linear"; inFeatures: number; outFeatures: number }
  | { kind: "mlp"; inFeatures: number; hidden: number; outFeatures: number };

export interface ResNetLayout {
  arch: ResNetArch;
  block: BlockKind;
  layers: readonly number[];
  /** Channels of the stem (64 for torchvision's networks). */
  width: number;
  inChannels: number;
  /** A 3×3 conv1 (the CIFAR stem, without max-pool) instead of torchvision's 7×7. */
  cifarStem: boolean;
  /** Channels of the pooled features. */
  featureDim: number;
  head: HeadLayout;
}

export class LayoutError extends MocoError {
  override name = "LayoutError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_LAYOUT", message, options);
  }
}

function shapeOf(stateDict: ReadonlyMap<string, Tensor>, key: string, rank: number, what: string): number[] {
  const tensor = stateDict.get(key);
  if (tensor === undefined) throw new LayoutError(`${what}: no "${key}" (not a torchvision-layout ResNet)`);
  if (tensor.shape.length !== rank)
    throw new LayoutError(`${what}: "${key}" has shape [${tensor.shape.join(", ")}], expected ${rank} dimensions`);
  return [...tensor.shape];
}

function blocksIn(stateDict: ReadonlyMap<string, Tensor>, stage: number): number {
  let blocks = 0;
  while (stateDict.has(`layer${stage}.${blocks}.conv1.weight`)) blocks += 1;
  return blocks;
}

function archOf(block: BlockKind, layers: readonly number[], what: string): ResNetArch {
  for (const [name, spec] of Object.entries(RESNET_ARCHS)) {
    if (spec.block === block && spec.layers.every((n, i) => n === layers[i])) return name as ResNetArch;
  }
  throw new LayoutError(
    `${what}: a ResNet with ${block} blocks [${layers.join(", ")}] per stage is none of ${Object.keys(RESNET_ARCHS).join(", ")}`,
  );
}

function headOf(stateDict: ReadonlyMap<string, Tensor>, featureDim: number, what: string): HeadLayout {
  const check = (inFeatures: number, key: string) => {
    if (inFeatures !== featureDim)
      throw new LayoutError(`${what}: "${key}" takes ${inFeatures} features, the backbone gives ${featureDim}`);
  };
  if (stateDict.has("fc.weight")) {
    const [outFeatures = 0, inFeatures = 0] = shapeOf(stateDict, "fc.weight", 2, what);
    check(inFeatures, "fc.weight");
    return { kind: "linear", inFeatures, outFeatures };
  }
  if (stateDict.has("fc.0.weight")) {
    const [hidden = 0, inFeatures = 0] = shapeOf(stateDict, "fc.0.weight", 2, what);
    check(inFeatures, "fc.0.weight");
    const [outFeatures = 0, hiddenIn = 0] = shapeOf(stateDict, "fc.2.weight", 2, what);
    if (hiddenIn !== hidden)
      throw new LayoutError(`${what}: the MLP head's "fc.2.weight" takes ${hiddenIn} features, "fc.0" gives ${hidden}`);
    return { kind: "mlp", inFeatures, hidden, outFeatures };
  }
  return { kind: "none" };
}

/** Reads the ResNet layout of a torchvision-named state dict; `what` names the source in errors. */
export function inferResNetLayout(stateDict: ReadonlyMap<string, Tensor>, what: string): ResNetLayout {
  const [width = 0, inChannels = 0, kernel = 0] = shapeOf(stateDict, "conv1.weight", 4, what);
  if (kernel !== 3 && kernel !== 7)
    throw new LayoutError(`${what}: conv1 is ${kernel}×${kernel}; a ResNet stem is 7×7 (or 3×3 for the CIFAR stem)`);
  const block: BlockKind = stateDict.has("layer1.0.conv3.weight") ? "bottleneck" : "basic";
  const layers = [1, 2, 3, 4].map((stage) => blocksIn(stateDict, stage));
  if (layers.some((n) => n === 0))
    throw new LayoutError(`${what}: stages with blocks [${layers.join(", ")}]: a ResNet has blocks in all four`);
  const arch = archOf(block, layers, what);
  const [layer1Width = 0] = shapeOf(stateDict, "layer1.0.conv1.weight", 4, what);
  if (layer1Width !== width)
    throw new LayoutError(`${what}: layer1 has ${layer1Width} channels, the stem ${width}: not a torchvision ResNet`);
  const featureDim = width * 8 * (block === "bottleneck" ? 4 : 1);
  return {
    arch,
    block,
    layers,
    width,
    inChannels,
    cifarStem: kernel === 3,
    featureDim,
    head: headOf(stateDict, featureDim, what),
  };
}

export function describeLayout(layout: ResNetLayout): string {
  const head =
    layout.head.kind === "none"
      ? "no head"
      : layout.head.kind === "linear"
        ? `linear head → ${layout.head.outFeatures}`
        : `MLP head ${layout.head.hidden} → ${layout.head.outFeatures}`;
  const stem = layout.cifarStem ? ", CIFAR stem" : "";
  return `${layout.arch} (width ${layout.width}, ${layout.inChannels} input channel(s)${stem}, ${head})`;
}
