// Exports that carry what a user needs downstream, checked by the tools downstream use: the input
// an encoder was trained on (size, channels, mean, std, features) in ONNX metadata_props and
// safetensors metadata, read back by loadEncoder and accepted by onnxruntime at the declared size;
// the Python that builds a network torchvision cannot make by itself; and detectron2's weights
// file, compared key by key and value by value with the official MoCo conversion script's output.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import * as ort from "onnxruntime-node";
import sharp from "sharp";

import { openFashionMnist } from "../src/data/fashion-mnist.js";
import { encoderInput, loadEncoder } from "../src/encoder/index.js";
import { OnnxFormatError, readOnnxInput, readOnnxMetadata } from "../src/export/index.js";
import { readSafetensors, writeNpy } from "../src/io/index.js";
import { fromTypedArray, noGrad } from "../src/torch/index.js";
import { pythonScript } from "./helpers/python-script.js";
import { PYTHON } from "./helpers/python.js";

const root = mkdtempSync(join(tmpdir(), "moco-export-transfer-"));
after(() => rmSync(root, { recursive: true, force: true }));
const run = join(root, "run");
const checkpoint = join(run, "checkpoint.pth.tar");

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 180_000 });
}

function python(code: string, ...args: string[]): string {
  const result = spawnSync(PYTHON, ["-c", code, ...args], { encoding: "utf8", timeout: 120_000 });
  if (result.status !== 0) throw new Error(`python failed:\n${result.stderr}`);
  return result.stdout;
}

// A folder-trained CIFAR-stem encoder: pretraining crops folders to 64 px, which is what the exports
// must declare (the images are 40 px and the CIFAR default would be 32: both wrong).
before(async () => {
  const folder = join(root, "images");
  const data = openFashionMnist({ split: "test" });
  try {
    for (let i = 0; i < 64; i += 1) {
      const image = data.batch([i]);
      const dir = join(folder, "train", `class-${i % 2}`);
      mkdirSync(dir, { recursive: true });
      await sharp(Buffer.from(image.toBytes()), { raw: { width: 28, height: 28, channels: 1 } })
        .resize(40, 40)
        .png()
        .toFile(join(dir, `item-${i}.png`));
      image.dispose();
    }
  } finally {
    data.dispose();
  }
  const result = moco([
    "pretrain",
    join(folder),
    ...["--out", run, "--width", "4", "--batch-size", "32", "--bn-splits", "2", "--moco-k", "64"],
    ...["--moco-dim", "16", "--epochs", "1", "--knn-every", "0", "--threads", "1"],
  ]);
  assert.equal(result.status, 0, result.stderr);
});

test("exports carry the training input; loadEncoder reads it back; onnxruntime takes the declared size", async () => {
  const encoder = loadEncoder(checkpoint);
  const recorded = encoder.info.input;
  try {
    assert.ok(recorded !== null && recorded !== undefined, "the checkpoint records its input");
    assert.equal(recorded.size, 64, "the crop size pretraining used on this folder");
    assert.equal(recorded.channels, encoder.inChannels);
    assert.equal(recorded.mean.length, recorded.channels);
    assert.deepEqual(encoderInput(encoder), recorded);

    // safetensors: the metadata says it, and loading the export gives the same input back.
    const st = join(root, "encoder.safetensors");
    assert.equal(moco(["export", "--pretrained", checkpoint, "--format", "safetensors", "--out", st]).status, 0);
    const { tensors, metadata } = readSafetensors(st);
    for (const t of tensors.values()) t.dispose();
    assert.equal(metadata["image_size"], "64");
    assert.equal(metadata["in_channels"], String(recorded.channels));
    assert.deepEqual(JSON.parse(metadata["mean"] ?? "null"), recorded.mean);
    assert.deepEqual(JSON.parse(metadata["std"] ?? "null"), recorded.std);
    assert.equal(metadata["features"], "backbone");
    const fromSt = loadEncoder(st);
    assert.deepEqual(fromSt.info.input, recorded);
    fromSt.dispose();

    // ONNX: input declared at 64 px, the same metadata in metadata_props (read by the onnx package).
    const onnxPath = join(root, "encoder.onnx");
    const exported = moco(["export", "--pretrained", checkpoint, "--format", "onnx", "--out", onnxPath]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, new RegExp(`input \\[batch, ${recorded.channels}, 64, 64\\]`));
    const props = JSON.parse(
      python(
        `import json, sys, onnx
m = onnx.load(sys.argv[1]); onnx.checker.check_model(m)
dims = [d.dim_value or d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim]
print(json.dumps({"dims": dims, "meta": {p.key: p.value for p in m.metadata_props}}))`,
        onnxPath,
      ),
    ) as { dims: (number | string)[]; meta: Record<string, string> };
    assert.deepEqual(props.dims, ["batch", recorded.channels, 64, 64]);
    assert.equal(props.meta["image_size"], "64");
    assert.deepEqual(JSON.parse(props.meta["mean"] ?? "null"), recorded.mean);
    assert.deepEqual(JSON.parse(props.meta["std"] ?? "null"), recorded.std);
    assert.equal(props.meta["features"], "backbone");
    assert.deepEqual(readOnnxMetadata(onnxPath), props.meta, "our reader sees what the onnx package sees");
    assert.deepEqual(readOnnxInput(onnxPath), recorded);
    assert.throws(() => readOnnxMetadata(readFileSync(onnxPath).subarray(0, 1000)), OnnxFormatError);

    // onnxruntime runs the declared size and computes what our encoder computes; 32 px is refused.
    const session = await ort.InferenceSession.create(readFileSync(onnxPath));
    const n = 2;
    const values = Float32Array.from({ length: n * recorded.channels * 64 * 64 }, (_, i) => Math.sin(i * 0.37));
    const out = await session.run({ input: new ort.Tensor("float32", values, [n, recorded.channels, 64, 64]) });
    const onnxFeatures = out["features"]?.data as Float32Array;
    const ours = noGrad(() => {
      const x = fromTypedArray(values, [n, recorded.channels, 64, 64], "float32");
      const y = encoder.forward(x);
      x.dispose();
      const array = y.toArray();
      y.dispose();
      return array;
    });
    assert.equal(onnxFeatures.length, ours.length);
    const scale = Math.max(...ours.map(Math.abs));
    for (let i = 0; i < ours.length; i += 1)
      assert.ok(Math.abs((onnxFeatures[i] ?? NaN) - (ours[i] ?? NaN)) <= 1e-4 * scale, `feature ${i}`);
    const small = new ort.Tensor("float32", new Float32Array(recorded.channels * 32 * 32), [
      1,
      recorded.channels,
      32,
      32,
    ]);
    await assert.rejects(session.run({ input: small }), /dimension|Got invalid dimensions|index: 2/i);
    await session.release();
  } finally {
    encoder.dispose();
  }
});

test("torchvision export of a CIFAR-stem width-4 network: the Python written beside it builds it; same outputs", () => {
  const pth = join(root, "backbone.pth");
  const result = moco(["export", "--pretrained", checkpoint, "--format", "torchvision", "--out", pth]);
  assert.equal(result.status, 0, result.stderr);
  const script = join(root, "backbone.py");
  assert.ok(existsSync(script), "the builder script is written next to the export");
  assert.match(result.stderr, /backbone\.py builds it/);

  const encoder = loadEncoder(checkpoint);
  try {
    const c = encoder.inChannels;
    const values = Float32Array.from({ length: 2 * c * 64 * 64 }, (_, i) => Math.cos(i * 0.11));
    const input = join(root, "input.npy");
    const x = fromTypedArray(values, [2, c, 64, 64], "float32");
    writeNpy(input, x);
    const ours = noGrad(() => {
      const y = encoder.forward(x);
      const array = y.toArray();
      y.dispose();
      return array;
    });
    x.dispose();
    const theirs = JSON.parse(
      python(
        `import json, sys, numpy, torch
exec(open(sys.argv[1]).read())
model = build_model()
model.load_state_dict(torch.load(sys.argv[2]))  # strict: every key and shape must match
model.eval()
with torch.no_grad():
    y = model(torch.from_numpy(numpy.load(sys.argv[3])))
print(json.dumps(y.flatten().tolist()))`,
        script,
        pth,
        input,
      ),
    ) as number[];
    assert.equal(theirs.length, ours.length);
    const scale = Math.max(...ours.map(Math.abs));
    for (let i = 0; i < ours.length; i += 1)
      assert.ok(
        Math.abs((theirs[i] ?? NaN) - (ours[i] ?? NaN)) <= 1e-4 * scale,
        `feature ${i}: ${theirs[i]} vs ${ours[i]}`,
      );
  } finally {
    encoder.dispose();
  }
});

test("moco export --format detectron2 writes what the official convert-pretrain-to-detectron2.py writes", () => {
  const ours = join(root, "ours.pkl");
  const result = moco(["export", "--pretrained", checkpoint, "--format", "detectron2", "--out", ours]);
  assert.equal(result.status, 0, result.stderr);
  const official = join(root, "official.pkl");
  const printed = pythonScript("convert_pretrain_to_detectron2.py")(checkpoint, official);
  assert.match(printed, /module\.encoder_q\.layer1\.0\.bn1\.weight -> res2\.0\.conv1\.norm\.weight/);
  const verdict = JSON.parse(pythonScript("detectron2_check.py")(official, ours)) as {
    keys: number;
    problems: string[];
  };
  assert.deepEqual(verdict.problems, []);
  // ResNet-18 with an MLP head: 122 backbone tensors (with num_batches_tracked) + 4 of the head.
  assert.ok(verdict.keys > 100, `${verdict.keys} keys`);

  const withHead = moco(["export", "--pretrained", checkpoint, "--format", "detectron2", "--head", "--out", ours]);
  assert.equal(withHead.status, 1);
  assert.match(withHead.stderr, /drop --head/);
});
