// torch.nn and torchvision.models.resnet for moco-ts: Module, layers, initialisers, ResNets.
export {
  Module,
  onDevice,
  StateDictError,
  type AnyModule,
  type LoadStateDictOptions,
  type LoadStateDictResult,
  type ShapeMismatch,
  type StateDict,
  type StateDictLike,
} from "./module.js";
export {
  AdaptiveAvgPool2d,
  Conv2d,
  Flatten,
  Identity,
  Linear,
  MaxPool2d,
  ReLU,
  Sequential,
  type Conv2dOptions,
  type MaxPool2dOptions,
  type Pair,
} from "./layers.js";
export {
  BatchNorm2d,
  SplitBatchNorm,
  batchNorm2d,
  splitBatchNorm,
  type BatchNormOptions,
  type NormLayerFactory,
  type SplitOrder,
} from "./batchnorm.js";
export * as init from "./init.js";
export {
  BasicBlock,
  Bottleneck,
  RESNET_ARCHS,
  ResNet,
  resnet,
  resnet18,
  resnet34,
  resnet50,
  resnet101,
  resnet152,
  type BlockKind,
  type ResNetArch,
  type ResNetOptions,
} from "./resnet.js";
