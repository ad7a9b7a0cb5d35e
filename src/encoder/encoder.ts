// A pretrained image encoder ready for use: the ResNet (with its head, if the checkpoint has one) in
// eval mode, where it came from, and what it was trained on. `loadEncoder(path)` is all a caller
// needs: the architecture is read from the weights themselves (see layout.ts).
import { Identity, Linear, ReLU, ResNet, Sequential, resnet, type Module } from "../nn/index.js";
import type { Saveable, Tensor } from "../torch/index.js";
import { checkEncoderInput, inputFromMetadata, type EncoderInput } from "./input.js";
import { describeLayout, inferResNetLayout, LayoutError, type HeadLayout, type ResNetLayout } from "./layout.js";
import { readEncoderStateDict, type EncoderPart, type EncoderSource } from "./sources.js";

/** Which features: the pooled backbone output (what transfer uses) or the head's output. */
export type FeatureKind = "backbone" | "head";

/** What a moco-ts pretraining run records about its data (absent for other sources). */
export interface TrainingData {
  dataset: string;
  /** The data folder it was given (null: the dataset's default place). */
  data: string | null;
  /** Crop size fed to the network during pretraining (null: the images' own size). */
  imageSize: number | null;
}

export interface EncoderInfo {
  /** The file it was read from; for a random initialisation, what gave its architecture. */
  path: string;
  /** The kind of file, or "random": the network at its seeded random initialisation (random.ts). */
  source: EncoderSource | "random";
  /** source "random": the seed of the initialisation. */
  seed?: number;
  part: EncoderPart;
  layout: ResNetLayout;
  /** Completed epochs recorded in the checkpoint, when it says. */
  epoch: number | null;
  trainedOn: TrainingData | null;
  /** The input the file records (pretraining checkpoints, our exports); null: unknown, see encoderInput(). */
  input?: EncoderInput | null;
}

export class Encoder {
  constructor(
    /** The network; `fc` is the head (Linear or MLP) or an Identity when there is none. */
    readonly model: ResNet,
    readonly info: EncoderInfo,
  ) {}

  get featureDim(): number {
    return this.info.layout.featureDim;
  }

  get inChannels(): number {
    return this.info.layout.inChannels;
  }

  get hasHead(): boolean {
    return this.info.layout.head.kind !== "none";
  }

  /** D of `forward(x, features)`. */
  dim(features: FeatureKind): number {
    const head = this.info.layout.head;
    if (features === "backbone") return this.featureDim;
    if (head.kind === "none")
      throw new RangeError(`${this.info.path}: this encoder has no head; use backbone features`);
    return head.outFeatures;
  }

  /** Features [B, D] of preprocessed float images [B, C, H, W]; the model stays in eval mode. */
  forward(images: Tensor, features: FeatureKind = "backbone"): Tensor {
    if (features === "head" && !this.hasHead)
      throw new RangeError(`${this.info.path}: this encoder has no head; use backbone features`);
    return features === "head" ? this.model.forward(images) : this.model.forwardFeatures(images);
  }

  describe(): string {
    if (this.info.source === "random")
      return `${describeLayout(this.info.layout)} at random initialisation (seed ${this.info.seed ?? "?"}, the architecture of ${this.info.path})`;
    return `${describeLayout(this.info.layout)} from ${this.info.path} (${this.info.source}${
      this.info.epoch === null ? "" : `, ${this.info.epoch} epochs`
    })`;
  }

  dispose(): void {
    this.model.dispose();
  }
}

export function headModule(head: HeadLayout): Module {
  switch (head.kind) {
    case "none":
      return new Identity();
    case "linear":
      return new Linear(head.inFeatures, head.outFeatures);
    case "mlp":
      return new Sequential(
        new Linear(head.inFeatures, head.hidden),
        new ReLU(),
        new Linear(head.hidden, head.outFeatures),
      );
  }
}

/** A ResNet of `layout` (freshly initialised), with the head it describes. */
export function buildResNet(layout: ResNetLayout): ResNet {
  const model = resnet(layout.arch, {
    numClasses: 0,
    width: layout.width,
    inChannels: layout.inChannels,
    cifarStem: layout.cifarStem,
  });
  model.fc = headModule(layout.head);
  return model;
}

export interface LoadEncoderOptions {
  /** MoCo checkpoints: the query encoder (default, what the papers transfer) or the key encoder. */
  part?: EncoderPart;
  /** Refuse a checkpoint of any other architecture (e.g. "resnet50"). */
  arch?: string;
}

function trainingDataOf(root: Record<string, Saveable> | null): TrainingData | null {
  const ours = root?.["moco_ts"];
  if (typeof ours !== "object" || ours === null || Array.isArray(ours) || ours instanceof Map) return null;
  const config = (ours as Record<string, Saveable>)["config"];
  if (typeof config !== "object" || config === null || Array.isArray(config) || config instanceof Map) return null;
  const { dataset, data, imageSize } = config as Record<string, Saveable>;
  if (typeof dataset !== "string") return null;
  return {
    dataset,
    data: typeof data === "string" ? data : null,
    imageSize: typeof imageSize === "number" ? imageSize : null,
  };
}

/** `moco_ts.input` of a moco-ts checkpoint (older checkpoints have none). */
function recordedInput(root: Record<string, Saveable> | null, path: string): EncoderInput | null {
  const ours = root?.["moco_ts"];
  if (typeof ours !== "object" || ours === null || Array.isArray(ours) || ours instanceof Map) return null;
  const input = (ours as Record<string, Saveable>)["input"];
  return input === undefined || input === null ? null : checkEncoderInput(input, `${path}: moco_ts.input`);
}

/**
 * Loads the encoder a file holds: a moco-ts or official MoCo checkpoint (PyTorch's zip or legacy
 * format), a linear-evaluation checkpoint, a torchvision ResNet state dict, or safetensors.
 */
export function loadEncoder(path: string, options: LoadEncoderOptions = {}): Encoder {
  const part = options.part ?? "query";
  const found = readEncoderStateDict(path, part);
  try {
    const layout = inferResNetLayout(found.stateDict, path);
    if (options.arch !== undefined && options.arch !== layout.arch)
      throw new LayoutError(`${path}: holds a ${layout.arch}, not the ${options.arch} asked for`);
    if (found.arch !== null && found.arch !== layout.arch)
      throw new LayoutError(`${path}: says arch "${found.arch}" but its weights are a ${layout.arch}`);
    const model = buildResNet(layout);
    try {
      model.loadStateDict(found.stateDict);
    } catch (error) {
      model.dispose();
      throw error;
    }
    model.eval();
    model.requiresGrad_(false);
    const epoch = found.root?.["epoch"];
    return new Encoder(model, {
      path,
      source: found.source,
      part,
      layout,
      epoch: typeof epoch === "number" ? epoch : null,
      trainedOn: trainingDataOf(found.root),
      input:
        found.metadata === undefined || found.metadata === null
          ? recordedInput(found.root, path)
          : inputFromMetadata(found.metadata, path),
    });
  } finally {
    for (const tensor of found.stateDict.values()) tensor.dispose();
    for (const tensor of found.others) tensor.dispose();
  }
}
