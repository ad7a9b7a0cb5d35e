// Embeddings: features of images from a loaded encoder, for a batch in memory or streamed over a
// whole dataset (one batch alive at a time, so a folder larger than memory is fine).
import type { ImageDataset } from "../data/dataset.js";
import { F, arange, keep, noGrad, scope, type Tensor } from "../torch/index.js";
import type { Encoder, FeatureKind } from "./encoder.js";
import { Preprocessor, type PreprocessOptions } from "./preprocess.js";

export interface EmbedOptions extends PreprocessOptions {
  features?: FeatureKind;
  /** L2-normalise each embedding (default true: cosine similarity becomes a dot product). */
  normalize?: boolean;
  /**
   * Where the network runs ("cpu", "cuda:0"; the encoder's model must be there, Module.toDevice).
   * Preprocessing stays on the CPU; the embeddings come back to the CPU. Default: the CPU.
   */
  device?: string;
}

function encode(encoder: Encoder, preprocessor: Preprocessor, images: Tensor, options: EmbedOptions): Tensor {
  const device = options.device ?? "cpu";
  return scope(() =>
    noGrad(() => {
      const input = preprocessor.apply(images);
      let features = encoder.forward(device === "cpu" ? input : input.toDevice(device), options.features ?? "backbone");
      if (device !== "cpu") features = features.toDevice("cpu");
      return options.normalize === false ? features : F.normalize(features, { dim: 1 });
    }),
  );
}

/** Embeddings [B, D] (float32) of uint8 images [B, C, H, W]. */
export function embed(encoder: Encoder, images: Tensor, options: EmbedOptions = {}): Tensor {
  if (images.ndim !== 4) throw new RangeError(`embed: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
  const preprocessor = new Preprocessor(encoder, images.shape[1] ?? 0, options);
  return encode(encoder, preprocessor, images, options);
}

export interface EmbedDatasetOptions extends EmbedOptions {
  batchSize?: number;
  /** Called with each batch's embeddings (freed after the call returns) and its first index. */
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
  // The next batch decodes (folders: on libuv's threads) while this one is encoded.
  const load = (start: number) => {
    const indices = arange(start, Math.min(start + batchSize, dataset.length));
    const pending = Promise.resolve(dataset.batch(indices));
    return pending.finally(() => indices.dispose());
  };
  let next: Promise<Tensor> | null = dataset.length > 0 ? load(0) : null;
  try {
    for (let start = 0; next !== null; start += batchSize) {
      const images = await next;
      next = start + batchSize < dataset.length ? load(start + batchSize) : null;
      let embeddings: Tensor;
      try {
        embeddings = keep(encode(encoder, preprocessor, images, options));
      } finally {
        images.dispose();
      }
      try {
        await options.onBatch(embeddings, start);
      } finally {
        embeddings.dispose();
      }
    }
  } finally {
    // A failure leaves the next batch in flight: free it when it lands.
    if (next !== null)
      next.then(
        (images) => images.dispose(),
        () => undefined,
      );
  }
}
