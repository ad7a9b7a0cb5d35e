// Batches over a dataset: a seeded shuffle per epoch, drop-last, and prefetching (up to `prefetch`
// batches being read while the caller computes; for image folders the decoding runs on libuv's
// thread pool, so it overlaps with the synchronous training step).
//
// Training views cut while decoding (`views`, on datasets that can: image folders): for each batch
// the loader reads the images' sizes, draws both views' parameters from the views' stream, and
// decodes every view's crops straight to the output size. The draws are made in batch order (each
// batch's after the previous one's), whatever order the reads complete in, so a run draws the same
// parameters however the decoding is timed.
//
// Workers (`workers`, with views on an image folder): each batch is decoded, cut and augmented in a
// worker thread (augment-workers.ts) and arrives with its views finished; the draws stay here.
import { fromTypedArray, scope, type Tensor } from "../torch/index.js";
import { AugmentWorkers } from "./augment-workers.js";
import type { DecodedViews, TwoViewAugment } from "./augment/two-view.js";
import { decodesCrops, type ImageDataset } from "./dataset.js";
import { Random } from "./random.js";

export interface LoaderOptions {
  batchSize: number;
  /** Shuffle each epoch with a permutation drawn from (seed, epoch). Default true. */
  shuffle?: boolean;
  /** Default 0. */
  seed?: number;
  /** Drop the last incomplete batch. Default true (MoCo's queue needs full batches). */
  dropLast?: boolean;
  /** Batches read ahead. Default 2. */
  prefetch?: number;
  /** Which images an epoch visits, in order (default: all of them, shuffled as `shuffle` says). */
  sampler?: Sampler;
  /**
   * MoCo's two views, cut while decoding where the dataset can (image folders): batches then carry
   * `views`, decoded at the views' output size with crop boxes drawn on each image's own size, and
   * the step applies the rest with `views.applyDecoded`. Other datasets ignore it (the step applies
   * `views.apply` to `images`).
   */
  views?: TwoViewAugment;
  /**
   * With `views` on a dataset that cuts crops while decoding: worker threads that decode, cut and
   * augment whole batches (PyTorch's num_workers); their batches carry views already applied. Up to
   * prefetch × workers batches are then in flight (PyTorch's prefetch_factor). 0 (default):
   * decoding on libuv's pool and the rest on the caller's thread (`views.applyDecoded`). Ignored
   * elsewhere. Call close() when done.
   */
  workers?: number;
}

/** The dataset indices an epoch visits, in order; the loader cuts them into batches. */
export interface Sampler {
  /** Indices per epoch. */
  readonly length: number;
  order(epoch: number): Int32Array;
}

/** One batch. Its tensors belong to the consumer: call dispose() (or `using`) when done. */
export interface Batch {
  /** uint8 [B, C, H, W]; with `views`, the query view's crops (the same tensor as views.query). */
  images: Tensor;
  /** Both training views as decoded (LoaderOptions.views on a dataset that cuts crops while decoding). */
  views?: DecodedViews;
  /** int64 [B], or null for unlabeled data. */
  labels: Tensor | null;
  /** int64 [B]: the dataset indices of the images. */
  indices: Tensor;
  epoch: number;
  /** The batch's position in the epoch, from 0. */
  step: number;
  dispose(): void;
  [Symbol.dispose](): void;
}

function makeBatch(
  images: Tensor,
  labels: Tensor | null,
  indices: Tensor,
  epoch: number,
  step: number,
  views: DecodedViews | undefined,
): Batch {
  const dispose = () => {
    images.dispose();
    views?.key.dispose();
    labels?.dispose();
    indices.dispose();
  };
  const batch: Batch = { images, labels, indices, epoch, step, dispose, [Symbol.dispose]: dispose };
  if (views !== undefined) batch.views = views;
  return batch;
}

export class DataLoader {
  readonly dataset: ImageDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly prefetch: number;
  readonly sampler: Sampler | null;
  /** The views cut while decoding, or null (the dataset's batches as they are). */
  readonly views: TwoViewAugment | null;
  /** Worker threads that augment batches (0: none; always 0 without views cut while decoding). */
  readonly workers: number;
  #pool: AugmentWorkers | null = null;

  constructor(dataset: ImageDataset, options: LoaderOptions) {
    const { batchSize } = options;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`DataLoader: batchSize must be a positive integer, got ${String(batchSize)}`);
    }
    const prefetch = options.prefetch ?? 2;
    if (!Number.isSafeInteger(prefetch) || prefetch < 1) {
      throw new RangeError(`DataLoader: prefetch must be a positive integer, got ${String(prefetch)}`);
    }
    this.dataset = dataset;
    this.batchSize = batchSize;
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    new Random(this.seed); // validates the seed
    this.dropLast = options.dropLast ?? true;
    this.prefetch = prefetch;
    this.sampler = options.sampler ?? null;
    this.views = options.views !== undefined && decodesCrops(dataset) ? options.views : null;
    const workers = options.workers ?? 0;
    if (!Number.isSafeInteger(workers) || workers < 0) {
      throw new RangeError(`DataLoader: workers must be a non-negative integer, got ${String(options.workers)}`);
    }
    this.workers = this.views === null ? 0 : workers;
    if (this.batchesPerEpoch === 0) {
      throw new RangeError(
        `DataLoader: ${dataset.name} has ${this.sampler === null ? "" : "a sampler of "}${this.sampler?.length ?? dataset.length} images, ` +
          `fewer than one batch of ${batchSize} (dropLast)`,
      );
    }
  }

  get batchesPerEpoch(): number {
    const n = this.sampler?.length ?? this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset order of an epoch: the sampler's, a permutation drawn from (seed, epoch), or 0..N-1. */
  order(epoch: number): Int32Array {
    if (!Number.isSafeInteger(epoch) || epoch < 0)
      throw new RangeError(`DataLoader: epoch must be a non-negative integer, got ${epoch}`);
    if (this.sampler !== null) return this.sampler.order(epoch);
    const n = this.dataset.length;
    if (this.shuffle) return new Random(this.seed, epoch).permutation(n);
    return Int32Array.from({ length: n }, (_, i) => i);
  }

  /** The indices of one batch of an epoch. */
  batchIndices(epoch: number, step: number, order = this.order(epoch)): Int32Array {
    const start = step * this.batchSize;
    return order.subarray(start, Math.min(start + this.batchSize, order.length));
  }

  /**
   * Reads one batch. With views, its parameters are drawn once `drawnBefore` (the previous batch's
   * draws) has settled; returns the batch and the promise of its own draws.
   */
  private load(
    order: Int32Array,
    epoch: number,
    step: number,
    drawnBefore: Promise<unknown>,
  ): { batch: Promise<Batch>; drawn: Promise<unknown> } {
    const list = this.batchIndices(epoch, step, order);
    const dataset = this.dataset;
    const views = this.views;
    if (views === null || !decodesCrops(dataset)) {
      return {
        batch: this.assemble(list, epoch, step, async () => ({ images: await dataset.batch(list) })),
        drawn: drawnBefore,
      };
    }
    const sizes = dataset.imageSizes(list);
    const params = Promise.all([sizes, drawnBefore]).then(([s]) => views.sampleForDecoding(s));
    const pool = this.#pool;
    if (pool !== null) {
      const batch = this.assemble(list, epoch, step, async () => {
        const [p, sources] = await Promise.all([params, dataset.cropSources(list)]);
        const { outputSize, config } = views.augment;
        const { query, key } = await pool.run({
          sources,
          query: p.query,
          key: p.key,
          size: [outputSize[0], outputSize[1]],
          settings: { outputSize, normalize: config.normalize },
        });
        return { images: query, views: { query, key, params: p, applied: true } };
      });
      return { batch, drawn: params.catch(() => {}) };
    }
    const batch = this.assemble(list, epoch, step, async () => {
      const p = await params;
      const [query, key] = (await dataset.decodeCrops(list, [p.query, p.key], views.augment.outputSize)) as [
        Tensor,
        Tensor,
      ];
      return { images: query, views: { query, key, params: p } };
    });
    return { batch, drawn: params.catch(() => {}) };
  }

  private async assemble(
    list: Int32Array,
    epoch: number,
    step: number,
    read: () => Promise<{ images: Tensor; views?: DecodedViews }>,
  ): Promise<Batch> {
    const { images, views } = await read();
    try {
      const { indices, labels } = scope(() => {
        const indices = fromTypedArray(list, [list.length], "int32").long();
        return { indices, labels: this.dataset.labels === null ? null : this.dataset.labels.indexSelect(0, indices) };
      });
      return makeBatch(images, labels, indices, epoch, step, views);
    } catch (error) {
      images.dispose();
      views?.key.dispose();
      throw error;
    }
  }

  /**
   * The batches of one epoch, from `startStep` (to resume mid-epoch). Up to `prefetch` batches
   * are read ahead. Leaving the loop early frees the batches read ahead.
   */
  batches(epoch: number, options: { startStep?: number } = {}): AsyncGenerator<Batch, void, undefined> {
    // Validated here, at the call, rather than at the first next() of the generator.
    const order = this.order(epoch);
    const total = this.batchesPerEpoch;
    if (this.workers > 0) this.#pool ??= new AugmentWorkers(this.workers);
    const start = options.startStep ?? 0;
    if (!Number.isSafeInteger(start) || start < 0 || start > total) {
      throw new RangeError(`DataLoader.batches: startStep must be in [0, ${total}], got ${String(options.startStep)}`);
    }
    return this.generate(order, epoch, start, total);
  }

  private async *generate(
    order: Int32Array,
    epoch: number,
    start: number,
    total: number,
  ): AsyncGenerator<Batch, void, undefined> {
    let next = start;
    const pending: Promise<Batch>[] = [];
    // The previous batch's draws (views): each batch draws after it, in batch order.
    let drawn: Promise<unknown> = Promise.resolve();
    // With workers, `prefetch` batches per worker, as PyTorch's prefetch_factor.
    const inFlight = this.#pool === null ? this.prefetch : this.prefetch * this.workers;
    const launch = () => {
      while (pending.length < inFlight && next < total) {
        const loading = this.load(order, epoch, next++, drawn);
        drawn = loading.drawn;
        loading.batch.catch(() => {}); // rejections surface when awaited below, not as unhandled ones
        pending.push(loading.batch);
      }
    };
    try {
      launch();
      while (pending.length > 0) {
        const batch = await (pending.shift() as Promise<Batch>);
        launch(); // keep `prefetch` batches in flight while the caller works on this one
        yield batch;
      }
    } finally {
      for (const promise of pending)
        promise.then(
          (b) => b.dispose(),
          () => {},
        );
    }
  }

  /** Stops the worker threads (if any); batches still being read are dropped. batches() starts new ones. */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.close();
  }
}
