// Downstream evaluation on real Fashion-MNIST images: linear evaluation trains only the new fc and
// leaves the backbone bit for bit unchanged; kNN, top-k, reports and search equal direct counts.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import { evalTransform } from "../src/data/augment.js";
import { FASHION_MNIST_STATS, openFashionMnist } from "../src/data/fashion-mnist.js";
import { embed, embedDataset } from "../src/encoder/embed.js";
import { Encoder, buildResNet } from "../src/encoder/encoder.js";
import type { ResNetLayout } from "../src/encoder/layout.js";
import { classificationReport } from "../src/eval/classification-report.js";
import { evaluateEncoderKnn } from "../src/eval/encoder-knn.js";
import { LINCLS_DEFAULTS, linearEvaluation, topkCorrect } from "../src/eval/lincls.js";
import { nearestNeighbours } from "../src/search/search.js";
import {
  F,
  arange,
  fromTypedArray,
  keep,
  load,
  liveTensors,
  manualSeed,
  noGrad,
  randint,
  randn,
  scope,
  type Tensor,
} from "../src/torch/index.js";

/**
 * A small random-init network as an Encoder (what loadEncoder returns, without a file), its BN
 * statistics estimated on real images as any trained checkpoint's are (PyTorch's defaults, mean 0
 * and variance 1, let activations grow layer by layer in eval mode).
 */
function smallEncoder(seed: number): Encoder {
  const layout: ResNetLayout = {
    arch: "resnet18",
    block: "basic",
    layers: [2, 2, 2, 2],
    width: 8,
    inChannels: 1,
    cifarStem: true,
    featureDim: 64,
    head: { kind: "none" },
  };
  manualSeed(seed);
  const model = buildResNet(layout);
  const images = openFashionMnist({ split: "train" });
  noGrad(() => {
    for (let pass = 0; pass < 30; pass += 1) {
      scope(() => {
        const batch = images.batch(arange(pass * 200, pass * 200 + 200)) as Tensor;
        model.forwardFeatures(evalTransform(batch, { stats: FASHION_MNIST_STATS }));
      });
    }
  });
  images.dispose();
  model.eval();
  model.requiresGrad_(false);
  return new Encoder(model, {
    path: "<memory>",
    source: "torchvision",
    part: "query",
    layout,
    epoch: null,
    trainedOn: { dataset: "fashion-mnist", data: null, imageSize: null },
  });
}

function snapshot(encoder: Encoder): Map<string, Tensor> {
  return scope(() => new Map([...encoder.model.stateDict()].map(([k, t]) => [k, keep(t.clone())])));
}

test("linear evaluation trains only fc, leaves every backbone tensor and BN statistic unchanged, beats chance", async () => {
  const baseline = liveTensors();
  const encoder = smallEncoder(0);
  const fullTrain = openFashionMnist({ split: "train" });
  const fullTest = openFashionMnist({ split: "test" });
  const train = fullTrain.subset(2000);
  const val = fullTest.subset(1000);
  const before = snapshot(encoder);
  try {
    const epochs: number[] = [];
    const result = await linearEvaluation({
      encoder,
      train,
      val,
      // lr 30 suits MoCo's features; these random ones (all positive, mean ≈ 0.7) want a small lr.
      config: { ...LINCLS_DEFAULTS, epochs: 10, schedule: [8], lr: 0.1, precomputeFeatures: true },
      outDir: null,
      onEpoch: (record) => epochs.push(record.valTop1),
    });
    assert.equal(epochs.length, 10);
    assert.ok(result.top1 > 40, `top-1 ${result.top1}% should be far above chance (10%)`);
    assert.ok(result.top5 >= result.top1);
    assert.equal(result.backboneTensorsChanged.length, 0);
    assert.equal(result.backboneTensorsChecked, before.size);
    scope(() => {
      for (const [key, tensor] of encoder.model.stateDict()) assert.ok(tensor.equal(before.get(key) as Tensor), key);
    });

    // With train augmentation (the protocol's default path), one epoch: still only fc moves.
    const augmented = await linearEvaluation({
      encoder,
      train,
      val,
      config: { ...LINCLS_DEFAULTS, epochs: 2, lr: 0.1, batchSize: 64 },
      outDir: null,
    });
    assert.equal(augmented.backboneTensorsChanged.length, 0);
    assert.ok(augmented.top1 > 20, `augmented top-1 ${augmented.top1}%`);
  } finally {
    for (const t of before.values()) t.dispose();
    encoder.dispose();
    for (const d of [val, train, fullTest, fullTrain]) d.dispose();
  }
  assert.equal(liveTensors(), baseline, "no tensor outlives the run");
});

test("linear evaluation makes its missing output folder, checkpoints each epoch there, and stops between epochs", async () => {
  const encoder = smallEncoder(1);
  const fullTrain = openFashionMnist({ split: "train" });
  const fullTest = openFashionMnist({ split: "test" });
  const train = fullTrain.subset(500);
  const val = fullTest.subset(200);
  const root = mkdtempSync(join(tmpdir(), "moco-lincls-"));
  const outDir = join(root, "not", "there", "yet");
  const controller = new AbortController();
  try {
    const result = await linearEvaluation({
      encoder,
      train,
      val,
      config: { ...LINCLS_DEFAULTS, epochs: 3, lr: 0.1, batchSize: 100, precomputeFeatures: true },
      outDir,
      // Ctrl-C during epoch 1: it finishes, is saved, and epoch 2 never starts.
      onEpoch: () => controller.abort(),
      signal: controller.signal,
    });
    assert.equal(result.interrupted, true);
    assert.equal(result.epochs, 1);
    assert.ok(existsSync(join(outDir, "model_best.pth.tar")));
    const checkpoint = load(join(outDir, "checkpoint.pth.tar")) as Record<string, unknown>;
    assert.equal(checkpoint["epoch"], 1);
    const raw = checkpoint["state_dict"] as Map<string, Tensor> | Record<string, Tensor>;
    const stateDict = new Map(raw instanceof Map ? raw : Object.entries(raw));
    assert.deepEqual(stateDict.get("module.fc.weight")?.shape, [10, 64]);
    for (const tensor of stateDict.values()) tensor.dispose();
    const rawState = (checkpoint["optimizer"] as { state: unknown }).state;
    const entries = rawState instanceof Map ? [...rawState.values()] : Object.values(rawState as object);
    for (const entry of entries as { momentum_buffer: Tensor | null }[]) entry.momentum_buffer?.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
    encoder.dispose();
    for (const d of [val, train, fullTest, fullTrain]) d.dispose();
  }
});

test("embedDataset streams: memory bounded by one batch in flight, embeddings equal embed() on the same images", async () => {
  const encoder = smallEncoder(4);
  const dataset = openFashionMnist({ split: "test" });
  const part = dataset.subset(1000);
  const liveDuringBatches: number[] = [];
  let rows = 0;
  try {
    const baseline = liveTensors();
    await embedDataset(encoder, part, {
      batchSize: 100,
      onBatch: (embeddings, start) => {
        liveDuringBatches.push(liveTensors() - baseline);
        assert.equal(start, rows);
        rows += embeddings.shape[0] ?? 0;
        if (start === 300) {
          scope(() => {
            const direct = embed(encoder, part.batch(arange(300, 400)) as Tensor);
            assert.ok(direct.sub(embeddings).abs().max().item() < 1e-6);
          });
        }
      },
    });
    assert.equal(rows, 1000);
    // This batch's embeddings, and the next batch's images and indices being read: never more.
    assert.ok(Math.max(...liveDuringBatches) <= 3, `live tensors per batch: ${liveDuringBatches.join(", ")}`);
    assert.equal(liveTensors(), baseline);
  } finally {
    encoder.dispose();
    part.dispose();
    dataset.dispose();
  }
});

test("top-1/top-5 hits equal a direct count", () => {
  manualSeed(2);
  scope(() => {
    const logits = randn([300, 10]);
    const labels = randint(0, 10, [300]);
    const ours = topkCorrect(logits, labels);
    const rows = logits.toArray();
    const truth = labels.toArray();
    let top1 = 0;
    let top5 = 0;
    for (let i = 0; i < 300; i += 1) {
      const row = rows.slice(i * 10, i * 10 + 10);
      const target = row[truth[i] as number] as number;
      const rank = row.filter((v) => v > target).length;
      if (rank === 0) top1 += 1;
      if (rank < 5) top5 += 1;
    }
    assert.deepEqual(ours, { top1, top5 });
  });
});

test("per-class accuracy and confusion matrix equal a direct count", () => {
  const truth = [0, 0, 1, 1, 1, 2, 2, 2, 2];
  const predicted = [0, 1, 1, 1, 2, 2, 2, 0, 2];
  const report = scope(() =>
    classificationReport(
      fromTypedArray(BigInt64Array.from(predicted, BigInt), [9], "int64"),
      fromTypedArray(BigInt64Array.from(truth, BigInt), [9], "int64"),
      ["a", "b", "c", "d"],
    ),
  );
  assert.deepEqual(report.confusion, [
    [1, 1, 0, 0],
    [0, 2, 1, 0],
    [1, 0, 3, 0],
    [0, 0, 0, 0],
  ]);
  assert.deepEqual(
    report.perClass.map((c) => c.accuracy),
    [0.5, 2 / 3, 0.75, null],
  );
  assert.equal(report.correct, 6);
  assert.equal(report.top1, 6 / 9);
});

test("kNN evaluation of an encoder: top-1 equals the report's, confusion rows sum to the class counts", async () => {
  const encoder = smallEncoder(1);
  const bank = openFashionMnist({ split: "train" });
  const test_ = openFashionMnist({ split: "test" });
  const bankPart = bank.subset(1000);
  const testPart = test_.subset(300);
  try {
    const result = await evaluateEncoderKnn(encoder, { bank: bankPart, test: testPart, k: 20, t: 0.1 });
    assert.ok(result.top1 > 0.3, `kNN top-1 ${result.top1}`);
    assert.equal(result.top1, result.report.top1);
    const counts = new Array<number>(10).fill(0);
    for (const label of (testPart.labels as Tensor).toArray()) counts[label] = (counts[label] ?? 0) + 1;
    assert.deepEqual(
      result.report.confusion.map((row) => row.reduce((a, b) => a + b, 0)),
      counts,
    );
  } finally {
    encoder.dispose();
    for (const d of [testPart, bankPart, test_, bank]) d.dispose();
  }
});

test("nearest neighbours over a chunked index equal a brute-force ranking", () => {
  manualSeed(9);
  scope(() => {
    const index = F.normalize(randn([1000, 16]), { dim: 1 });
    const queries = F.normalize(randn([7, 16]), { dim: 1 });
    const found = nearestNeighbours(queries, index, 5, 128);
    const sims = queries.mm(index.t()).toArray();
    const indices = found.indices.toArray();
    const values = found.similarities.toArray();
    for (let q = 0; q < 7; q += 1) {
      const row = sims.slice(q * 1000, q * 1000 + 1000);
      const expected = row
        .map((v, i) => [v, i] as const)
        .sort((a, b) => b[0] - a[0])
        .slice(0, 5);
      assert.deepEqual(
        indices.slice(q * 5, q * 5 + 5),
        expected.map(([, i]) => i),
      );
      for (let j = 0; j < 5; j += 1)
        assert.ok(Math.abs((values[q * 5 + j] as number) - (expected[j]?.[0] as number)) < 1e-6);
    }
    assert.throws(() => nearestNeighbours(queries, index, 0), /k must be a positive integer/);
    assert.throws(() => nearestNeighbours(randn([2, 3]), index, 1), /must be \[Q, D\] and \[N, D\]/);
  });
});
