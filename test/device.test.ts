// A device carried through: every tensor that MoCo's step, the kNN classifier and the linear
// classifier's evaluation create is made on the model's device. This machine has no GPU, so the
// check is injected: the native factories are wrapped and must each be told a device (an implicit
// one is the CPU, which would break a CUDA model), and libtorch's shape-only "meta" device runs
// the parts that have meta kernels here.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { knnClassify, knnScores } from "../src/eval/knn.js";
import { MoCo, contrastiveLogits } from "../src/moco/index.js";
import { Linear, onDevice, resnet } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import { F, manualSeed, randint, randn, scope, type Tensor } from "../src/torch/index.js";
import { native } from "../src/torch/native.js";
import { topkCorrect } from "../src/loop/index.js";

const FACTORIES = [
  "empty",
  "zeros",
  "ones",
  "full",
  "arange",
  "linspace",
  "rand",
  "randn",
  "randint",
  "randperm",
  "eye",
  "fromBytes",
] as const;

/** Every factory call while recording: its name and the device it was given (null: none, i.e. the CPU). */
const calls: { name: string; device: string | null }[] = [];
let recording = false;
const originals = new Map<string, unknown>();

before(() => {
  const table = native as unknown as Record<string, (...args: unknown[]) => unknown>;
  for (const name of FACTORIES) {
    const original = table[name] as (...args: unknown[]) => unknown;
    originals.set(name, original);
    table[name] = (...args: unknown[]) => {
      if (recording) {
        // Every factory but fromBytes takes the device last; fromBytes has none (always the CPU).
        const device = name === "fromBytes" ? null : (args[args.length - 1] as string | null);
        calls.push({ name, device });
      }
      return original(...args);
    };
  }
});

after(() => {
  const table = native as unknown as Record<string, unknown>;
  for (const [name, original] of originals) table[name] = original;
});

function record<T>(run: () => T): { result: T; calls: { name: string; device: string | null }[] } {
  calls.length = 0;
  recording = true;
  try {
    return { result: run(), calls: [...calls] };
  } finally {
    recording = false;
  }
}

function smallMoCo(symmetric: boolean): MoCo {
  return new MoCo((outputs) => resnet("resnet18", { numClasses: outputs, width: 4, cifarStem: true, inChannels: 1 }), {
    dim: 16,
    K: 32,
    m: 0.99,
    T: 0.1,
    mlp: true,
    symmetric,
  });
}

test("a MoCo training step names the model's device for every tensor it creates (labels, shuffle, loss)", () => {
  manualSeed(0);
  for (const symmetric of [false, true]) {
    const model = smallMoCo(symmetric);
    const optimizer = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    const device = model.device;
    const images = randn([8, 1, 16, 16]);
    const { calls: made } = record(() =>
      scope(() => {
        const outputs = model.forward(onDevice(images, device), onDevice(images.flip([3]), device));
        const loss = outputs.map((o) => F.crossEntropy(o.logits, o.labels)).reduce((a, b) => a.add(b));
        const hits = topkCorrect((outputs[0] as { logits: Tensor }).logits, (outputs[0] as { labels: Tensor }).labels);
        optimizer.zeroGrad();
        loss.backward();
        optimizer.step();
        return hits;
      }),
    );
    // The step does create tensors (the labels, the shuffle's permutation), and names the device for each.
    assert.ok(made.some((c) => c.name === "zeros") && made.some((c) => c.name === "randperm"), JSON.stringify(made));
    // The permutation is drawn on the CPU (the generator a checkpoint saves), as the official code's
    // torch.randperm(n).cuda(), and moved; everything else is made on the model's device.
    assert.ok(
      made.filter((c) => c.name === "randperm").every((c) => c.device === null),
      JSON.stringify(made),
    );
    assert.deepEqual(
      made.filter((c) => c.device !== device && c.name !== "randperm"),
      [],
    );
    images.dispose();
    optimizer.dispose();
    model.dispose();
  }
});

test("kNN classification and the linear classifier's top-k create their tensors on the bank's device", () => {
  manualSeed(1);
  const bank = F.normalize(randn([40, 8]), { dim: 1 });
  const labels = randint(0, 4, [40]);
  const { result, calls: made } = record(() =>
    knnClassify(bank, labels, bank.narrow(0, 0, 10), labels.narrow(0, 0, 10), { k: 5, t: 0.1, numClasses: 4 }),
  );
  assert.ok(made.length > 0);
  assert.deepEqual(
    made.filter((c) => c.device !== "cpu"),
    [],
  );
  assert.equal(result.predictions.device, "cpu");
  result.predictions.dispose();
  const fc = new Linear(8, 4);
  const { calls: topk } = record(() => scope(() => topkCorrect(fc.forward(bank), labels)));
  assert.deepEqual(
    topk.filter((c) => c.device !== "cpu"),
    [],
  );
  for (const t of [bank, labels]) t.dispose();
  fc.dispose();
});

test('on libtorch\'s "meta" device: the module moves, and logits, labels and kNN votes follow it', () => {
  manualSeed(2);
  const model = smallMoCo(false);
  assert.equal(model.device, "cpu");
  model.toDevice("meta");
  assert.equal(model.device, "meta");
  assert.equal(model.queue.device, "meta");
  assert.equal(model.queuePtr.device, "meta");
  assert.ok(model.parameters().every((p) => p.device === "meta"));
  // Moved parameters stay leaves with their requiresGrad: the query encoder's train, the key encoder's do not.
  assert.ok(model.encoderQ.parameters().every((p) => p.requiresGrad));
  assert.ok(model.encoderK.parameters().every((p) => !p.requiresGrad));
  const q = F.normalize(randn([4, 16], { device: "meta" }), { dim: 1 });
  const { logits, labels } = contrastiveLogits(q, q, model.queue, 0.1);
  assert.equal(logits.device, "meta");
  assert.deepEqual(logits.shape, [4, 33]);
  assert.equal(labels.device, "meta");
  assert.equal(labels.dtype, "int64");
  const votes = knnScores(q, q, labels, { k: 2, t: 0.1, numClasses: 3 });
  assert.equal(votes.device, "meta");
  assert.deepEqual(votes.shape, [4, 3]);
  for (const t of [q, logits, labels, votes]) t.dispose();
  model.dispose();
});
