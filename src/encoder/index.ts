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
export { embed, embedDataset, type EmbedOptions, type EmbedDatasetOptions } from "./embed.js";
export { inferResNetLayout, describeLayout, LayoutError, type ResNetLayout, type HeadLayout } from "./layout.js";
export { Preprocessor, trainingStats, type PreprocessOptions } from "./preprocess.js";
export {
  readEncoderStateDict,
  CheckpointFormatError,
  CyclicValueError,
  type EncoderSource,
  type EncoderPart,
  type FoundStateDict,
} from "./sources.js";
