// moco-ts: MoCo self-supervised pretraining in TypeScript on libtorch. Everything a program needs,
// layer by layer (see README.md).
export { MocoError, TorchError, UsageError, type MocoErrorOptions } from "./errors.js";
export * from "./torch/index.js";
export { TruncatedPickleError } from "./torch/serialize/unpickler.js";
export { ZipFormatError } from "./torch/serialize/zip.js";
export * from "./nn/index.js";
export * from "./optim/index.js";
export {
  DataLoader,
  TwoViewAugment,
  Augment,
  evalTransform,
  mocoV1Config,
  mocoV2Config,
  cifarDemoConfig,
  openDataset,
  DATASETS,
  DATASET_NAMES,
  isDatasetName,
  DatasetNameError,
  type DatasetName,
  type DatasetEntry,
  type OpenDatasetOptions,
  openFashionMnist,
  openMnist,
  openCifar10,
  openCifar100,
  openImageFolder,
  DatasetError,
  Random,
  type ImageDataset,
  type Batch,
  type AugmentConfig,
  type TwoViews,
  type DecodedViews,
  type ChannelStats,
} from "./data/index.js";
export * from "./moco/index.js";
export {
  knnClassify,
  knnScores,
  KNN_DEFAULTS,
  KNN_VOTES,
  type KnnOptions,
  type KnnResult,
  type KnnVote,
} from "./eval/knn.js";
export { knnAccuracy, type KnnEvaluation } from "./eval/monitor.js";
export {
  PRESETS,
  resolveConfig,
  readConfigFile,
  ConfigError,
  readConfigLayer,
  COMMAND_LINE,
  type ConfigLayer,
  type PretrainConfig,
  type PresetName,
} from "./train/config.js";
export {
  pretrain,
  buildModel,
  NonFiniteLossError,
  type PretrainOptions,
  type PretrainResult,
} from "./train/pretrain.js";
export { readCheckpoint, writeCheckpoint, CheckpointError, type PretrainCheckpoint } from "./train/checkpoint.js";
export {
  runLoop,
  TrainingState,
  disposeStateDict,
  type LoopBatch,
  type LoopHooks,
  type LoopOutcome,
  type LoopPosition,
  type LoopSpec,
  type RandomStream,
  type StopReason,
  type TrainingStateDict,
} from "./loop/index.js";
export { checkpointHook, currentLr, lrScheduleHook, nonFiniteLossGuard, onRank0, topkCorrect } from "./loop/index.js";
export * from "./export/index.js";
export * from "./encoder/index.js";
export {
  linearEvaluation,
  LINCLS_DEFAULTS,
  type LinclsInput,
  type LinearEvalConfig,
  type LinearEvalOptions,
  type LinearEvalResult,
  type EpochRecord,
} from "./eval/lincls.js";
export {
  evaluateEncoderKnn,
  evaluateFeatureKnn,
  evaluatePixelKnn,
  datasetEmbeddings,
  type EncoderKnnOptions,
  type EncoderKnnResult,
  type KnnEvaluationOptions,
  type PixelKnnOptions,
} from "./eval/encoder-knn.js";
export {
  classificationReport,
  writeClassificationCsv,
  type ClassificationReport,
  type ClassAccuracy,
} from "./eval/classification-report.js";
export { nearestNeighbours, type Neighbours } from "./search/search.js";
export {
  writeEmbeddingIndex,
  readEmbeddingIndex,
  INDEX_FILES,
  IndexError,
  type IndexMeta,
  type EmbeddingIndex,
} from "./search/store.js";
export {
  exportBackbone,
  exportStateDict,
  EXPORT_FORMATS,
  type ExportFormat,
  type ExportOptions,
} from "./export/backbone.js";
export { startServer, type ServeOptions, type RunningServer } from "./serve/server.js";
export { ServeError, QueueFullError, ShuttingDownError, IndexLogError } from "./serve/errors.js";
export * from "./io/index.js";
export * from "./dist/index.js";
export {
  writeRunReport,
  readRuns,
  ReportInputError,
  embeddingViews,
  renderSvg,
  type RunReportOptions,
  type RunReport,
  type RunRecord,
  type EmbeddingViews,
  type EmbeddingViewOptions,
} from "./report/index.js";
