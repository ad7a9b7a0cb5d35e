// The one training loop and its shared hooks (docs/architecture.md, "The training loop").
export * from "./loop.js";
export * from "./hooks.js";
export * from "./accuracy.js";
export * from "./progress.js";
