// MoCo's two views of every image: the query and the key, independent draws of one pipeline.
import { scope, type Tensor } from "../../torch/index.js";
import { Random, type RandomState } from "../random.js";
import { Augment } from "./pipeline.js";
import type { AugmentConfig } from "./steps.js";

export interface TwoViews {
  /** float [B, C, h, w]: the query view x_q. */
  query: Tensor;
  /** float [B, C, h, w]: the key view x_k, an independent draw of the same pipeline. */
  key: Tensor;
}

/** MoCo's TwoCropsTransform over batches: two independent draws from one seeded stream. */
export class TwoViewAugment {
  readonly augment: Augment;
  readonly rng: Random;

  constructor(augment: Augment | AugmentConfig, options: { seed?: number; rng?: Random } = {}) {
    this.augment = augment instanceof Augment ? augment : new Augment(augment);
    if (options.rng !== undefined && options.seed !== undefined)
      throw new TypeError("TwoViewAugment: give seed or rng, not both");
    this.rng = options.rng ?? new Random(options.seed ?? 0);
  }

  apply(images: Tensor): TwoViews {
    return scope(() => ({ query: this.augment.apply(images, this.rng), key: this.augment.apply(images, this.rng) }));
  }

  /** The generator's state, for checkpoints. */
  getState(): RandomState {
    return this.rng.getState();
  }
  setState(state: RandomState): void {
    this.rng.setState(state);
  }
}
