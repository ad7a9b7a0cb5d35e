// Throughput of the data pipeline alone (reading/decoding + two-view augmentation), for the
// benchmark (bench/data-pipeline.ts): images per second that a training loop could consume without
// waiting for data. Benchmark code, so it lives in bench/, outside the library.
import { getNumThreads } from "../src/torch/index.js";
import { mocoV2Config, TwoViewAugment, type AugmentConfig } from "../src/data/augment.js";
import type { ImageDataset } from "../src/data/dataset.js";
import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { DataLoader } from "../src/data/loader.js";

export interface AugmentThroughputOptions {
  /** Default: Fashion-MNIST's training split (Debian's package). */
  dataset?: ImageDataset;
  /** Default: MoCo v2 at the dataset's size with its own normalisation constants. */
  config?: AugmentConfig;
  batchSize?: number;
  /** Batches timed (after the warm-up). Default 20. */
  batches?: number;
  warmup?: number;
  seed?: number;
}

export interface AugmentThroughput {
  /** Source images per second; each yields two views. */
  imagesPerSecond: number;
  batchSize: number;
  batches: number;
  seconds: number;
  threads: number;
  dataset: string;
  inputShape: readonly number[];
  outputShape: readonly number[];
}

/**
 * Runs the loader (shuffled, prefetching) and the two-view augmentation over `batches` batches
 * and reports images per second. The views are freed at once, as a training step would after use.
 */
export async function measureAugmentThroughput(options: AugmentThroughputOptions = {}): Promise<AugmentThroughput> {
  const owned = options.dataset === undefined;
  const dataset = options.dataset ?? openFashionMnist({ split: "train" });
  try {
    const batchSize = options.batchSize ?? 256;
    const batches = options.batches ?? 20;
    const warmup = options.warmup ?? 2;
    const config = options.config ?? mocoV2Config({ size: dataset.height, stats: dataset.stats });
    const views = new TwoViewAugment(config, { seed: options.seed ?? 0 });
    const loader = new DataLoader(dataset, { batchSize, seed: options.seed ?? 0 });
    let inputShape: readonly number[] = [];
    let outputShape: readonly number[] = [];
    let done = 0;
    let start = 0;
    for (let epoch = 0; done < warmup + batches; epoch++) {
      for await (const batch of loader.batches(epoch)) {
        if (done === warmup) start = performance.now();
        const { query, key } = views.apply(batch.images);
        inputShape = batch.images.shape;
        outputShape = query.shape;
        query.dispose();
        key.dispose();
        batch.dispose();
        if (++done === warmup + batches) break;
      }
    }
    const seconds = (performance.now() - start) / 1000;
    return {
      imagesPerSecond: (batches * batchSize) / seconds,
      batchSize,
      batches,
      seconds,
      threads: getNumThreads(),
      dataset: dataset.name,
      inputShape,
      outputShape,
    };
  } finally {
    if (owned) dataset.dispose();
  }
}
