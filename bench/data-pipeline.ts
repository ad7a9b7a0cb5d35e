// Issue 4's data benchmark: the data pipeline alone, as the default `moco pretrain` feeds its training
// step: Fashion-MNIST training images (held in memory as one uint8 tensor, read once from Debian's IDX
// files before timing) in shuffled, prefetched batches of 256 through the DataLoader, then the two-view
// MoCo v2 augmentation at 28×28 with the Fashion-MNIST preset's crop scale and normalisation
// (measureAugmentThroughput). Images/s of source images (each gives two views). Not compared with
// Python: the bound is the images/s that moco-fmnist-step's training step consumes in auto precision,
// the faster one (our side, measured in the same invocation); the pipeline must be at least 3 times as
// fast, so training never waits. moco-fmnist-step also prints this ratio, measured in its own process.
import { existsSync } from "node:fs";
import { join } from "node:path";

import { FASHION_MNIST_DIR } from "../src/data/fashion-mnist.js";
import { median, peakRssMiB, type BenchEntry } from "./framework.js";

const BATCH = 256;

export const dataPipeline: BenchEntry = {
  name: "data-pipeline",
  description: `Fashion-MNIST loader + two-view MoCo v2 augmentation, batch ${BATCH}, 28×28 (vs moco-fmnist-step's consumption)`,
  rounds: 2,
  metrics: [
    {
      key: "images_per_s",
      label: "pipeline throughput",
      unit: "images/s",
      better: "higher",
      target: 3.0,
      digits: 1,
      // The faster step's: auto precision (bf16 where the CPU computes it natively, else float32).
      bound: { entry: "moco-fmnist-step", key: "images_per_s_auto", label: "moco-fmnist-step consumption (auto)" },
    },
  ],
  async unavailable() {
    const file = join(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz");
    return existsSync(file) ? null : `no Fashion-MNIST at ${FASHION_MNIST_DIR} (Debian's package)`;
  },
  async runOurs({ quick }) {
    const { mocoV2Config, openFashionMnist } = await import("../src/data/index.js");
    const { measureAugmentThroughput } = await import("./augment-throughput.js");
    const { PRESETS } = await import("../src/train/config.js");
    const preset = PRESETS["fashion-mnist"];
    const dataset = openFashionMnist({ split: "train" });
    try {
      // As src/train/data.ts builds the default preset's augmentation.
      const config = mocoV2Config({ size: dataset.height, stats: dataset.stats, scale: [preset.cropMinScale, 1] });
      const batches = quick ? 3 : 20;
      const repeats = quick ? 1 : 3;
      const rates: number[] = [];
      const cpuRates: number[] = [];
      let last: Awaited<ReturnType<typeof measureAugmentThroughput>> | null = null;
      for (let r = 0; r < repeats; r++) {
        const c0 = process.cpuUsage();
        last = await measureAugmentThroughput({ dataset, config, batchSize: BATCH, batches, warmup: 2, seed: r });
        const cpu = process.cpuUsage(c0);
        rates.push(last.imagesPerSecond);
        // CPU time of the whole call (warm-up batches included), per image of the whole call.
        cpuRates.push(((batches + 2) * BATCH) / ((cpu.user + cpu.system) / 1e6));
      }
      return {
        values: { images_per_s: median(rates) },
        details: {
          // In the JSON only (no Python side to compare them with):
          images_per_cpu_s: median(cpuRates),
          peak_rss_mib: peakRssMiB(),
          batch: BATCH,
          batches_per_repeat: batches,
          repeats,
          images_per_s_each: rates,
          crop_scale: [preset.cropMinScale, 1],
          dataset: last?.dataset,
          input_shape: last?.inputShape,
          output_shape: last?.outputShape,
        },
      };
    } finally {
      dataset.dispose();
    }
  },
};
