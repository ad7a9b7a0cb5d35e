// The same network at random initialisation: a baseline that says how much of an encoder's score
// its training earned and how much the architecture gives for free (`moco knn --baseline random`,
// `moco lincls --baseline random`). Seeded, and built in the order MoCo builds its query encoder, so
// that with the layout of a pretraining run and its seed it is, weight for weight, the network that
// run started from (the kNN line it logs at epoch 0).
import { addMlpHead } from "../moco/index.js";
import { resnet } from "../nn/index.js";
import { manualSeed } from "../torch/index.js";
import { Encoder, buildResNet, type TrainingData } from "./encoder.js";
import type { EncoderInput } from "./input.js";
import type { ResNetLayout } from "./layout.js";

export interface RandomEncoderOptions {
  /** manualSeed(seed) before the weights are drawn (libtorch's global generator). */
  seed: number;
  /** What gave the architecture (a checkpoint's path, "preset fashion-mnist"), for describe(). */
  from: string;
  /** The data defaults the evaluation commands read (a checkpoint's, or a preset's). */
  trainedOn?: TrainingData | null;
  input?: EncoderInput | null;
}

/**
 * The network of `layout`, its head included, at the random initialisation manualSeed(seed) gives:
 * torchvision's initialisation, drawn in MoCo's order (the ResNet with its last Linear, then the MLP
 * head's first Linear: main_moco.py's `fc → Sequential(Linear(d, d), ReLU, fc)`). BN statistics are
 * PyTorch's defaults (mean 0, variance 1), as at a pretraining run's first kNN measurement. Eval
 * mode, no gradients.
 */
export function randomEncoder(layout: ResNetLayout, options: RandomEncoderOptions): Encoder {
  if (!(Number.isSafeInteger(options.seed) && options.seed >= 0))
    throw new RangeError(`randomEncoder: seed must be a non-negative integer, got ${options.seed}`);
  manualSeed(options.seed);
  const head = layout.head;
  const model =
    head.kind === "mlp" && head.hidden !== head.inFeatures
      ? buildResNet(layout) // not a MoCo v2 head: drawn in the order of the layout
      : resnet(layout.arch, {
          numClasses: head.kind === "none" ? 0 : head.outFeatures,
          width: layout.width,
          inChannels: layout.inChannels,
          cifarStem: layout.cifarStem,
        });
  if (head.kind === "mlp" && head.hidden === head.inFeatures) addMlpHead(model);
  model.eval();
  model.requiresGrad_(false);
  return new Encoder(model, {
    path: options.from,
    source: "random",
    seed: options.seed,
    part: "query",
    layout,
    epoch: 0,
    trainedOn: options.trainedOn ?? null,
    input: options.input ?? null,
  });
}
