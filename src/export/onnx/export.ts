// exportOnnx: a ResNet encoder (or any tree of the supported layers) as an ONNX model, in eval-mode
// semantics, with a symbolic batch dimension; writeOnnx: the bytes to a file, atomically.
import { Module, ResNet, type AnyModule } from "../../nn/index.js";
import { writeFileAtomic } from "../../util/atomic-file.js";
import { GraphBuilder, type Value } from "./graph.js";
import { Lowering } from "./lower.js";
import { encodeModel } from "./proto.js";

export interface OnnxExportOptions {
  /** [channels, height, width] of one input image; the batch dimension is symbolic ("batch"). */
  inputShape: readonly [number, number, number];
  /**
   * The ai.onnx operator set, 13 to 17 (default 17). 17 is the newest that IR version 8 (ONNX 1.12,
   * the checker Debian ships) covers; 13 is where Gemm, Flatten and ReduceL2 last changed shape.
   */
  opset?: number;
  /** Fold each BatchNorm that follows a convolution into it (default true); else BatchNormalization nodes. */
  foldBatchNorm?: boolean;
  /** For a ResNet, export `fc` too (default true); false ends at the pooled, flattened features. */
  includeHead?: boolean;
  /** L2-normalise the output along dim 1, as F.normalize (default false). */
  normalizeOutput?: boolean;
  /** Name of the graph input (default "input"). */
  inputName?: string;
  /** Name of the graph output (default "features"). */
  outputName?: string;
  /** ModelProto.producer_name (default "moco-ts"). */
  producerName?: string;
  /** ModelProto.producer_version (default: none). */
  producerVersion?: string;
  /** ModelProto.metadata_props (default: none), e.g. the preprocessing the input needs. */
  metadata?: Readonly<Record<string, string>>;
}

const OPTION_KEYS = new Set([
  "inputShape",
  "opset",
  "foldBatchNorm",
  "includeHead",
  "normalizeOutput",
  "inputName",
  "outputName",
  "producerName",
  "producerVersion",
  "metadata",
]);

export const MIN_OPSET = 13;
export const MAX_OPSET = 17;

/** The oldest IR version that can carry `opset` (onnx.helper's VERSION_TABLE), so old runtimes load it. */
const irVersionFor = (opset: number): number => (opset <= 14 ? 7 : 8);

function checkBoolean(value: unknown, what: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`exportOnnx: ${what} must be a boolean, got ${typeof value}`);
  return value;
}

function checkName(value: unknown, what: string, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string" || value === "") {
    throw new TypeError(`exportOnnx: ${what} must be a non-empty string, got ${JSON.stringify(value)}`);
  }
  return value;
}

function checkInputShape(value: unknown): [number, number, number] {
  if (
    !Array.isArray(value) ||
    value.length !== 3 ||
    !value.every((d: unknown) => Number.isSafeInteger(d) && (d as number) > 0)
  ) {
    throw new RangeError(
      `exportOnnx: inputShape must be [channels, height, width] of positive integers, got ${JSON.stringify(value)}`,
    );
  }
  return [value[0], value[1], value[2]] as [number, number, number];
}

/**
 * The bytes of an ONNX model computing `model`'s forward in eval mode (BatchNorm with its running
 * statistics, whatever `model.training` is) on float32 input [batch, ...inputShape]. Supported:
 * ResNet (BasicBlock/Bottleneck, ImageNet or CIFAR stem, fc an Identity, a Linear or a Sequential
 * head such as MoCo v2's MLP), and trees of Sequential, Conv2d, BatchNorm2d, SplitBatchNorm, ReLU,
 * MaxPool2d, AdaptiveAvgPool2d((1, 1)), Flatten, Linear, Identity. Any other module is an error
 * naming its path. Weights are stored as float32; no tensor handle outlives the call.
 */
export function exportOnnx(model: Module, options: OnnxExportOptions): Uint8Array {
  if (!(model instanceof Module)) throw new TypeError("exportOnnx: model must be a Module");
  if (model.isDisposed) throw new Error("exportOnnx: the model was disposed");
  if (typeof options !== "object" || options === null) {
    throw new TypeError("exportOnnx: options must be an object with at least inputShape");
  }
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new TypeError(`exportOnnx: unknown option "${key}" (known: ${[...OPTION_KEYS].join(", ")})`);
    }
  }
  const inputShape = checkInputShape(options.inputShape);
  const opset = options.opset ?? MAX_OPSET;
  if (!Number.isSafeInteger(opset) || opset < MIN_OPSET || opset > MAX_OPSET) {
    throw new RangeError(`exportOnnx: opset must be an integer from ${MIN_OPSET} to ${MAX_OPSET}, got ${opset}`);
  }
  const foldBatchNorm = checkBoolean(options.foldBatchNorm, "foldBatchNorm", true);
  const includeHead = checkBoolean(options.includeHead, "includeHead", true);
  const normalizeOutput = checkBoolean(options.normalizeOutput, "normalizeOutput", false);
  const inputName = checkName(options.inputName, "inputName", "input");
  const outputName = checkName(options.outputName, "outputName", "features");
  const producerName = checkName(options.producerName, "producerName", "moco-ts");
  const producerVersion =
    options.producerVersion === undefined ? undefined : checkName(options.producerVersion, "producerVersion", "");
  const metadata = options.metadata ?? {};
  if (
    typeof metadata !== "object" ||
    metadata === null ||
    Object.values(metadata).some((v: unknown) => typeof v !== "string")
  )
    throw new TypeError("exportOnnx: metadata must be an object of string values");
  if (inputName === outputName) throw new RangeError(`exportOnnx: inputName and outputName are both "${inputName}"`);
  if (!includeHead && model.constructor !== ResNet) {
    throw new TypeError(`exportOnnx: includeHead: false applies to a ResNet, got a ${model.typeName}`);
  }

  const g = new GraphBuilder([inputName, outputName]);
  const lowering = new Lowering(g, { foldBatchNorm, includeHead });
  const input: Value = { name: inputName, shape: inputShape };
  let result = lowering.module(model as AnyModule, "", input);
  if (normalizeOutput) result = lowering.l2Normalize(result);
  return encodeModel({
    irVersion: irVersionFor(opset),
    opsetVersion: opset,
    producerName,
    ...(producerVersion === undefined ? {} : { producerVersion }),
    graph: g.finish(model.typeName, input, result, outputName),
    metadataProps: metadata,
  });
}

/** Writes `bytes` to `path` atomically (src/util/atomic-file.ts). */
export function writeOnnx(path: string, bytes: Uint8Array): void {
  if (typeof path !== "string" || path === "") throw new TypeError("writeOnnx: path must be a non-empty string");
  if (!(bytes instanceof Uint8Array)) throw new TypeError("writeOnnx: bytes must be a Uint8Array");
  writeFileAtomic(path, bytes, "writeOnnx");
}
