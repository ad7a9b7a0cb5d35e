// Embeddings: features of images from a loaded encoder, for a batch in memory or streamed over a
// whole dataset (one batch alive at a time, so a folder larger than memory is fine). The extraction
// itself is features.ts's, shared with kNN and linear evaluation.
import type { ImageDataset } from "../data/dataset.js";
import { onDevice } from "../nn/index.js";
import {
  asFloat32,
  inLayout,
  resolvePrecision,
  withPrecision,
  type ChannelsLastSetting,
  type CpuCapabilities,
  type PrecisionSetting,
  type ResolvedPrecision,
  type Tensor,
} from "../torch/index.js";
import type { Encoder, FeatureKind } from "./encoder.js";
import { batchFeatures, datasetSource, streamFeatures, type FeatureFunction } from "./features.js";
import { Preprocessor, type PreprocessOptions } from "./preprocess.js";

export interface EmbedOptions extends PreprocessOptions {
  features?: FeatureKind;
  /** L2-normalise each embedding (default true: cosine similarity becomes a dot product). */
  normalize?: boolean;
  /**
   * Where the network runs ("cpu", "cuda", "cuda:N"): the encoder's model is moved there first.
   * Default: wherever it is. Embeddings come back on the CPU.
   */
  device?: string;
  /**
   * The forward pass in bfloat16 autocast ("bf16"), float32, "auto" (src/torch/precision.ts), or
   * float16 autocast ("fp16", GPU only).
   * Default "fp32": the features PyTorch's float32 forward gives. Embeddings are float32 either way.
   */
  precision?: PrecisionSetting;
  /** Channels-last activations and conv weights (the model is converted in place). Default "off". */
  channelsLast?: ChannelsLastSetting;
  /** The CPU "auto" decides for (default: this machine's /proc/cpuinfo). */
  cpu?: CpuCapabilities;
}

/** The precision an embedding call runs in. */
export function embedPrecision(options: EmbedOptions): ResolvedPrecision {
  return resolvePrecision(
    {
      precision: options.precision ?? "fp32",
      channelsLast: options.channelsLast ?? "off",
      device: options.device ?? "cpu",
    },
    options.cpu,
  );
}

/**
 * The encoder as a feature function of stored images (uint8 [B, C, H, W]): preprocessed, moved to
 * the model's device (after `options.device` moved the model), encoded. Output on that device.
 */
export function encoderFeatures(encoder: Encoder, preprocessor: Preprocessor, options: EmbedOptions): FeatureFunction {
  if (options.device !== undefined) encoder.model.toDevice(options.device);
  const device = encoder.model.device;
  const precision = embedPrecision({ ...options, device });
  if (precision.channelsLast) encoder.model.to({ memoryFormat: "channelsLast" });
  const kind = options.features ?? "backbone";
  return (images) => {
    const x = inLayout(precision, onDevice(preprocessor.apply(images), device));
    // Cast before anything normalises, stores or compares them: bf16 only inside the network.
    return asFloat32(withPrecision(precision, device, () => encoder.forward(x, kind)));
  };
}

function toCpu(features: Tensor): Tensor {
  if (features.device === "cpu") return features;
  const cpu = features.toDevice("cpu");
  features.dispose();
  return cpu;
}

/** Embeddings [B, D] (float32, on the CPU) of uint8 images [B, C, H, W]. */
export function embed(encoder: Encoder, images: Tensor, options: EmbedOptions = {}): Tensor {
  if (images.ndim !== 4) throw new RangeError(`embed: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
  const preprocessor = new Preprocessor(encoder, images.shape[1] ?? 0, options);
  return toCpu(batchFeatures(images, encoderFeatures(encoder, preprocessor, options), options));
}

export interface EmbedDatasetOptions extends EmbedOptions {
  batchSize?: number;
  /** Called with each batch's embeddings (on the CPU, freed after the call returns) and its first index. */
  onBatch: (embeddings: Tensor, start: number) => void | Promise<void>;
  /** Told once how images are adapted to the encoder (channel repeat or luma). */
  onNote?: (note: string) => void;
}

/** Streams the embeddings of every image of `dataset`, in order, `batchSize` images at a time. */
export async function embedDataset(
  encoder: Encoder,
  dataset: ImageDataset,
  options: EmbedDatasetOptions,
): Promise<void> {
  const batchSize = options.batchSize ?? 256;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1))
    throw new RangeError(`embed: batchSize must be a positive integer, got ${batchSize}`);
  const preprocessor = new Preprocessor(encoder, dataset.channels, options);
  if (preprocessor.note !== null) options.onNote?.(preprocessor.note);
  const features = encoderFeatures(encoder, preprocessor, options);
  await streamFeatures(dataset.length, batchSize, datasetSource(dataset), features, {
    ...options,
    onBatch: async (embeddings, start) => {
      if (embeddings.device === "cpu") return options.onBatch(embeddings, start);
      const cpu = embeddings.toDevice("cpu");
      try {
        await options.onBatch(cpu, start);
      } finally {
        cpu.dispose();
      }
    },
  });
}
