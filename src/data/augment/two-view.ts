// MoCo's two views of every image: the query and the key, independent draws of one pipeline.
//
// Two ways in. Images held in memory (IDX, CIFAR) come as one batch tensor: `apply` draws and
// applies both views at once. Image folders cut each view's crop while decoding (the loader's
// `views` option): the loader calls `sampleForDecoding` with the images' own sizes as it reads a
// batch ahead, decodes the crops, and the training step calls `applyDecoded` for the rest of the
// pipeline. Both draw the same parameters in the same order from the one seeded stream.
//
// Exact resume with read-ahead: the loader draws a batch's parameters before the step that uses it,
// so the stream runs ahead of training by the batches read ahead. `applyDecoded` records the
// stream's state as of the batch it applies (`stateAfter`), and `getState` (what a checkpoint stores)
// returns that, not the state after the draws of batches not trained on yet; a run resumed from it
// draws those batches again, the same way.
import { scope, type Tensor } from "../../torch/index.js";
import { Random, type RandomState } from "../random.js";
import { Augment } from "./pipeline.js";
import type { DecodeParams, ImageSize } from "./sampling.js";
import type { AugmentConfig } from "./steps.js";

export interface TwoViews {
  /** float [B, C, h, w]: the query view x_q. */
  query: Tensor;
  /** float [B, C, h, w]: the key view x_k, an independent draw of the same pipeline. */
  key: Tensor;
}

/** The parameters of both views of a batch whose crops are cut while decoding. */
export interface DecodeViewParams {
  query: DecodeParams;
  key: DecodeParams;
  /** The stream's state after these draws: the state a checkpoint stores once the batch is trained on. */
  stateAfter: RandomState;
}

/** Both views of a batch as decoded: float crops in [0, 1] at the output size, and their parameters. */
export interface DecodedViews {
  /** float32 [B, C, h, w] in [0, 1]: the query view's crops, cut, resized and mirrored (`applied`: the view x_q). */
  query: Tensor;
  /** float32 [B, C, h, w]: the key view's (`applied`: the view x_k). */
  key: Tensor;
  params: DecodeViewParams;
  /** The rest of the pipeline was applied too, with `params` (the loader's workers): query and key are float views. */
  applied?: true;
}

/** MoCo's TwoCropsTransform over batches: two independent draws from one seeded stream. */
export class TwoViewAugment {
  readonly augment: Augment;
  readonly rng: Random;
  /**
   * The stream's state as of the batches applied so far, while draws for batches read ahead have
   * moved it on (null: nothing drawn ahead, the stream's own state is that state).
   */
  #applied: RandomState | null = null;

  constructor(augment: Augment | AugmentConfig, options: { seed?: number; rng?: Random } = {}) {
    this.augment = augment instanceof Augment ? augment : new Augment(augment);
    if (options.rng !== undefined && options.seed !== undefined)
      throw new TypeError("TwoViewAugment: give seed or rng, not both");
    this.rng = options.rng ?? new Random(options.seed ?? 0);
  }

  /** Both views of a batch held in memory, uint8 or float [B, C, H, W]. */
  apply(images: Tensor): TwoViews {
    this.#applied = null;
    return scope(() => ({ query: this.augment.apply(images, this.rng), key: this.augment.apply(images, this.rng) }));
  }

  /**
   * Draws both views' parameters for images of the given sizes ([height, width] as decoded), the
   * query's for every image, then the key's: what `apply` draws for a batch of images of those sizes.
   */
  sampleForDecoding(sizes: readonly ImageSize[]): DecodeViewParams {
    this.#applied ??= this.rng.getState();
    const query = this.augment.sampleForDecoding(this.rng, sizes);
    const key = this.augment.sampleForDecoding(this.rng, sizes);
    return { query, key, stateAfter: this.rng.getState() };
  }

  /**
   * The rest of the pipeline on crops decoded with `sampleForDecoding`'s parameters (deterministic).
   * Views already `applied` (the loader's workers) are returned as they are: tensors of the batch,
   * which the batch's dispose frees.
   */
  applyDecoded(views: DecodedViews): TwoViews {
    if (views.applied === true) {
      this.#applied = views.params.stateAfter;
      return { query: views.query, key: views.key };
    }
    const out = scope(() => ({
      query: this.augment.applyWith(views.query, views.params.query.rest),
      key: this.augment.applyWith(views.key, views.params.key.rest),
    }));
    this.#applied = views.params.stateAfter;
    return out;
  }

  /** The generator's state as of the batches applied so far (not those only drawn ahead), for checkpoints. */
  getState(): RandomState {
    return this.#applied ?? this.rng.getState();
  }
  setState(state: RandomState): void {
    this.rng.setState(state);
    this.#applied = null;
  }
}
