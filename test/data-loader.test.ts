// The loader: a seeded permutation per epoch, drop-last, resuming mid-epoch, freeing what it read
// ahead; and the throughput measurement the benchmark calls.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { measureAugmentThroughput } from "../bench/augment-throughput.js";
import { DataLoader, TensorImageDataset, mocoV2Config } from "../src/data/index.js";
import { arange, keep, liveTensors, scope } from "../src/torch/index.js";

/** 103 images 1×2×2 whose pixels all equal their index (mod 256), labels index mod 7. */
function dataset(): TensorImageDataset {
  return scope(
    () =>
      new TensorImageDataset({
        name: "numbers",
        images: keep(arange(0, 103).remainder(256).to("uint8").view(103, 1, 1, 1).expand(103, 1, 2, 2).contiguous()),
        labels: keep(arange(0, 103).remainder(7)),
        classNames: ["0", "1", "2", "3", "4", "5", "6"],
        stats: { mean: [0.5], std: [0.5] },
      }),
  );
}

async function collect(loader: DataLoader, epoch: number, startStep?: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const batch of loader.batches(epoch, startStep === undefined ? {} : { startStep })) {
    const indices = batch.indices.toArray();
    // The images and labels are those of the indices.
    assert.deepEqual(
      scope(() => batch.images.select(1, 0).select(1, 0).select(1, 0).toArray()),
      indices,
    );
    assert.deepEqual(
      batch.labels!.toArray(),
      indices.map((i) => i % 7),
    );
    assert.equal(batch.step, startStep === undefined ? out.length : startStep + out.length);
    assert.equal(batch.epoch, epoch);
    out.push(indices);
    batch.dispose();
  }
  return out;
}

describe("DataLoader", () => {
  it("drop-last batches of a seeded permutation; same seed and epoch, same order; other epoch or seed, another", async () => {
    const ds = dataset();
    const loader = new DataLoader(ds, { batchSize: 10, seed: 5 });
    assert.equal(loader.batchesPerEpoch, 10);
    const before = liveTensors();
    const e0 = await collect(loader, 0);
    assert.equal(e0.length, 10);
    assert.ok(e0.every((b) => b.length === 10));
    const flat = e0.flat();
    assert.equal(new Set(flat).size, 100, "no image twice in an epoch");
    assert.deepEqual(flat, Array.from(loader.order(0).subarray(0, 100)));
    assert.deepEqual(await collect(new DataLoader(ds, { batchSize: 10, seed: 5 }), 0), e0);
    assert.notDeepEqual((await collect(loader, 1)).flat(), flat);
    assert.notDeepEqual((await collect(new DataLoader(ds, { batchSize: 10, seed: 6 }), 0)).flat(), flat);
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("keeps the last partial batch without dropLast; no shuffle is 0..N-1", async () => {
    const ds = dataset();
    const loader = new DataLoader(ds, { batchSize: 25, shuffle: false, dropLast: false });
    assert.equal(loader.batchesPerEpoch, 5);
    const batches = await collect(loader, 0);
    assert.deepEqual(
      batches.map((b) => b.length),
      [25, 25, 25, 25, 3],
    );
    assert.deepEqual(
      batches.flat(),
      Array.from({ length: 103 }, (_, i) => i),
    );
    ds.dispose();
  });

  it("resumes mid-epoch with startStep: the same batches as the rest of the uninterrupted epoch", async () => {
    const ds = dataset();
    const loader = new DataLoader(ds, { batchSize: 8, seed: 11, prefetch: 3 });
    const all = await collect(loader, 2);
    assert.deepEqual(await collect(loader, 2, 7), all.slice(7));
    assert.throws(() => loader.batches(0, { startStep: 99 }), /startStep/);
    ds.dispose();
  });

  it("leaving the loop early frees the batches read ahead", async () => {
    const ds = dataset();
    const loader = new DataLoader(ds, { batchSize: 4, prefetch: 4 });
    const before = liveTensors();
    for await (const batch of loader.batches(0)) {
      batch.dispose();
      if (batch.step === 2) break;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("validates its options", () => {
    const ds = dataset();
    assert.throws(() => new DataLoader(ds, { batchSize: 0 }), /batchSize/);
    assert.throws(() => new DataLoader(ds, { batchSize: 200 }), /fewer than one batch/);
    assert.throws(() => new DataLoader(ds, { batchSize: 2, prefetch: 0 }), /prefetch/);
    assert.throws(() => new DataLoader(ds, { batchSize: 2, seed: -3 }), /seed/);
    ds.dispose();
  });
});

describe("measureAugmentThroughput", () => {
  it("reports images per second through loader + two-view augmentation (default: Fashion-MNIST, v2)", async () => {
    const before = liveTensors();
    const result = await measureAugmentThroughput({ batchSize: 64, batches: 3, warmup: 1 });
    assert.equal(result.dataset, "fashion-mnist train");
    assert.deepEqual(result.inputShape, [64, 1, 28, 28]);
    assert.deepEqual(result.outputShape, [64, 1, 28, 28]);
    assert.ok(result.imagesPerSecond > 0 && Number.isFinite(result.imagesPerSecond));
    assert.equal(liveTensors(), before);
  });

  it("takes a dataset and a pipeline", async () => {
    const ds = dataset();
    const result = await measureAugmentThroughput({
      dataset: ds,
      config: mocoV2Config({ size: 4, stats: ds.stats }),
      batchSize: 16,
      batches: 8,
    });
    assert.deepEqual(result.outputShape, [16, 1, 4, 4]);
    assert.equal(result.batches, 8); // more batches than one epoch holds: it continues into the next
    ds.dispose();
  });
});
