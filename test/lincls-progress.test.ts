// Linear evaluation shows its progress (issue #16, 5): a progress line within each epoch with an
// ETA, a warning with a hint when the loss diverges, accuracies in percent.
import assert from "node:assert/strict";
import { test } from "node:test";

import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { Encoder, buildResNet } from "../src/encoder/encoder.js";
import type { ResNetLayout } from "../src/encoder/layout.js";
import { LINCLS_DEFAULTS, divergenceWarning, linearEvaluation, type EpochRecord } from "../src/eval/lincls.js";
import { formatProgress, type ProgressState } from "../src/loop/index.js";
import { manualSeed } from "../src/torch/index.js";

function tinyEncoder(): Encoder {
  const layout: ResNetLayout = {
    arch: "resnet18",
    block: "basic",
    layers: [2, 2, 2, 2],
    width: 4,
    inChannels: 1,
    cifarStem: true,
    featureDim: 32,
    head: { kind: "none" },
  };
  manualSeed(0);
  const model = buildResNet(layout);
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

test("lincls reports progress within each epoch, with an ETA; accuracies are percentages", async () => {
  const encoder = tinyEncoder();
  const fullTrain = openFashionMnist({ split: "train" });
  const fullTest = openFashionMnist({ split: "test" });
  const train = fullTrain.subset(256);
  const val = fullTest.subset(128);
  const updates: ProgressState[] = [];
  const records: EpochRecord[] = [];
  try {
    const result = await linearEvaluation({
      encoder,
      train,
      val,
      config: { ...LINCLS_DEFAULTS, epochs: 2, batchSize: 64, lr: 0.1, precomputeFeatures: true },
      outDir: null,
      progress: { update: (state) => updates.push(state), log() {}, done() {} },
      onEpoch: (record) => records.push(record),
    });
    assert.equal(updates.length, 8, "one update per step: 4 steps × 2 epochs");
    assert.deepEqual(
      updates.map((u) => u.stepInEpoch),
      [1, 2, 3, 4, 1, 2, 3, 4],
    );
    assert.ok(updates.every((u) => Number.isFinite(u.etaSeconds) && u.etaSeconds >= 0));
    assert.equal(updates.at(-1)?.etaSeconds, 0, "nothing left after the last step");
    assert.match(
      formatProgress(updates[0] as ProgressState),
      /^epoch 1\/2 step 1\/4 loss [\d.]+ train@1 [\d.]+% .* ETA /,
    );
    // Percentages, as pretraining's: a fraction would be ≤ 1 for every value.
    const top1s = records.flatMap((r) => [r.trainTop1, r.valTop1, r.valTop5, r.bestTop1]);
    assert.ok(top1s.every((v) => v >= 0 && v <= 100));
    assert.ok(result.top5 > 1, `top-5 ${result.top5} is a percentage`);
    assert.equal(result.top1, records.at(-1)?.valTop1);
  } finally {
    encoder.dispose();
    for (const d of [val, train, fullTest, fullTrain]) d.dispose();
  }
});

test("a diverging loss gets a warning that says to lower --lr", () => {
  // The loss of the run at lr 30: 31 → 240 → 720.
  assert.equal(divergenceWarning(31, 240, 30), null);
  const warning = divergenceWarning(31, 720, 30);
  assert.match(warning ?? "", /diverging; lower --lr \(now 30\.0\)/);
  assert.match(warning ?? "", /23× its first epoch's \(31\.0 → 720\)/);
});
