// The MoCo mechanisms, each against its definition (and the loss against PyTorch in Python).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

import {
  MoCo,
  MoCoSettingsError,
  contrastiveLogits,
  checkBatchAgainstSettings,
  dequeueAndEnqueue,
  momentumUpdate,
  singleProcessShuffle,
  type MoCoSettings,
} from "../src/moco/index.js";
import { resnet18, splitBatchNorm } from "../src/nn/index.js";
import {
  F,
  arange,
  liveTensors,
  load,
  manualSeed,
  noGrad,
  ones,
  randn,
  save,
  scope,
  zeros,
  type Tensor,
} from "../src/torch/index.js";
import { PYTHON } from "./helpers/python.js";

const SETTINGS: MoCoSettings = { dim: 8, K: 32, m: 0.9, T: 0.2, mlp: true, symmetric: false };

function tinyMoCo(settings: Partial<MoCoSettings> = {}): MoCo {
  return new MoCo(
    (outputs) =>
      resnet18({ numClasses: outputs, width: 4, cifarStem: true, inChannels: 1, normLayer: splitBatchNorm(2) }),
    { ...SETTINGS, ...settings },
  );
}

function columns(queue: Tensor, start: number, n: number): number[][] {
  return queue.narrow(1, start, n).t().tolist() as number[][];
}

test("enqueue writes the keys as columns at the pointer and wraps around", () => {
  const queue = zeros([3, 8]);
  const ptr = zeros([1], { dtype: "int64" });
  const batches = [0, 1, 2, 3, 4].map((b) =>
    arange(b * 12, b * 12 + 12)
      .float()
      .view(4, 3),
  );
  dequeueAndEnqueue(queue, ptr, batches[0] as Tensor);
  assert.equal(ptr.item(), 4);
  assert.deepEqual(columns(queue, 0, 4), (batches[0] as Tensor).tolist());
  dequeueAndEnqueue(queue, ptr, batches[1] as Tensor);
  assert.equal(ptr.item(), 0, "the pointer wraps to the oldest column");
  dequeueAndEnqueue(queue, ptr, batches[2] as Tensor);
  assert.deepEqual(columns(queue, 0, 4), (batches[2] as Tensor).tolist(), "the oldest keys were replaced first");
  assert.deepEqual(columns(queue, 4, 4), (batches[1] as Tensor).tolist(), "the newer keys are still there");
  assert.throws(() => dequeueAndEnqueue(queue, ptr, randn([3, 3])), /not a multiple of the 3 keys/);
});

test("momentum update is exactly m·k + (1−m)·q on every parameter, buffers untouched", () => {
  manualSeed(1);
  const q = resnet18({ numClasses: 4, width: 4, cifarStem: true, inChannels: 1 });
  const k = resnet18({ numClasses: 4, width: 4, cifarStem: true, inChannels: 1 });
  noGrad(() => {
    for (const b of k.buffers()) if (b.dtype === "float32") b.uniform_(0.5, 1.5);
  });
  const m = 0.7;
  const expected = scope(() => k.parameters().map((pk, i) => pk.mul(m).add(q.parameters()[i] as Tensor, 1 - m)));
  const buffersBefore = k.buffers().map((b) => b.clone());
  momentumUpdate(k, q, m);
  k.parameters().forEach((pk, i) => assert.ok(pk.allclose(expected[i] as Tensor, 0, 0), `parameter ${i}`));
  k.buffers().forEach((b, i) => assert.ok(b.equal(buffersBefore[i] as Tensor), `buffer ${i} untouched`));
});

test("the key encoder starts as a copy and no gradient reaches it", () => {
  manualSeed(2);
  const model = tinyMoCo();
  const qParams = model.encoderQ.parameters();
  model.encoderK.parameters().forEach((p, i) => {
    assert.ok(p.equal(qParams[i] as Tensor));
    assert.equal(p.requiresGrad, false);
  });
  scope(() => {
    const [out] = model.forward(randn([4, 1, 16, 16]), randn([4, 1, 16, 16]));
    F.crossEntropy(out!.logits, out!.labels).backward();
  });
  assert.ok(model.encoderK.parameters().every((p) => p.grad === null));
  assert.ok(model.encoderQ.parameters().some((p) => p.grad !== null));
});

test("a batch's keys are enqueued after its logits: never among its own negatives", () => {
  manualSeed(3);
  const model = tinyMoCo({ m: 0 });
  model.eval(); // BN in eval mode: the key encoder (= query encoder with m = 0) gives k = q
  const queueBefore = model.queue.clone();
  const images = randn([4, 1, 16, 16]);
  const logits = scope(() => model.forward(images, images)[0]!.logits);
  // Every positive logit is q·q / T = 1/T; had the batch's own keys been in the queue already, some
  // negative logit would reach 1/T too.
  const positives = logits.select(1, 0);
  assert.ok(
    positives
      .sub(1 / SETTINGS.T)
      .abs()
      .max()
      .item() < 1e-4,
    String(positives),
  );
  assert.ok(logits.narrow(1, 1, SETTINGS.K).max().item() < 1 / SETTINGS.T - 0.1);
  assert.ok(!queueBefore.narrow(1, 0, 4).allclose(model.queue.narrow(1, 0, 4)), "the keys were enqueued after");
  // The next step does see them: query i meets its own earlier key among the negatives.
  const next = scope(() => model.forward(images, images)[0]!.logits).tolist() as number[][];
  next.forEach((row, i) => assert.ok(Math.abs((row[1 + i] ?? 0) - 1 / SETTINGS.T) < 1e-4, `row ${i}`));
});

test("InfoNCE: logits are [q·k+, q·queue]/T and the loss equals PyTorch's cross_entropy", () => {
  manualSeed(4);
  const [N, C, K, T] = [6, 5, 12, 0.07];
  const [q, k, queue] = scope(() => [
    F.normalize(randn([N, C]), { dim: 1 }),
    F.normalize(randn([N, C]), { dim: 1 }),
    F.normalize(randn([C, K]), { dim: 0 }),
  ]) as [Tensor, Tensor, Tensor];
  const { logits, labels } = contrastiveLogits(q, k, queue, T);
  assert.deepEqual(logits.shape, [N, 1 + K]);
  assert.deepEqual(labels.toArray(), new Array(N).fill(0));
  const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * (b[i] ?? 0), 0);
  const qs = q.tolist() as number[][];
  const ks = k.tolist() as number[][];
  const negatives = queue.t().tolist() as number[][];
  const direct = qs.map((qi, i) => [dot(qi, ks[i] ?? []), ...negatives.map((c) => dot(qi, c))].map((v) => v / T));
  (logits.tolist() as number[][]).forEach((row, i) =>
    row.forEach((v, j) => assert.ok(Math.abs(v - (direct[i]?.[j] ?? NaN)) < 1e-4, `logit ${i},${j}: ${v}`)),
  );
  const loss = F.crossEntropy(logits, labels).item();
  const directLoss =
    direct.reduce((s, row) => s - (row[0] ?? 0) + Math.log(row.reduce((a, v) => a + Math.exp(v), 0)), 0) / N;
  assert.ok(Math.abs(loss - directLoss) < 1e-4, `ours ${loss} direct ${directLoss}`);
  const dir = mkdtempSync(join(tmpdir(), "moco-infonce-"));
  try {
    save({ logits, labels }, join(dir, "logits.pt"));
    const py = spawnSync(
      PYTHON,
      [
        "-c",
        "import sys, torch, torch.nn.functional as F; d = torch.load(sys.argv[1]); print(F.cross_entropy(d['logits'], d['labels']).item())",
        join(dir, "logits.pt"),
      ],
      { encoding: "utf8" },
    );
    assert.equal(py.status, 0, py.stderr);
    assert.ok(Math.abs(Number(py.stdout.trim()) - loss) < 1e-5, `python ${py.stdout} ours ${loss}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the loss is log(K+1) when q, k and every queue entry are the same vector", () => {
  const K = 31;
  const v = F.normalize(ones([1, 4]), { dim: 1 });
  const { logits, labels } = contrastiveLogits(v.expand(4, 4), v.expand(4, 4), v.t().expand(4, K), 0.1);
  const loss = F.crossEntropy(logits, labels).item();
  assert.ok(Math.abs(loss - Math.log(K + 1)) < 1e-5, `${loss} vs ${Math.log(K + 1)}`);
});

test("shuffle then unshuffle is the identity on the keys", () => {
  manualSeed(5);
  const keys = randn([16, 3]);
  const { shuffled, unshuffle } = singleProcessShuffle.shuffle(keys);
  assert.ok(!shuffled.equal(keys), "the batch was permuted");
  assert.ok(unshuffle(shuffled).equal(keys));
});

test("queue and pointer are restored from a checkpoint", () => {
  manualSeed(6);
  const model = tinyMoCo();
  scope(() => {
    model.forward(randn([4, 1, 16, 16]), randn([4, 1, 16, 16]));
    model.forward(randn([4, 1, 16, 16]), randn([4, 1, 16, 16]));
  });
  const dir = mkdtempSync(join(tmpdir(), "moco-ckpt-"));
  try {
    save({ state_dict: Object.fromEntries(model.stateDict()) }, join(dir, "c.pt"));
    manualSeed(7);
    const restored = tinyMoCo();
    assert.ok(!restored.queue.equal(model.queue));
    const loaded = load(join(dir, "c.pt")) as unknown as { state_dict: Record<string, Tensor> };
    restored.loadStateDict(loaded.state_dict, { strict: true });
    assert.ok(restored.queue.equal(model.queue));
    assert.equal(restored.queuePtr.item(), 8);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("impossible settings are clear errors", () => {
  assert.throws(
    () => checkBatchAgainstSettings({ ...SETTINGS, K: 100 }, 64),
    /K \(100\) must be a multiple of the batch size \(64\)/,
  );
  assert.throws(
    () => checkBatchAgainstSettings({ ...SETTINGS, K: 128, symmetric: true }, 128),
    /2 × batch size with the symmetric loss/,
  );
  assert.throws(() => checkBatchAgainstSettings({ ...SETTINGS, m: 1 }, 8), /m .* must be in \[0, 1\), got 1/);
  assert.throws(() => checkBatchAgainstSettings({ ...SETTINGS, m: -0.1 }, 8), MoCoSettingsError);
  assert.throws(() => checkBatchAgainstSettings({ ...SETTINGS, T: 0 }, 8), /T \(temperature\) must be > 0/);
  assert.throws(() => checkBatchAgainstSettings({ ...SETTINGS, dim: 0 }, 8), /dim must be an integer >= 1/);
  assert.throws(
    () => checkBatchAgainstSettings({ ...SETTINGS, K: 48 }, 12, 8),
    /batch size \(12\) must be divisible by the BN splits \(8\)/,
  );
  assert.throws(() => tinyMoCo({ T: -1 }), MoCoSettingsError);
});

test("a training step frees everything it creates", () => {
  manualSeed(8);
  const model = tinyMoCo({ symmetric: true });
  const before = liveTensors();
  for (let i = 0; i < 3; i++) {
    scope(() => {
      const outs = model.forward(randn([4, 1, 16, 16]), randn([4, 1, 16, 16]));
      assert.equal(outs.length, 2);
      outs
        .map((o) => F.crossEntropy(o.logits, o.labels))
        .reduce((a, b) => a.add(b))
        .backward();
      model.zeroGrad();
    });
  }
  assert.equal(liveTensors(), before);
  assert.equal(model.queuePtr.item(), 24, "symmetric: 2 × batch keys per step");
});
