// From stored images (uint8 [B, C, H, W]) to what an encoder expects: the crop size it was trained
// at, its number of channels, and the normalisation of its training data. Gray images given to a
// 3-channel network have their channel repeated and then ImageNet's normalisation applies (the
// network was trained on colour images); colour images given to a 1-channel network are reduced to
// their luma.
import { evalTransform } from "../data/augment.js";
import { grayscale, normalize, resizedCrop, toFloatImages } from "../data/augment/ops.js";
import { IMAGENET_STATS, type ChannelStats } from "../data/dataset.js";
import { FASHION_MNIST_STATS, MNIST_STATS } from "../data/fashion-mnist.js";
import { CIFAR10_STATS, CIFAR100_STATS } from "../data/cifar.js";
import { IMAGENET_GRAY_STATS } from "../data/image-folder.js";
import { scope, type Tensor } from "../torch/index.js";
import { Encoder } from "./encoder.js";
import type { EncoderInput } from "./input.js";

export interface PreprocessOptions {
  /** Side of the square input: larger images are centre-cropped, smaller ones resized; null keeps them. */
  size?: number | null;
  /** Normalisation of images with the encoder's channel count (default: that of its training data). */
  stats?: ChannelStats;
  /**
   * Resize to size / ratio first, then centre-crop `size`: ImageNet evaluation's Resize(256) +
   * CenterCrop(224) is ratio 0.875. Default: crop (or resize) straight to `size`.
   */
  centerCropRatio?: number;
}

const TRAINING_STATS: Readonly<Record<string, ChannelStats>> = {
  "fashion-mnist": FASHION_MNIST_STATS,
  mnist: MNIST_STATS,
  cifar10: CIFAR10_STATS,
  cifar100: CIFAR100_STATS,
};

/** The normalisation the encoder saw in training, as far as its checkpoint tells. */
export function trainingStats(encoder: Encoder): ChannelStats {
  const recorded = encoder.info.input;
  if (recorded !== undefined && recorded !== null && recorded.channels === encoder.inChannels)
    return { mean: [...recorded.mean], std: [...recorded.std] };
  const known = encoder.info.trainedOn === null ? undefined : TRAINING_STATS[encoder.info.trainedOn.dataset];
  if (known !== undefined && known.mean.length === encoder.inChannels) return known;
  return encoder.inChannels === 3 ? IMAGENET_STATS : IMAGENET_GRAY_STATS;
}

/** Image side of the small datasets, for encoders pretrained on them at their own size. */
const DATASET_SIZES: Readonly<Record<string, number>> = { "fashion-mnist": 28, mnist: 28, cifar10: 32, cifar100: 32 };

/**
 * The input the encoder expects: what its file records, else what its pretraining configuration
 * implies (the rule of src/train/data.ts: the crop size, else folders at 64 px for CIFAR-stem
 * networks and 224 otherwise, else the dataset's own size), else 32 (CIFAR stem) or 224.
 */
export function encoderInput(encoder: Encoder): EncoderInput {
  const recorded = encoder.info.input;
  if (recorded !== undefined && recorded !== null) return recorded;
  const { layout, trainedOn } = encoder.info;
  const size =
    trainedOn?.imageSize ??
    (trainedOn?.dataset === "folder" ? (layout.cifarStem ? 64 : 224) : undefined) ??
    (trainedOn === null ? undefined : DATASET_SIZES[trainedOn.dataset]) ??
    (layout.cifarStem ? 32 : 224);
  const stats = trainingStats(encoder);
  return { size, channels: encoder.inChannels, mean: stats.mean, std: stats.std };
}

/** Turns batches of stored images into the encoder's input; says once how it adapts channels. */
export class Preprocessor {
  readonly size: number | null;
  readonly stats: ChannelStats;
  /** How the channels are adapted, or null when they match. */
  readonly note: string | null;
  readonly centerCropRatio: number | null;
  readonly #dataChannels: number;
  readonly #modelChannels: number;

  /**
   * `encoder`: the network the images go to, or only its input channels (then `options.stats` is
   * required: there is no training data to take the normalisation from).
   */
  constructor(
    encoder: Encoder | { readonly inChannels: number },
    dataChannels: number,
    options: PreprocessOptions = {},
  ) {
    if (dataChannels !== 1 && dataChannels !== 3)
      throw new RangeError(`preprocess: images must have 1 or 3 channels, got ${dataChannels}`);
    const size = options.size ?? null;
    if (size !== null && !(Number.isSafeInteger(size) && size >= 1))
      throw new RangeError(`preprocess: size must be a positive integer, got ${size}`);
    this.size = size;
    const ratio = options.centerCropRatio ?? null;
    if (ratio !== null && !(ratio > 0 && ratio <= 1))
      throw new RangeError(`preprocess: centerCropRatio must be in (0, 1], got ${ratio}`);
    if (ratio !== null && size === null) throw new RangeError("preprocess: centerCropRatio needs a size");
    this.centerCropRatio = ratio;
    this.#dataChannels = dataChannels;
    this.#modelChannels = encoder.inChannels;
    const stats = options.stats ?? (encoder instanceof Encoder ? trainingStats(encoder) : null);
    if (stats === null) throw new RangeError("preprocess: the normalisation (stats) is required without an encoder");
    this.stats = stats;
    if (this.stats.mean.length !== encoder.inChannels)
      throw new RangeError(
        `preprocess: normalisation for ${this.stats.mean.length} channel(s), the encoder takes ${encoder.inChannels}`,
      );
    this.note =
      dataChannels === encoder.inChannels
        ? null
        : dataChannels === 1
          ? `gray images, ${encoder.inChannels}-channel encoder: repeating the channel, then ImageNet normalisation`
          : `colour images, 1-channel encoder: using their luma (ITU-R 601-2)`;
    if (dataChannels !== encoder.inChannels && encoder.inChannels !== 1 && encoder.inChannels !== 3)
      throw new RangeError(`preprocess: cannot adapt ${dataChannels}-channel images to ${encoder.inChannels} channels`);
  }

  /** float [B, modelChannels, size, size] from uint8 [B, dataChannels, H, W]. */
  apply(images: Tensor): Tensor {
    if (images.ndim !== 4 || images.shape[1] !== this.#dataChannels)
      throw new RangeError(
        `preprocess: expected images [B, ${this.#dataChannels}, H, W], got [${images.shape.join(", ")}]`,
      );
    return scope(() => {
      let x = images;
      if (this.centerCropRatio !== null && this.size !== null) {
        const [n = 0, , height = 0, width = 0] = images.shape;
        const resized = Math.round(this.size / this.centerCropRatio);
        const box = { top: 0, left: 0, height, width };
        x = resizedCrop(
          toFloatImages(images),
          Array.from({ length: n }, () => box),
          [resized, resized],
        );
      }
      const size = this.size === null ? {} : { size: this.size };
      if (this.#dataChannels === this.#modelChannels) return evalTransform(x, { ...size, stats: this.stats });
      return this.adapt(evalTransform(x, { ...size, stats: null }));
    });
  }

  /** Normalised encoder input from float images in [0, 1] with the data's channels (e.g. augmented crops). */
  adapt(images: Tensor): Tensor {
    return scope(() => {
      const adapted =
        this.#dataChannels === this.#modelChannels
          ? images
          : this.#dataChannels === 1
            ? images.expand(-1, this.#modelChannels, -1, -1).contiguous()
            : grayscale(images);
      return normalize(adapted, this.stats);
    });
  }
}
