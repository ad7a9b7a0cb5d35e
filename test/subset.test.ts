// Honest data selection (issue #16, 2): --subset is a seeded random sample, stratified by class, with
// its indices in the run folder; a preset's subset never applies to a folder the user names.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { DATA_FLAGS, openEvalData } from "../src/cli/eval-data.js";
import { parseCommand } from "../src/cli/flags.js";
import { pretrainPlan } from "../src/cli/pretrain-command.js";
import { sampleIndices, type SubsetRecord } from "../src/data/subset.js";
import type { Encoder } from "../src/encoder/encoder.js";
import { resolveConfig } from "../src/train/config.js";
import { openPretrainData } from "../src/train/data.js";
import { pretrain } from "../src/train/pretrain.js";
import { fashionPngs } from "./helpers/serve-fixture.js";

const root = mkdtempSync(join(tmpdir(), "moco-subset-"));
after(() => rmSync(root, { recursive: true, force: true }));
const folder = join(root, "photos");

// Three classes of ten images: "first N by path" takes the alphabetically first classes only.
before(async () => {
  const pngs = await fashionPngs(Array.from({ length: 30 }, (_, i) => i));
  pngs.forEach(({ png }, i) => {
    const dir = join(folder, ["ankle", "bag", "coat"][Math.floor(i / 10)] as string);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${String(i).padStart(2, "0")}.png`), png);
  });
});

const perClass = (labels: readonly number[]) =>
  labels.reduce<number[]>((counts, label) => {
    counts[label] = (counts[label] ?? 0) + 1;
    return counts;
  }, []);

test("sampleIndices: seeded, ascending, distinct, each class its share", () => {
  const labels = Array.from({ length: 150 }, (_, i) => Math.floor(i / 50));
  const a = sampleIndices(150, 100, 7, labels);
  assert.deepEqual(a, sampleIndices(150, 100, 7, labels), "same seed, same sample");
  assert.notDeepEqual(a, sampleIndices(150, 100, 8, labels), "another seed, another sample");
  assert.deepEqual(
    a,
    [...a].sort((x, y) => x - y),
  );
  assert.equal(new Set(a).size, 100);
  const counts = perClass(a.map((i) => labels[i] as number));
  assert.deepEqual(
    [...counts].sort((x, y) => x - y),
    [33, 33, 34],
  );
  const unlabeled = sampleIndices(1000, 10, 0, null);
  assert.ok((unlabeled.at(-1) as number) > 100, "a random sample, not the first ten");
});

test("pretrain --subset on a class folder samples every class and records the indices", async () => {
  const config = resolveConfig("fashion-mnist", [
    { source: "test", values: { dataset: "folder", data: folder, subset: 15, imageSize: 28, out: join(root, "run") } },
  ]);
  const data = await openPretrainData(config);
  try {
    assert.equal(data.train.length, 15);
    assert.deepEqual(perClass(data.train.labels?.toArray() ?? []), [5, 5, 5]);
    assert.equal(data.available, 30);
    assert.equal(data.subset?.indices.length, 15);
    assert.equal(data.subset?.seed, 0);
  } finally {
    data.dispose();
  }
});

test("a preset's subset applies to its own data, never to a folder the user names", () => {
  assert.equal(pretrainPlan([]).config.subset, 10000, "the fashion-mnist preset on Fashion-MNIST");
  assert.equal(pretrainPlan([folder]).config.subset, null, "moco pretrain ~/photos: all the photos");
  assert.equal(pretrainPlan([folder, "--subset", "12"]).config.subset, 12);
});

test("moco embed/knn/lincls --subset: the same seeded stratified sample", async () => {
  const command = parseCommand([folder, "--subset", "6", "--image-size", "28"], {
    name: "knn",
    flags: DATA_FLAGS,
    help: "",
    positionals: { max: 1, what: "one data folder" },
  });
  assert.ok(command !== null);
  const encoder = { info: { trainedOn: null, layout: { cifarStem: true } } } as unknown as Encoder;
  const data = await openEvalData(command.flags, encoder, folder, ["test"], () => {});
  data.dispose();
  const train = await openEvalData(command.flags, encoder, folder, ["train"], () => {});
  try {
    const split = train.splits.get("train");
    assert.deepEqual(perClass(split?.labels?.toArray() ?? []), [2, 2, 2]);
    assert.equal(train.subset?.indices.length, 6);
  } finally {
    train.dispose();
  }
});

test("a pretraining run writes subset.json, the sample its seed draws", async () => {
  const out = join(root, "fmnist");
  const config = resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: { subset: 128, width: 4, batchSize: 32, bnSplits: 2, mocoK: 64, mocoDim: 16, knnEvery: 0 },
    },
    { source: "test", values: { knnBank: 128, knnTest: 64, threads: 1, maxSteps: 1, seed: 3, out } },
  ]);
  await pretrain(config);
  const record = JSON.parse(readFileSync(join(out, "subset.json"), "utf8")) as SubsetRecord;
  assert.equal(record.seed, 3);
  assert.equal(record.of, 60000);
  assert.equal(record.indices.length, 128);
  assert.ok((record.indices.at(-1) as number) > 128, "not the first 128 images");
});

test("a resumed run reads its images back from subset.json", async () => {
  const out = join(root, "resumed");
  const config = resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: { subset: 64, width: 4, batchSize: 32, bnSplits: 2, mocoK: 64, mocoDim: 16, knnEvery: 0 },
    },
    { source: "test", values: { knnBank: 64, knnTest: 64, threads: 1, maxSteps: 1, out } },
  ]);
  await pretrain(config);
  // Whatever drew the run's images (an older sampler, another seed), resuming uses the same ones.
  const path = join(out, "subset.json");
  const saved = JSON.parse(readFileSync(path, "utf8")) as SubsetRecord;
  const chosen = Array.from({ length: 64 }, (_, i) => i * 7);
  writeFileSync(path, JSON.stringify({ ...saved, indices: chosen }));
  await pretrain({ ...config, maxSteps: 2 }, { resume: out });
  assert.deepEqual((JSON.parse(readFileSync(path, "utf8")) as SubsetRecord).indices, chosen);
});
