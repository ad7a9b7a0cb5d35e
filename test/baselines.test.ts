// The baselines of issue #13, measured by the project's own commands on the same splits: raw-pixel kNN
// (weighted and majority votes) against a brute-force reference computed from the Fashion-MNIST files
// in Python; the pixel linear probe (its standardisation against numpy's, above chance, --evaluate and
// --resume); the same network at random initialisation (seeded, and the very network — and kNN line —
// `moco pretrain` starts from); the flag errors, each naming the flag.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { runKnn } from "../src/cli/knn-command.js";
import { runLincls } from "../src/cli/lincls-command.js";
import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { randomSubset } from "../src/data/subset.js";
import { CONSTANT_FEATURE, featureStandardization, pixelFeatures, standardize } from "../src/encoder/pixels.js";
import { randomEncoder } from "../src/encoder/random.js";
import { datasetFeatures } from "../src/encoder/features.js";
import { inferResNetLayout } from "../src/encoder/layout.js";
import { PRESETS, resolveConfig } from "../src/train/config.js";
import { buildModel, queryEncoderLayout } from "../src/train/pretrain.js";
import { UsageError } from "../src/errors.js";
import { liveTensors, manualSeed, scope, type Tensor } from "../src/torch/index.js";
import { pythonScript } from "./helpers/python-script.js";

const FASHION = "/usr/share/datasets/fashion-mnist";
const reference = pythonScript("baselines_reference.py");
const root = mkdtempSync(join(tmpdir(), "moco-baselines-"));
after(() => rmSync(root, { recursive: true, force: true }));

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 300_000 });
}

interface KnnJson {
  top1: number;
  confusion: number[][];
  baseline: string | null;
  vote: string;
  t: number | null;
  seed?: number;
  encoder: string;
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;

/** Predictions that differ between two confusion matrices of the same queries (a lower bound, exact when 0). */
function confusionDistance(a: number[][], b: number[][]): number {
  let sum = 0;
  a.forEach((row, i) => row.forEach((v, j) => (sum += Math.abs(v - (b[i]?.[j] ?? 0)))));
  return sum / 2;
}

test("raw-pixel kNN (moco knn --baseline pixels) equals a brute-force reference: weighted k 200 t 0.1, majority k 3", () => {
  for (const [k, vote] of [
    ["200", "weighted"],
    ["3", "majority"],
  ] as const) {
    const out = join(root, `pixels-${vote}`);
    const run = moco([
      ...["knn", "--baseline", "pixels", "--subset", "1500", "--knn-k", k, "--vote", vote],
      ...["--threads", "1", "--out", out],
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /kNN \(raw pixels\) top-1 \d+\.\d+%/);
    const ours = readJson<KnnJson>(join(out, "knn.json"));
    assert.equal(ours.baseline, "pixels");
    assert.equal(ours.vote, vote);
    assert.equal(ours.t, vote === "weighted" ? 0.1 : null);
    const expected = JSON.parse(reference("knn", FASHION, join(out, "subset.json"), k, "0.1", vote)) as {
      confusion: number[][];
      top1: number;
      fragile: number;
    };
    // Float32 similarities may order two neighbours 1e-5 apart either way; nothing else may differ.
    const differ = confusionDistance(ours.confusion, expected.confusion);
    assert.ok(differ <= expected.fragile, `${vote}: ${differ} predictions differ, ${expected.fragile} fragile`);
    assert.ok(Math.abs(ours.top1 - expected.top1) <= expected.fragile / 100 + 1e-9, `${ours.top1} vs ${expected.top1}`);
    assert.ok(ours.top1 > 60, `${vote}: ${ours.top1}% — raw pixels classify Fashion-MNIST far above chance`);
  }
});

test("the pixel standardisation (mean and population std per feature) equals numpy's", async () => {
  const train = openFashionMnist({ split: "train" });
  const sampled = randomSubset(train, 1000, 7);
  const subsetJson = join(root, "stats-subset.json");
  writeFileSync(subsetJson, JSON.stringify(sampled.record));
  const before = liveTensors();
  const pixels = pixelFeatures({ stats: train.stats });
  const stats = await featureStandardization(sampled.dataset, 300, pixels);
  const expected = JSON.parse(reference("stats", FASHION, subsetJson)) as { mean: number[]; std: number[] };
  const mean = stats.mean.toArray();
  const std = stats.std.toArray();
  assert.equal(mean.length, 784);
  const worst = (ours: number[], theirs: number[]) =>
    Math.max(...ours.map((v, i) => Math.abs(v - (theirs[i] as number)) / Math.max(1, Math.abs(theirs[i] as number))));
  assert.ok(worst(mean, expected.mean) < 1e-6, `mean off by ${worst(mean, expected.mean)}`);
  // A pixel dark in every image has no spread (numpy says ~1e-14, rounding): its std is 1, so it is
  // centred, not scaled, as scikit-learn's StandardScaler does.
  const constant = (s: number) => s < CONSTANT_FEATURE;
  assert.ok(expected.std.some(constant), "the sample has pixels that never vary");
  const numpyStd = expected.std.map((s) => (constant(s) ? 1 : s));
  assert.ok(worst(std, numpyStd) < 1e-6, `std off by ${worst(std, numpyStd)}`);
  // Standardised features have mean 0 and std 1 (0 where a feature never varies).
  const all = await datasetFeatures(sampled.dataset, 1000, pixels, { normalize: false });
  const z = standardize(all, stats);
  const zMean = scope(() => z.mean(0).toArray());
  const zStd = scope(() => z.std(0, false).toArray());
  assert.ok(Math.max(...zMean.map(Math.abs)) < 1e-4);
  assert.ok(zStd.every((s, i) => (constant(expected.std[i] as number) ? s < 1e-6 : Math.abs(s - 1) < 1e-4)));
  for (const t of [stats.mean, stats.std, all, z]) t.dispose();
  assert.equal(liveTensors(), before, "nothing left alive");
  sampled.dataset.dispose();
  train.dispose();
});

test("pixel linear probe (moco lincls --baseline pixels): above chance, --evaluate reads it, --resume continues", () => {
  const out = join(root, "lincls-pixels");
  const common = ["--subset", "2000", "--lr", "0.01", "--precompute-features", "--threads", "1", "--out", out];
  const first = moco(["lincls", "--baseline", "pixels", "--epochs", "2", ...common]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /linear eval \(raw pixels\) after 2 epochs/);
  assert.match(first.stdout, /sanity check passed: 2 pixel standardisation tensors unchanged/);
  assert.match(first.stderr, /784 features into the new fc/);
  const summary = readJson<{ top1: number; baseline: string; encoder: string }>(join(out, "summary.json"));
  assert.equal(summary.baseline, "pixels");
  assert.ok(summary.top1 > 60, `${summary.top1}%: a linear model on 2000 images' pixels is far above 10%`);

  const evaluated = moco(["lincls", "--evaluate", "--resume", join(out, "checkpoint.pth.tar"), "--threads", "1"]);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const acc = /Acc@1 ([\d.]+)/.exec(evaluated.stdout);
  assert.ok(acc !== null, evaluated.stdout);
  assert.equal(Number(acc[1]).toFixed(2), summary.top1.toFixed(2), "the classifier evaluated is the one trained");

  const resumed = moco([
    ...["lincls", "--resume", join(out, "checkpoint.pth.tar"), "--epochs", "3", "--threads", "1", "--out", out],
  ]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /epoch 3\/3/);
  assert.doesNotMatch(resumed.stderr, /epoch 1\/3/);
  assert.match(resumed.stdout, /linear eval \(raw pixels\) after 3 epochs/);
});

test("random initialisation is the network moco pretrain starts from, seeded: same seed, same weights", () => {
  const config = resolveConfig("fashion-mnist", []);
  manualSeed(11);
  const model = buildModel(config, 1);
  const layout = queryEncoderLayout(PRESETS["fashion-mnist"], 1);
  const encoder = randomEncoder(layout, { seed: 11, from: "the fashion-mnist preset" });
  const again = randomEncoder(layout, { seed: 11, from: "the fashion-mnist preset" });
  const other = randomEncoder(layout, { seed: 12, from: "the fashion-mnist preset" });
  try {
    const query = model.encoderQ.stateDict();
    const ours = encoder.model.stateDict();
    assert.deepEqual([...ours.keys()].sort(), [...query.keys()].sort());
    assert.deepEqual(inferResNetLayout(ours, "random"), layout, "the preset's layout, head included");
    for (const [key, tensor] of query) assert.ok((ours.get(key) as Tensor).equal(tensor), key);
    for (const [key, tensor] of again.model.stateDict()) assert.ok((ours.get(key) as Tensor).equal(tensor), key);
    assert.ok(!(other.model.stateDict().get("conv1.weight") as Tensor).equal(ours.get("conv1.weight") as Tensor));
    assert.match(
      encoder.describe(),
      /at random initialisation \(seed 11, the architecture of the fashion-mnist preset\)/,
    );
  } finally {
    for (const m of [encoder, again, other, model]) m.dispose();
  }
});

test("moco knn --baseline random|pixels reproduce the kNN lines a pretraining run logs before its first step", () => {
  const run = join(root, "pretrain");
  const pretrain = moco([
    "pretrain",
    ...["--out", run, "--subset", "300", "--width", "4", "--batch-size", "32", "--bn-splits", "2"],
    ...["--moco-k", "64", "--moco-dim", "16", "--epochs", "1", "--knn-every", "0"],
    ...["--knn-bank", "none", "--seed", "5", "--precision", "fp32", "--channels-last", "off", "--no-report"],
    ...["--threads", "1"],
  ]);
  assert.equal(pretrain.status, 0, pretrain.stderr);
  const records = readFileSync(join(run, "metrics.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((line) => JSON.parse(line) as { type: string; step: number; features?: string; top1?: number })
    .filter((r) => r.type === "knn" && r.step === 0);
  const logged = (features: string) => records.find((r) => r.features === features)?.top1;
  const checkpoint = join(run, "checkpoint.pth.tar");
  const common = [
    "--pretrained",
    checkpoint,
    "--subset",
    "300",
    "--seed",
    "5",
    "--precision",
    "fp32",
    "--threads",
    "1",
  ];
  const knn = (baseline: string, out: string, extra: string[] = []) => {
    const result = moco(["knn", "--baseline", baseline, ...common, "--channels-last", "off", "--out", out, ...extra]);
    assert.equal(result.status, 0, result.stderr);
    return readJson<KnnJson>(join(out, "knn.json"));
  };
  const random = knn("random", join(root, "knn-random"));
  assert.equal(random.seed, 5);
  assert.match(random.encoder, /at random initialisation \(seed 5, the architecture of .*checkpoint\.pth\.tar\)/);
  assert.equal(random.top1, logged("backbone"), "the random network is the one the run started from");
  const pixels = knn("pixels", join(root, "knn-pixels"));
  assert.equal(pixels.top1, logged("pixels"), "the pixel baseline is the run's pixel line");
  // Same seed, same number; the trained checkpoint's weights are not what was measured.
  assert.equal(knn("random", join(root, "knn-random-again")).top1, random.top1);
  const trained = moco(["knn", ...common, "--out", join(root, "knn-trained")]);
  assert.equal(trained.status, 0, trained.stderr);
  assert.equal(readJson<KnnJson>(join(root, "knn-trained", "knn.json")).baseline, null);
});

test("flag errors name the flag, before any work", async () => {
  const cases: [string, string[], RegExp][] = [
    ["knn", ["--baseline", "noise"], /--baseline must be one of pixels, random, got 'noise'/],
    ["knn", ["--vote", "plurality"], /--vote must be one of weighted, majority, got 'plurality'/],
    [
      "knn",
      ["--baseline", "random"],
      /--baseline random needs the network to initialise: --pretrained FILE .* --preset/,
    ],
    [
      "knn",
      ["--baseline", "random", "--preset", "fashion-mnist", "--pretrained", "x.pth.tar"],
      /--baseline random takes its network from --pretrained or from --preset, not both/,
    ],
    ["knn", ["--baseline", "pixels", "--preset", "cifar"], /--preset cifar is for --baseline random/],
    ["knn", ["--preset", "cifar", "--pretrained", "x.pth.tar"], /--preset cifar is for --baseline random/],
    ["knn", ["--baseline", "pixels", "--features", "head"], /--features: raw pixels \(--baseline pixels\)/],
    ["knn", ["--baseline", "pixels", "--vote", "majority", "--knn-t", "0.5"], /--knn-t .* --vote majority has none/],
    ["knn", ["--baseline", "random", "--preset", "fashion-mnist", "--seed", "-1"], /--seed must be >= 0, got -1/],
    ["knn", [], /--pretrained FILE is required/],
    ["lincls", ["--baseline", "random", "--out", join(root, "lincls-bad")], /--baseline random needs the network/],
    [
      "lincls",
      ["--evaluate", "--baseline", "pixels", "--resume", "x.pth.tar"],
      /--baseline is for training a classifier/,
    ],
  ];
  for (const [command, argv, message] of cases) {
    const run = command === "knn" ? runKnn : runLincls;
    await assert.rejects(run(argv), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${argv.join(" ")}: ${String(error)}`);
      assert.match(error.message, message, argv.join(" "));
      return true;
    });
  }
  // As the user meets it: status 2, the message, nothing else.
  const cli = moco(["knn", "--baseline", "random", "--out", join(root, "never")]);
  assert.equal(cli.status, 2);
  assert.match(cli.stderr, /--baseline random needs the network to initialise/);
});
