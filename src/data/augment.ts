// Random augmentation pipelines applied to whole batches, with parameters drawn per image as
// torchvision's transforms draw them, from our own seeded generator (random.ts), and the
// MoCo v1/v2 pipelines (the official main_moco.py) plus the official CIFAR demo's.
// One unit per file in ./augment/:
//   steps.ts           the step types, the configuration, its validation and description
//   sampling.ts        the parameters drawn per image (torchvision's get_params and coins)
//   apply.ts           drawn parameters applied to a whole batch at once
//   pipeline.ts        Augment: the three above behind one class
//   presets.ts         MoCo v1, v2 and the CIFAR demo
//   two-view.ts        TwoViewAugment: query and key views
//   eval-transform.ts  the un-augmented view for evaluation
//   ops.ts             the batched image operations (torchvision's functional ops)
export type {
  AugmentConfig,
  AugmentStep,
  ColorJitterStep,
  GaussianBlurStep,
  HorizontalFlipStep,
  RandomGrayscaleStep,
  RandomResizedCropStep,
  Range,
} from "./augment/steps.js";
export { describeAugment } from "./augment/steps.js";
export {
  JITTER_OPS,
  centerFallbackBox,
  sampleCropBox,
  sliceParams,
  type AugmentParams,
  type BlurParams,
  type CropParams,
  type DecodeParams,
  type FlipParams,
  type GrayscaleParams,
  type ImageSize,
  type JitterParams,
  type StepParams,
} from "./augment/sampling.js";
export { Augment } from "./augment/pipeline.js";
export {
  cifarDemoConfig,
  mocoV1Config,
  mocoV2Config,
  type PresetOptions,
  type V2PresetOptions,
} from "./augment/presets.js";
export { TwoViewAugment, type DecodeViewParams, type DecodedViews, type TwoViews } from "./augment/two-view.js";
export { evalTransform, type EvalTransformOptions } from "./augment/eval-transform.js";
