// exportOnnx against two independent readers: onnxruntime-node (in this process, beside libtorch)
// must compute what our eval-mode forward computes, for two batch sizes (the batch dimension is
// symbolic), and Python's onnx.checker (Debian's python3-onnx, run by helpers/python.ts's PYTHON) must accept the file
// with full_check (strict shape inference). BatchNorm gets random running statistics and affine
// parameters first, so that folding it into the convolutions is really exercised.
//
// Tolerance: max|onnxruntime - ours| <= 1e-4 · max|ours| per output (float32, different kernels).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import * as ort from "onnxruntime-node";

import { exportOnnx, writeOnnx, type OnnxExportOptions } from "../src/export/index.js";
import { MoCo } from "../src/moco/index.js";
import {
  AdaptiveAvgPool2d,
  BatchNorm2d,
  Conv2d,
  Linear,
  MaxPool2d,
  Module,
  ReLU,
  Sequential,
  resnet18,
  resnet50,
  splitBatchNorm,
  type ResNet,
} from "../src/nn/index.js";
import { ProtoMessage } from "../src/export/onnx/protobuf.js";
import { PYTHON } from "./helpers/python.js";
import {
  F,
  fromTypedArray,
  liveTensors,
  manualSeed,
  noGrad,
  randn,
  save,
  scope,
  setNumThreads,
  type Tensor,
} from "../src/torch/index.js";

const PY_DIR = join(import.meta.dirname, "py");
const RELATIVE_TOLERANCE = 1e-4;
setNumThreads(2);

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "moco-onnx-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Trained-looking BatchNorm: running stats and affine parameters far from their 0/1 initial values. */
function randomizeBatchNorm(model: Module): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      m.runningMean?.normal_(0, 0.5);
      m.runningVar?.uniform_(0.5, 2);
      m.weight?.uniform_(0.5, 1.5);
      m.bias?.normal_(0, 0.3);
    }
  });
}

interface Check {
  irVersion: number;
  opset: number;
  producer: string;
  inputDims: (number | string)[];
  outputDims: (number | string)[];
  ops: string[];
}

/** onnx.checker.check_model(full_check=True) on the file, and what the file declares. */
function pythonCheck(path: string): Check {
  const script = `
import json, sys, onnx
onnx.checker.check_model(sys.argv[1], full_check=True)
m = onnx.load(sys.argv[1])
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
print(json.dumps({"irVersion": m.ir_version, "opset": m.opset_import[0].version, "producer": m.producer_name,
  "inputDims": dims(m.graph.input[0]), "outputDims": dims(m.graph.output[0]),
  "ops": sorted({n.op_type for n in m.graph.node})}))
`;
  const child = spawnSync(PYTHON, ["-c", script, path], { encoding: "utf8" });
  assert.equal(child.status, 0, `onnx.checker rejected ${path}:\n${child.stderr}`);
  return JSON.parse(child.stdout) as Check;
}

/** Our eval-mode output for a random batch of `n`, as plain arrays (no tensor left alive). */
function reference(
  model: Module,
  n: number,
  inputShape: readonly number[],
  post: (y: Tensor) => Tensor = (y) => y,
): { input: Float32Array; output: Float32Array; shape: number[] } {
  return scope(() => {
    const x = randn([n, ...inputShape]);
    const y = noGrad(() => post(model.forward(x)));
    return { input: x.toTypedArray<"float32">(), output: y.toTypedArray<"float32">(), shape: [...y.shape] };
  });
}

/** Exports `model`, then compares onnxruntime with our forward (in eval mode) at batch sizes 1 and 5. */
async function exportAndCompare(
  name: string,
  model: Module,
  options: OnnxExportOptions,
  post?: (y: Tensor) => Tensor,
): Promise<Check> {
  const live = liveTensors();
  const bytes = exportOnnx(model, options);
  assert.equal(liveTensors(), live, "exportOnnx left tensors alive");
  const path = join(dir, `${name}.onnx`);
  writeOnnx(path, bytes);
  assert.deepEqual(readFileSync(path), Buffer.from(bytes));

  const wasTraining = model.training;
  model.eval();
  const session = await ort.InferenceSession.create(bytes);
  try {
    const inputName = options.inputName ?? "input";
    const outputName = options.outputName ?? "features";
    for (const n of [1, 5]) {
      const ours = reference(model, n, options.inputShape, post);
      const feeds = { [inputName]: new ort.Tensor("float32", ours.input, [n, ...options.inputShape]) };
      const result = (await session.run(feeds))[outputName];
      assert.ok(result !== undefined, `no output "${outputName}"`);
      assert.deepEqual([...result.dims], ours.shape, `${name}: output shape at batch ${n}`);
      const theirs = result.data as Float32Array;
      let maxError = 0;
      let maxValue = 0;
      for (let i = 0; i < ours.output.length; i++) {
        maxError = Math.max(maxError, Math.abs((theirs[i] as number) - (ours.output[i] as number)));
        maxValue = Math.max(maxValue, Math.abs(ours.output[i] as number));
      }
      assert.ok(Number.isFinite(maxValue) && maxValue > 0, `${name}: degenerate output (max |y| = ${maxValue})`);
      assert.ok(
        maxError <= RELATIVE_TOLERANCE * maxValue,
        `${name}, batch ${n}: max |onnxruntime - ours| = ${maxError}, max |ours| = ${maxValue}`,
      );
    }
  } finally {
    await session.release();
    model.train(wasTraining);
  }
  const check = pythonCheck(path);
  assert.deepEqual(check.inputDims, ["batch", ...options.inputShape]);
  assert.equal(check.outputDims[0], "batch");
  return check;
}

function cifarResnet18(): ResNet {
  manualSeed(1);
  const model = resnet18({ numClasses: 0, width: 16, cifarStem: true, inChannels: 1 });
  randomizeBatchNorm(model);
  return model;
}

describe("exportOnnx: onnxruntime computes what our forward computes", () => {
  for (const foldBatchNorm of [true, false]) {
    const bn = foldBatchNorm ? "folded BN" : "BN nodes";

    test(`resnet18, CIFAR stem, width 16, 1 channel, no fc (${bn})`, async () => {
      const model = cifarResnet18();
      // Exported from train mode on purpose: the graph is the eval-mode forward regardless.
      const check = await exportAndCompare(`cifar18-${foldBatchNorm}`, model, {
        inputShape: [1, 28, 28],
        foldBatchNorm,
      });
      assert.deepEqual(check.outputDims, ["batch", 128]);
      assert.equal(check.ops.includes("BatchNormalization"), !foldBatchNorm);
      assert.equal(check.ops.includes("MaxPool"), false);
      assert.equal(model.training, true, "export must not change the mode");
      model.dispose();
    });

    test(`resnet18, ImageNet stem, v1 Linear head (${bn})`, async () => {
      manualSeed(2);
      const model = resnet18({ numClasses: 64, width: 16 });
      randomizeBatchNorm(model);
      const check = await exportAndCompare(`imagenet18-${foldBatchNorm}`, model, {
        inputShape: [3, 48, 40],
        foldBatchNorm,
      });
      assert.deepEqual(check.outputDims, ["batch", 64]);
      for (const op of ["Conv", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Add", "Relu"]) {
        assert.ok(check.ops.includes(op), `${op} in ${check.ops.join(", ")}`);
      }
      model.dispose();
    });

    test(`resnet50-shaped (width 8, bottleneck, split BN) with MoCo v2's MLP head (${bn})`, async () => {
      manualSeed(3);
      const moco = new MoCo((dim) => resnet50({ numClasses: dim, width: 8, normLayer: splitBatchNorm(2) }), {
        dim: 32,
        K: 64,
        m: 0.99,
        T: 0.2,
        mlp: true,
        symmetric: false,
      });
      const encoder = moco.encoderQ;
      randomizeBatchNorm(encoder);
      assert.ok(encoder.fc instanceof Sequential);
      const check = await exportAndCompare(`moco50-${foldBatchNorm}`, encoder, {
        inputShape: [3, 32, 32],
        foldBatchNorm,
        opset: 13,
      });
      assert.deepEqual(check.outputDims, ["batch", 32]);
      assert.equal(check.opset, 13);
      assert.equal(check.irVersion, 7);
      moco.dispose();
    });
  }

  test("normalizeOutput adds F.normalize; includeHead: false stops at the pooled features", async () => {
    manualSeed(4);
    const model = resnet18({ numClasses: 16, width: 8, cifarStem: true });
    randomizeBatchNorm(model);
    const check = await exportAndCompare(
      "normalized",
      model,
      { inputShape: [3, 16, 16], normalizeOutput: true, inputName: "images", outputName: "embedding" },
      (y) => F.normalize(y, { dim: 1 }),
    );
    assert.ok(check.ops.includes("ReduceL2") && check.ops.includes("Div"));
    assert.equal(check.producer, "moco-ts");

    const headless = exportOnnx(model, { inputShape: [3, 16, 16], includeHead: false });
    const session = await ort.InferenceSession.create(headless);
    const x = new ort.Tensor("float32", new Float32Array(2 * 3 * 16 * 16).fill(0.5), [2, 3, 16, 16]);
    const out = (await session.run({ input: x })).features;
    assert.deepEqual(out?.dims, [2, 64]);
    const features = scope(() =>
      noGrad(() =>
        model
          .eval()
          .forwardFeatures(randn([1, 3, 16, 16]).fill_(0.5))
          .toTypedArray<"float32">(),
      ),
    );
    const got = out?.data as Float32Array;
    for (let i = 0; i < features.length; i++) assert.ok(Math.abs((got[i] as number) - (features[i] as number)) < 1e-4);
    await session.release();
    model.dispose();
  });
});

test("PyTorch's own ResNet with the same weights computes what onnxruntime computes", async () => {
  manualSeed(5);
  const model = resnet18({ numClasses: 64, width: 16 });
  randomizeBatchNorm(model);
  const shape = [3, 3, 48, 40];
  const input = scope(() => randn(shape).toTypedArray<"float32">());
  const session = await ort.InferenceSession.create(exportOnnx(model, { inputShape: [3, 48, 40] }));
  const output = (await session.run({ input: new ort.Tensor("float32", input, shape) })).features;
  await session.release();
  assert.ok(output !== undefined);
  const path = join(dir, "torch-crosscheck.pt");
  scope(() =>
    save(
      {
        state_dict: model.stateDict(),
        x: fromTypedArray(input, shape),
        onnx: fromTypedArray(output.data as Float32Array, [...output.dims]),
      },
      path,
    ),
  );
  model.dispose();
  // nn_parity.build: torchvision's blocks and forward, with the width option torchvision lacks.
  const script = `
import json, sys, torch
sys.path.insert(0, sys.argv[1])
from nn_parity import build
data = torch.load(sys.argv[2])
model = build({"arch": "resnet18", "width": 16, "numClasses": 64})
model.load_state_dict(data["state_dict"], strict=True)
model.eval()
with torch.no_grad():
    y = model(data["x"])
print(json.dumps({"maxError": (y - data["onnx"]).abs().max().item(), "maxValue": y.abs().max().item()}))
`;
  const child = spawnSync(PYTHON, ["-c", script, PY_DIR, path], { encoding: "utf8" });
  assert.equal(child.status, 0, child.stderr);
  const { maxError, maxValue } = JSON.parse(child.stdout) as { maxError: number; maxValue: number };
  assert.ok(maxValue > 0 && maxError <= RELATIVE_TOLERANCE * maxValue, `max error ${maxError}, max |y| ${maxValue}`);
});

class Custom extends Module {
  forward(x: Tensor): Tensor {
    return x.mul(2);
  }
}

/** A Conv2d whose forward is not Conv2d's: must not be exported as one. */
class ScaledConv extends Conv2d {
  override forward(x: Tensor): Tensor {
    return super.forward(x).mul(2);
  }
}

describe("exportOnnx: what cannot be exported is refused with the module's path", () => {
  const imageOptions = { inputShape: [1, 8, 8] } as const;

  function refuses(model: Module, options: OnnxExportOptions, message: RegExp): void {
    const live = liveTensors();
    assert.throws(() => exportOnnx(model, options), message);
    assert.equal(liveTensors(), live, "a failed export left tensors alive");
    model.dispose();
  }

  test("unknown module types", () => {
    const model = cifarResnet18();
    model.fc = new Custom();
    refuses(model, imageOptions, /cannot export fc \(Custom\): unsupported module type \(supported: ResNet, /);
    refuses(new Sequential(new Conv2d(1, 2, 3), new Custom()), imageOptions, /cannot export 1 \(Custom\)/);
    refuses(new Sequential(new ScaledConv(1, 2, 3)), imageOptions, /cannot export 0 \(ScaledConv\)/);
    refuses(new Custom(), imageOptions, /cannot export the model \(Custom\)/);
  });

  test("layers the graph would not reproduce", () => {
    refuses(
      new Sequential(new Conv2d(1, 2, 3), new BatchNorm2d(2, { trackRunningStats: false })),
      imageOptions,
      /1 \(BatchNorm2d\) has no running statistics/,
    );
    refuses(new Sequential(new MaxPool2d(2, { ceilMode: true })), imageOptions, /0 \(MaxPool2d\): ceilMode/);
    refuses(new Sequential(new AdaptiveAvgPool2d(2)), imageOptions, /only outputSize \(1, 1\)/);
    refuses(
      new Sequential(new Linear(64, 2)),
      imageOptions,
      /0 \(Linear\) expects input \[batch, 64\], got \[batch, 1, 8, 8\]/,
    );
    refuses(
      new Sequential(new ReLU(), new Conv2d(3, 4, 3)),
      imageOptions,
      /1 \(Conv2d\) expects input \[batch, 3, height, width\]/,
    );
    refuses(new Sequential(new Conv2d(1, 2, 9)), imageOptions, /0 \(Conv2d\): input \[batch, 1, 8, 8\] is too small/);
  });

  test("an input shape that does not fit the model", () => {
    refuses(
      cifarResnet18(),
      { inputShape: [3, 28, 28] },
      /conv1 \(Conv2d\) expects input \[batch, 1, height, width\], got \[batch, 3, 28, 28\]/,
    );
  });

  test("bad options", () => {
    const model = cifarResnet18();
    const bad: [unknown, RegExp][] = [
      [{ inputShape: [1, 28] }, /inputShape must be \[channels, height, width\] of positive integers/],
      [{ inputShape: [1, 0, 28] }, /inputShape must be/],
      [{ inputShape: [1, 28, 28], opset: 12 }, /opset must be an integer from 13 to 17, got 12/],
      [{ inputShape: [1, 28, 28], opset: 18 }, /opset must be an integer from 13 to 17, got 18/],
      [{ inputShape: [1, 28, 28], foldBn: true }, /unknown option "foldBn"/],
      [{ inputShape: [1, 28, 28], foldBatchNorm: "yes" }, /foldBatchNorm must be a boolean/],
      [{ inputShape: [1, 28, 28], inputName: "x", outputName: "x" }, /inputName and outputName are both "x"/],
      [{ inputShape: [1, 28, 28], outputName: "" }, /outputName must be a non-empty string/],
      [null, /options must be an object/],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => exportOnnx(model, options as OnnxExportOptions), message);
    }
    assert.throws(
      () => exportOnnx(new Sequential(new ReLU()), { inputShape: [1, 2, 2], includeHead: false }),
      /includeHead: false applies to a ResNet, got a Sequential/,
    );
    assert.throws(() => exportOnnx({} as Module, imageOptions), /model must be a Module/);
    model.dispose();
    assert.throws(() => exportOnnx(model, imageOptions), /the model was disposed/);
  });
});

describe("writeOnnx and the protobuf encoder", () => {
  test("writeOnnx replaces the file atomically and reports failures", () => {
    const path = join(dir, "atomic.onnx");
    writeOnnx(path, Uint8Array.of(1, 2, 3));
    writeOnnx(path, Uint8Array.of(4, 5));
    assert.deepEqual([...readFileSync(path)], [4, 5]);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith("atomic")),
      ["atomic.onnx"],
    );
    const missing = join(dir, "no-such-folder", "model.onnx");
    assert.throws(() => writeOnnx(missing, Uint8Array.of(1)), /writeOnnx: cannot write .*no-such-folder.*ENOENT/);
    assert.equal(existsSync(join(dir, "no-such-folder")), false);
    assert.throws(() => writeOnnx(path, [1, 2] as unknown as Uint8Array), /bytes must be a Uint8Array/);
  });

  test("varints, negative int64, floats, strings and nested messages", () => {
    const inner = new ProtoMessage().int(1, 300).string(2, "é");
    const bytes = new ProtoMessage()
      .int(1, 0)
      .int(2, -1)
      .float(3, 1.5)
      .message(4, inner)
      .int(5, 2 ** 40)
      .toBytes();
    assert.deepEqual(
      [...bytes],
      [
        ...[0x08, 0x00], // field 1 varint 0
        ...[0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // field 2: -1 as 10 bytes
        ...[0x1d, 0x00, 0x00, 0xc0, 0x3f], // field 3 fixed32: 1.5f
        ...[0x22, 0x07, 0x08, 0xac, 0x02, 0x12, 0x02, 0xc3, 0xa9], // field 4: {1: 300, 2: "é"}
        ...[0x28, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20], // field 5: 2^40
      ],
    );
    assert.throws(() => new ProtoMessage().int(1, 0.5), /0.5 is not a safe integer/);
  });
});
