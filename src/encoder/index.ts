export {
  Encoder,
  loadEncoder,
  buildResNet,
  headModule,
  type EncoderInfo,
  type FeatureKind,
  type LoadEncoderOptions,
  type TrainingData,
} from "./encoder.js";
export { embed, embedDataset, encoderFeatures, type EmbedOptions, type EmbedDatasetOptions } from "./embed.js";
export {
  batchFeatures,
  datasetFeatures,
  datasetSource,
  extractFeatures,
  streamFeatures,
  type BatchSource,
  type FeatureFunction,
  type FeatureOptions,
} from "./features.js";
export { inferResNetLayout, describeLayout, LayoutError, type ResNetLayout, type HeadLayout } from "./layout.js";
export { Preprocessor, encoderInput, trainingStats, type PreprocessOptions } from "./preprocess.js";
export {
  CONSTANT_FEATURE,
  featureStandardization,
  pixelFeatures,
  standardize,
  type FeatureStandardization,
  type PixelFeatureOptions,
} from "./pixels.js";
export { randomEncoder, type RandomEncoderOptions } from "./random.js";
export {
  EncoderInputError,
  INPUT_METADATA_KEYS,
  checkEncoderInput,
  inputFromMetadata,
  inputMetadata,
  type EncoderInput,
} from "./input.js";
export {
  readEncoderStateDict,
  CheckpointFormatError,
  CyclicValueError,
  type EncoderSource,
  type EncoderPart,
  type FoundStateDict,
} from "./sources.js";
