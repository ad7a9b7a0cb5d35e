// The downstream commands as a user meets them: a checkpoint written by `moco pretrain` is enough
// for knn, lincls (with resume and --evaluate), embed, search and export; bad input fails clearly.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import sharp from "sharp";

import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { PYTHON } from "./helpers/python.js";

const root = mkdtempSync(join(tmpdir(), "moco-cli-eval-"));
after(() => rmSync(root, { recursive: true, force: true }));
const checkpoint = join(root, "pretrain", "checkpoint.pth.tar");

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 300_000 });
}

function python(code: string, ...args: string[]): string {
  const result = spawnSync(PYTHON, ["-c", code, ...args], { encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`python failed:\n${result.stderr}`);
  return result.stdout;
}

before(() => {
  const result = moco([
    "pretrain",
    ...["--out", join(root, "pretrain"), "--subset", "256", "--width", "4", "--batch-size", "32"],
    ...["--bn-splits", "2", "--moco-k", "64", "--moco-dim", "16", "--epochs", "1", "--knn-every", "0"],
    ...["--knn-bank", "256", "--knn-test", "128", "--threads", "2"],
  ]);
  assert.equal(result.status, 0, result.stderr);
});

test("moco knn: top-1/top-5, per-class accuracy and confusion matrix files", () => {
  const out = join(root, "knn");
  const result = moco(["knn", "--pretrained", checkpoint, "--subset", "1000", "--knn-k", "50", "--out", out]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /kNN top-1 \d+\.\d+%/);
  const summary = JSON.parse(readFileSync(join(out, "knn.json"), "utf8")) as {
    top1: number;
    confusion: number[][];
    perClass: { count: number }[];
    dataset: string;
  };
  assert.equal(summary.dataset, "fashion-mnist", "the dataset comes from the checkpoint");
  assert.ok(summary.top1 > 30, "a percentage");
  assert.equal(
    summary.confusion.flat().reduce((a, b) => a + b, 0),
    10000,
  );
  assert.equal(readFileSync(join(out, "per-class.csv"), "utf8").trim().split("\n").length, 11);
  assert.equal(readFileSync(join(out, "confusion.csv"), "utf8").trim().split("\n").length, 11);
});

test("moco lincls: trains, checkpoints, resumes, evaluates; backbone unchanged", () => {
  const out = join(root, "lincls");
  const common = ["--subset", "1000", "--lr", "0.1", "--precompute-features", "--out", out, "--threads", "2"];
  const first = moco(["lincls", "--pretrained", checkpoint, "--epochs", "2", ...common]);
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stdout, /sanity check passed/);
  for (const file of ["checkpoint.pth.tar", "model_best.pth.tar", "summary.json", "config.json"])
    assert.ok(existsSync(join(out, file)), file);
  const lines = () => readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
  assert.equal(lines().length, 2);

  const resumed = moco(["lincls", "--resume", join(out, "checkpoint.pth.tar"), "--epochs", "3", "--out", out]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal(lines().length, 3, "only the third epoch ran");
  assert.match(resumed.stderr, /epoch 3\/3/);
  assert.doesNotMatch(resumed.stderr, /epoch 1\/3/);

  const evaluated = moco(["lincls", "--evaluate", "--resume", join(out, "checkpoint.pth.tar")]);
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const acc = /Acc@1 ([\d.]+)/.exec(evaluated.stdout);
  assert.ok(acc !== null && Number(acc[1]) > 30, evaluated.stdout);
  const last = JSON.parse(lines()[2] as string) as { valTop1: number };
  assert.ok(Math.abs(Number(acc[1]) - last.valTop1) < 1e-9, "evaluate gives the last epoch's top-1");

  // The official script's view of the file: a classifier state dict with module.fc.
  python(
    `
import sys, torch
c = torch.load(sys.argv[1], map_location="cpu")
assert c["epoch"] == 3 and c["arch"] == "resnet18" and "best_acc1" in c
assert c["state_dict"]["module.fc.weight"].shape == (10, 32), c["state_dict"]["module.fc.weight"].shape
`,
    join(out, "checkpoint.pth.tar"),
  );
});

test("moco embed and moco search on an image folder: npy + safetensors + ids, JSON and HTML results", async () => {
  const folder = join(root, "images");
  mkdirSync(folder, { recursive: true });
  const dataset = openFashionMnist({ split: "test" });
  const images = dataset.subset(40);
  for (let i = 0; i < 40; i += 1) {
    const image = images.batch([i]); // a TensorImageDataset: synchronous
    await sharp(Buffer.from(image.toBytes()), { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toFile(join(folder, `item-${String(i).padStart(2, "0")}.png`));
    image.dispose();
  }
  images.dispose();
  dataset.dispose();

  const index = join(root, "index");
  const embedded = moco(["embed", "--pretrained", checkpoint, folder, "--image-size", "28", "--out", index]);
  assert.equal(embedded.status, 0, embedded.stderr);
  const ids = JSON.parse(readFileSync(join(index, "ids.json"), "utf8")) as string[];
  assert.equal(ids.length, 40);
  assert.ok(ids[0]?.endsWith("item-00.png"));
  const check = python(
    `
import sys, json, struct, numpy
d = sys.argv[1]
a = numpy.load(d + "/embeddings.npy")
raw = open(d + "/embeddings.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
b, e = h["embeddings"]["data_offsets"]
s = numpy.frombuffer(raw[8 + n + b:8 + n + e], dtype=numpy.float32).reshape(h["embeddings"]["shape"])
assert a.dtype == numpy.float32 and a.shape == (40, 32), (a.dtype, a.shape)
assert (a == s).all()
print(float(numpy.abs(numpy.linalg.norm(a, axis=1) - 1).max()))
`,
    index,
  );
  assert.ok(Number(check.trim()) < 1e-5, "rows are L2-normalised");

  const out = join(root, "search");
  const queries = [join(folder, "item-03.png"), join(folder, "item-17.png")];
  const searched = moco(["search", "--index", index, ...queries, "--k", "5", "--out", out]);
  assert.equal(searched.status, 0, searched.stderr);
  const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8")) as {
    results: { query: string; hits: { id: string; similarity: number }[] }[];
  };
  assert.equal(results.results.length, 2);
  for (const [q, result] of results.results.entries()) {
    assert.equal(result.hits.length, 5);
    assert.equal(result.hits[0]?.id, queries[q], "an indexed image finds itself first");
    assert.ok((result.hits[0]?.similarity ?? 0) > 0.9999);
  }
  const html = readFileSync(join(out, "results.html"), "utf8");
  assert.equal((html.match(/<img /g) ?? []).length, 12);
});

test("moco export: torchvision, safetensors and ONNX files", () => {
  for (const format of ["torchvision", "safetensors", "onnx"]) {
    const out = join(root, "export", `backbone.${format}`);
    const result = moco(["export", "--pretrained", checkpoint, "--format", format, "--out", out]);
    assert.equal(result.status, 0, result.stderr);
    assert.ok(existsSync(out));
    if (format === "torchvision") assert.match(result.stderr, /CIFAR stem/, "says how it differs from torchvision's");
  }
  python(
    `
import sys, onnx
onnx.checker.check_model(sys.argv[1], full_check=True)
`,
    join(root, "export", "backbone.onnx"),
  );
});

test("bad input: clear errors, non-zero exits, nothing written", () => {
  const text = join(root, "notes.txt");
  writeFileSync(text, "not a checkpoint\n");
  const out = join(root, "never");
  const notCheckpoint = moco(["knn", "--pretrained", text, "--out", out]);
  assert.equal(notCheckpoint.status, 1);
  assert.match(notCheckpoint.stderr, /notes\.txt/);
  assert.ok(!existsSync(out));

  const wrongArch = moco(["lincls", "--pretrained", checkpoint, "--arch", "resnet50", "--out", out]);
  assert.notEqual(wrongArch.status, 0);
  assert.match(wrongArch.stderr, /holds a resnet18, not the resnet50/);
  assert.ok(!existsSync(out));

  const missing = moco(["embed", "--out", out]);
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--pretrained FILE is required/);

  const badFormat = moco(["export", "--pretrained", checkpoint, "--format", "tflite", "--out", join(out, "x")]);
  assert.equal(badFormat.status, 2);
  assert.match(badFormat.stderr, /--format must be one of torchvision, safetensors, onnx/);
  assert.ok(!existsSync(out));
});
