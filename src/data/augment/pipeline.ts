// A random augmentation pipeline over batches: the configuration validated once (steps.ts), the
// parameters drawn per image (sampling.ts), then applied to the whole batch (apply.ts).
//
// A pipeline is a list of steps, torchvision's Compose: it starts with RandomResizedCrop (the only
// geometric step), then colour steps in the listed order, then Normalize.
import type { Tensor } from "../../torch/index.js";
import type { Random } from "../random.js";
import { applyParams } from "./apply.js";
import { sampleDecodeParams, sampleParams, type AugmentParams, type DecodeParams, type ImageSize } from "./sampling.js";
import { resolvePipeline, type AugmentConfig, type Resolved } from "./steps.js";

/** A random augmentation pipeline over batches: uint8 or float [B, C, H, W] → float [B, C', h, w]. */
export class Augment {
  readonly config: AugmentConfig;
  /** [height, width] of the output. */
  readonly outputSize: readonly [number, number];
  readonly #steps: readonly Resolved[];

  constructor(config: AugmentConfig) {
    const { steps, outputSize } = resolvePipeline(config);
    this.config = config;
    this.#steps = steps;
    this.outputSize = outputSize;
  }

  /** Draws the parameters for a batch of n images of size height × width. */
  sample(rng: Random, n: number, height: number, width: number): AugmentParams {
    return sampleParams(this.#steps, rng, n, height, width);
  }

  /**
   * Draws the parameters for images of their own sizes whose crops are cut while decoding (image
   * folders): the same draws, in the same order, as `sample` makes for images of those sizes.
   */
  sampleForDecoding(rng: Random, sizes: readonly ImageSize[]): DecodeParams {
    return sampleDecodeParams(this.#steps, rng, sizes, this.outputSize);
  }

  /** Applies drawn parameters (deterministic). uint8 input is read as x / 255. */
  applyWith(images: Tensor, params: AugmentParams): Tensor {
    return applyParams({ outputSize: this.outputSize, normalize: this.config.normalize }, images, params);
  }

  /** Draws parameters from `rng` and applies them. */
  apply(images: Tensor, rng: Random): Tensor {
    const [n, , height, width] = images.shape as [number, number, number, number];
    return this.applyWith(images, this.sample(rng, n, height, width));
  }
}
