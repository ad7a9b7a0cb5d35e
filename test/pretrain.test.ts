// Pretraining end to end on real Fashion-MNIST images: learning, exact resume, failure handling.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { readCheckpoint, disposeCheckpoint } from "../src/train/checkpoint.js";
import { resolveConfig, type PretrainConfig } from "../src/train/config.js";
import { MetricsLog, type StepRecord } from "../src/train/metrics.js";
import { NonFiniteLossError, pretrain } from "../src/train/pretrain.js";
import type { ProgressReporter, ProgressState } from "../src/train/progress.js";
import { liveTensors, load } from "../src/torch/index.js";
import { PYTHON } from "./helpers/python.js";

const root = mkdtempSync(join(tmpdir(), "moco-pretrain-"));
after(() => rmSync(root, { recursive: true, force: true }));

function smallConfig(name: string, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  return resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: {
        subset: 512,
        width: 4,
        batchSize: 64,
        bnSplits: 4,
        mocoK: 256,
        mocoDim: 32,
        epochs: 2,
        knnEvery: 0,
        knnBank: 512,
        knnTest: 256,
        threads: 2,
        out: join(root, name),
        ...overrides,
      },
    },
  ]);
}

function stepLosses(config: PretrainConfig): number[] {
  return new MetricsLog(join(config.out, "metrics.jsonl"))
    .read()
    .filter((r): r is StepRecord => r.type === "step")
    .map((r) => r.loss);
}

/** Aborts the run once it reaches `step` steps. */
function abortAt(step: number, controller: AbortController): ProgressReporter {
  let done = 0;
  return {
    update(_state: ProgressState) {
      done++;
      if (done === step) controller.abort();
    },
    log() {},
    done() {},
  };
}

test("a short run learns: the loss falls once the queue has filled", async () => {
  const config = smallConfig("learn", { subset: 1024, epochs: 4, batchSize: 32, mocoK: 256, lr: 0.03, knnEvery: 0 });
  const before = liveTensors();
  const result = await pretrain(config);
  assert.equal(liveTensors(), before, "the run freed every tensor it made");
  const losses = stepLosses(config);
  assert.equal(losses.length, 4 * 32);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  // The queue (256 keys) is full after 8 steps of 32: the loss rises while real keys replace the
  // random start, peaks, then falls as the encoder learns.
  const windows = Array.from({ length: 7 }, (_, i) => mean(losses.slice(8 + 16 * i, 24 + 16 * i)));
  const peak = Math.max(...windows);
  const end = mean(losses.slice(-16));
  assert.ok(
    end < peak - 0.2,
    `loss fell from ${peak.toFixed(3)} to ${end.toFixed(3)} (windows ${windows.map((w) => w.toFixed(2))})`,
  );
  assert.ok(result.knn.trained !== null && result.knn.random !== null && result.knn.pixels !== null);
  const summary = JSON.parse(readFileSync(join(config.out, "summary.json"), "utf8")) as { steps: number };
  assert.equal(summary.steps, 4 * 32);
});

test("an interrupted and resumed run gives the same losses as an uninterrupted one", async () => {
  const straight = smallConfig("straight");
  await pretrain(straight);
  const reference = stepLosses(straight);
  assert.equal(reference.length, 16);

  const interrupted = smallConfig("interrupted");
  const controller = new AbortController();
  const first = await pretrain(interrupted, { signal: controller.signal, progress: abortAt(11, controller) });
  assert.equal(first.interrupted, true);
  assert.equal(first.steps, 11);
  const checkpoint = readCheckpoint(first.checkpoint);
  assert.equal(checkpoint.epoch, 1, "one epoch completed");
  assert.equal(checkpoint.moco_ts.epochStep, 3, "three steps into the second");
  disposeCheckpoint(checkpoint);

  const resumed = await pretrain(interrupted, { resume: first.checkpoint });
  assert.equal(resumed.steps, 16);
  assert.deepEqual(stepLosses(interrupted), reference);
  // The log says where the run was continued from, after the steps the checkpoint had seen.
  const records = new MetricsLog(join(interrupted.out, "metrics.jsonl")).read();
  const at = records.findIndex((r) => r.type === "resume");
  assert.deepEqual(
    { ...records[at], time: undefined },
    { type: "resume", epoch: 1, step: 11, time: undefined },
    "one resume record",
  );
  assert.equal(records.filter((r) => r.type === "resume").length, 1);
  const before = records.slice(0, at).filter((r) => r.type === "step");
  assert.deepEqual(
    before.map((r) => r.step),
    Array.from({ length: 11 }, (_, i) => i + 1),
    "steps 1–11 before it",
  );
  assert.equal(records[at + 1]?.step, 12, "step 12 after it");
});

test("the checkpoint has the official layout and loads in Python's torch.load", async () => {
  const config = smallConfig("layout", { epochs: 1 });
  const result = await pretrain(config);
  const raw = load(result.checkpoint) as unknown as Record<string, unknown>;
  assert.equal(raw["epoch"], 1);
  assert.equal(raw["arch"], "resnet18");
  const keys = Object.keys(raw["state_dict"] as Record<string, unknown>);
  assert.ok(keys.includes("module.queue") && keys.includes("module.queue_ptr"));
  assert.ok(keys.includes("module.encoder_q.conv1.weight") && keys.includes("module.encoder_k.fc.2.bias"));
  const py = spawnSync(
    PYTHON,
    [
      "-c",
      [
        "import sys, torch",
        "ckpt = torch.load(sys.argv[1])",
        "print(ckpt['epoch'], ckpt['arch'], len(ckpt['state_dict']), ckpt['optimizer']['param_groups'][0]['lr'])",
      ].join("\n"),
      result.checkpoint,
    ],
    { encoding: "utf8" },
  );
  assert.equal(py.status, 0, py.stderr);
  const [epoch, arch, count] = py.stdout.trim().split(" ");
  assert.equal(epoch, "1");
  assert.equal(arch, "resnet18");
  assert.equal(Number(count), keys.length);
});

test("a NaN loss stops the run with a clear message and leaves the last checkpoint intact", async () => {
  const config = smallConfig("nan", { epochs: 1 });
  const first = await pretrain(config);
  const hash = () => createHash("sha256").update(readFileSync(first.checkpoint)).digest("hex");
  const before = hash();
  const exploding = { ...config, epochs: 2, lr: 1e30 };
  await assert.rejects(pretrain(exploding, { resume: first.checkpoint }), (error: unknown) => {
    assert.ok(error instanceof NonFiniteLossError);
    assert.match(
      error.message,
      /loss became (NaN|Infinity|-Infinity) at epoch 2, step \d+: stopping; the last good checkpoint .* is intact/,
    );
    return true;
  });
  assert.equal(hash(), before);
});

test("impossible settings are refused before anything runs", async () => {
  await assert.rejects(
    pretrain(smallConfig("bad-k", { mocoK: 100 })),
    /K \(100\) must be a multiple of the batch size \(64\)/,
  );
  await assert.rejects(
    pretrain(smallConfig("bad-splits", { bnSplits: 3 })),
    /batch size \(64\) must be divisible by the BN splits \(3\)/,
  );
  assert.throws(() => smallConfig("bad-m", { mocoM: 1 }), /mocoM/);
  assert.throws(() => smallConfig("bad-t", { mocoT: 0 }), /mocoT/);
  assert.throws(
    () => resolveConfig("fashion-mnist", [{ source: "cfg.yaml", values: { mocoKK: 5 } }]),
    /cfg.yaml: unknown option 'mocoKK'/,
  );
});

test("resuming from something that is not a pretraining checkpoint is an error", async () => {
  const config = smallConfig("not-ckpt", { epochs: 1 });
  await assert.rejects(pretrain(config, { resume: join(root, "missing.pth.tar") }), /no such checkpoint/);
  const first = await pretrain(config);
  await assert.rejects(
    pretrain({ ...config, arch: "resnet34" }, { resume: first.checkpoint }),
    /checkpoint of a resnet18/,
  );
  await assert.rejects(pretrain({ ...config, width: 8 }, { resume: first.checkpoint }), /size mismatch|shape/i);
});
