// Datasets, the loader and batched augmentation.
export * from "./augment.js";
export * from "./augment/ops.js";
export * from "./cifar.js";
export * from "./dataset.js";
export * from "./fashion-mnist.js";
export * from "./idx.js";
export * from "./image-folder.js";
export * from "./loader.js";
export * from "./random.js";
export * from "./registry.js";
export * from "./subset.js";
