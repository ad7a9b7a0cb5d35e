// Module mechanics that need no Python: names and orders, modes, gradients, deep copies, state-dict
// loading errors, ResNet options, and memory hygiene (live tensor count back to its baseline).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  BatchNorm2d,
  BasicBlock,
  Bottleneck,
  Conv2d,
  Flatten,
  Identity,
  Linear,
  Module,
  ReLU,
  Sequential,
  SplitBatchNorm,
  StateDictError,
  resnet18,
  resnet50,
  splitBatchNorm,
  type AnyModule,
} from "../src/nn/index.js";
import {
  F,
  Tensor,
  liveTensors,
  manualSeed,
  noGrad,
  ones,
  randint,
  randn,
  scope,
  tensor,
  zeros,
} from "../src/torch/index.js";

/** A small model with a parameter, a buffer, a non-persistent buffer and nested children. */
class Net extends Module {
  constructor() {
    super();
    this.registerParameter("scale", ones([3]));
    this.registerBuffer("steps", zeros([], { dtype: "int64" }));
    this.registerBuffer("cache", zeros([2]), { persistent: false });
    this.registerModule(
      "features",
      new Sequential(new Conv2d(3, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU()),
    );
    this.registerModule("head", new Sequential(new Flatten(), new Linear(4 * 4 * 4, 5, { bias: false })));
  }
  forward(x: Tensor): Tensor {
    return scope(() =>
      this.child<Sequential>("head").forward(
        this.child<Sequential>("features").forward(x.mul(this.param("scale").view(1, 3, 1, 1))),
      ),
    );
  }
}

function withModel<M extends AnyModule, T>(model: M, fn: (m: M) => T): T {
  try {
    return fn(model);
  } finally {
    model.dispose();
  }
}

describe("names and orders", () => {
  test("parameters, buffers, children and modules carry PyTorch's dotted names, in registration order", () => {
    withModel(new Net(), (net) => {
      assert.deepEqual(
        net.namedParameters().map(([n]) => n),
        ["scale", "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias", "head.1.weight"],
      );
      assert.deepEqual(
        net.namedBuffers().map(([n]) => n),
        ["steps", "cache", "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked"],
      );
      assert.deepEqual(
        net.stateDictKeys(),
        [
          "scale",
          "steps",
          "features.0.weight",
          "features.0.bias",
          "features.1.weight",
          "features.1.bias",
          "features.1.running_mean",
          "features.1.running_var",
          "features.1.num_batches_tracked",
          "head.1.weight",
        ],
        "non-persistent buffers stay out of the state dict; absent biases are skipped",
      );
      assert.deepEqual(
        net.namedChildren().map(([n]) => n),
        ["features", "head"],
      );
      assert.deepEqual(
        net.namedModules().map(([n, m]) => `${n}:${m.typeName}`),
        [
          ":Net",
          "features:Sequential",
          "features.0:Conv2d",
          "features.1:BatchNorm2d",
          "features.2:ReLU",
          "head:Sequential",
          "head.0:Flatten",
          "head.1:Linear",
        ],
      );
      assert.equal(net.children().length, 2);
      assert.equal(net.parameters().length, 6);
      assert.equal(net.buffers().length, 5);
      assert.equal(net.parameters(false).length, 1, "recurse=false: own parameters only");
      assert.equal(net.getSubmodule("features.1").typeName, "BatchNorm2d");
      assert.equal(net.getParameter("head.1.weight"), (net.getSubmodule("head.1") as Linear).weight);
      assert.deepEqual([...net.getBuffer("features.1.running_var").shape], [4]);
      assert.throws(() => net.getSubmodule("features.9"), /no submodule "9"/);
      assert.throws(() => net.getParameter("features.0.nope"), /no parameter "features.0.nope"/);
      assert.equal(net.numParameters(), 3 + 4 * 3 * 9 + 4 + 4 + 4 + 5 * 64);
    });
  });

  test("ResNet keys follow torchvision, parameters() is namedParameters() order, MoCo v2 head gives fc.0 / fc.2", () => {
    withModel(resnet18({ width: 8, numClasses: 4 }), (model) => {
      const keys = model.stateDictKeys();
      assert.deepEqual(keys.slice(0, 7), [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
      ]);
      assert.ok(keys.includes("layer2.0.downsample.0.weight"));
      assert.ok(keys.includes("layer2.0.downsample.1.running_mean"));
      assert.ok(!keys.includes("layer1.0.downsample.0.weight"), "no downsample where stride 1 and same width");
      assert.deepEqual(keys.slice(-2), ["fc.weight", "fc.bias"]);
      const named = model.namedParameters();
      assert.deepEqual(
        model.parameters(),
        named.map(([, p]) => p),
      );
      assert.equal(named.length, 62);
      const d = model.featureDim;
      const old = model.fc;
      model.fc = new Sequential(new Linear(d, d), new ReLU(), new Linear(d, 16));
      old.dispose();
      assert.deepEqual(model.stateDictKeys().slice(-4), ["fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias"]);
      scope(() => assert.deepEqual([...model.eval().forward(randn([2, 3, 32, 32])).shape], [2, 16]));
    });
  });

  test("registration validates names, kinds and leaves", () => {
    withModel(new Net(), (net) => {
      assert.throws(() => net.registerParameter("a.b", zeros([1])), /without "\."/);
      assert.throws(() => net.registerBuffer("scale", zeros([1])), /already registered as another kind/);
      assert.throws(() => net.registerModule("steps", new Identity()), /already registered as another kind/);
      const nonLeaf = scope(() => {
        const leaf = ones([2]).requiresGrad_();
        return leaf.mul(2);
      });
      assert.throws(() => net.registerParameter("bad", nonLeaf), /must be a leaf tensor/);
      nonLeaf.dispose();
    });
  });
});

describe("modes and gradients", () => {
  test("train()/eval() propagate to every descendant", () => {
    withModel(resnet18({ width: 4 }), (model) => {
      assert.ok(model.modules().every((m) => m.training));
      model.eval();
      assert.ok(model.modules().every((m) => !m.training));
      model.layer2.train();
      assert.ok(model.layer2.modules().every((m) => m.training));
      assert.ok(!model.layer1.training && !model.training);
      model.train();
      assert.ok(model.modules().every((m) => m.training));
    });
  });

  test("zeroGrad sets every gradient to null; requiresGrad_ toggles every parameter", () => {
    withModel(resnet18({ width: 4, numClasses: 3 }), (model) => {
      scope(() => {
        F.crossEntropy(model.forward(randn([2, 3, 32, 32])), tensor([0, 2])).backward();
        assert.ok(model.parameters().every((p) => p.grad !== null));
      });
      model.zeroGrad();
      assert.ok(model.parameters().every((p) => p.grad === null));
      model.requiresGrad_(false);
      assert.ok(model.parameters().every((p) => !p.requiresGrad && p.isLeaf));
      model.requiresGrad_();
      assert.ok(model.parameters().every((p) => p.requiresGrad));
    });
  });

  test("apply visits children before their parent", () => {
    withModel(new Net(), (net) => {
      const seen: string[] = [];
      net.apply((m) => seen.push(m.typeName));
      assert.deepEqual(seen, ["Conv2d", "BatchNorm2d", "ReLU", "Sequential", "Flatten", "Linear", "Sequential", "Net"]);
    });
  });
});

describe("copy", () => {
  test("is deep: same structure and values, independent storage, leaves requiring grad, no grads", () => {
    manualSeed(0);
    withModel(resnet18({ width: 8, numClasses: 5, cifarStem: true, normLayer: splitBatchNorm(2) }), (model) => {
      scope(() => F.crossEntropy(model.forward(randn([4, 3, 16, 16])), tensor([0, 1, 2, 3])).backward());
      model.eval();
      const copy = model.copy();
      try {
        assert.notEqual(copy, model);
        assert.ok(copy instanceof model.constructor);
        assert.equal(copy.featureDim, model.featureDim);
        assert.equal(copy.training, false);
        assert.deepEqual(copy.stateDictKeys(), model.stateDictKeys());
        assert.ok(copy.fc instanceof Linear && copy.fc !== model.fc);
        assert.ok(copy.layer1.at(0) instanceof BasicBlock);
        const bn = copy.layer1.at(0) as BasicBlock;
        assert.ok(bn.bn1 instanceof SplitBatchNorm && bn.bn1.numSplits === 2);
        assert.ok(!copy.modules().some((m) => model.modules().includes(m)), "no module is shared");
        const ours = model.namedParameters();
        const theirs = copy.namedParameters();
        for (const [i, [name, p]] of ours.entries()) {
          const c = (theirs[i] as [string, Tensor])[1];
          assert.ok(c.equal(p), name);
          assert.notEqual(c.storageId, p.storageId, `${name} has its own storage`);
          assert.ok(c.isLeaf && c.requiresGrad, `${name} is a leaf requiring grad`);
          assert.equal(c.grad, null, `${name} has no grad`);
        }
        for (const [[name, b], [, c]] of model
          .namedBuffers()
          .map((e, i) => [e, copy.namedBuffers()[i] as [string, Tensor]] as const)) {
          assert.ok(c.equal(b), name);
          assert.notEqual(c.storageId, b.storageId, name);
        }
        scope(() => {
          const x = randn([2, 3, 16, 16]);
          assert.ok(
            noGrad(() => copy.forward(x).equal(model.forward(x))),
            "same eval outputs",
          );
          noGrad(() => model.conv1.weight.add_(1));
          assert.ok(!copy.conv1.weight.equal(model.conv1.weight), "changing the original leaves the copy alone");
        });
        copy.train();
        assert.ok(!model.training, "modes are independent");
      } finally {
        copy.dispose();
      }
      assert.ok(!model.conv1.weight.isDisposed, "disposing the copy leaves the original alone");
    });
  });

  test("keeps tensors that are shared inside the tree shared", () => {
    const a = new Linear(3, 3);
    const tied = new Sequential(a, new Linear(3, 3));
    (tied.at(1) as Linear).registerParameter("weight", a.weight);
    withModel(tied, (model) => {
      assert.equal(model.parameters().length, 3, "a shared parameter is listed once");
      const copy = model.copy();
      try {
        assert.equal((copy.at(0) as Linear).weight, (copy.at(1) as Linear).weight);
        assert.notEqual((copy.at(0) as Linear).weight, a.weight);
      } finally {
        copy.dispose();
      }
    });
  });
});

describe("stateDict and loadStateDict", () => {
  test("stateDict values are detached handles on the module's storage, num_batches_tracked a 0-d int64", () => {
    withModel(new BatchNorm2d(3), (bn) => {
      scope(() => {
        const sd = bn.stateDict();
        assert.deepEqual([...sd.keys()], ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]);
        const w = sd.get("weight") as Tensor;
        assert.ok(!w.requiresGrad);
        assert.equal(w.storageId, bn.weight?.storageId);
        const nbt = sd.get("num_batches_tracked") as Tensor;
        assert.equal(nbt.dtype, "int64");
        assert.deepEqual([...nbt.shape], []);
      });
      assert.ok(!bn.weight?.isDisposed, "disposing state-dict handles leaves the module's tensors alone");
    });
  });

  test("reports missing, unexpected and mismatched keys by name and copies nothing", () => {
    manualSeed(1);
    withModel(resnet18({ width: 4, numClasses: 3 }), (model) => {
      scope(() => {
        const other = resnet18({ width: 4, numClasses: 7 });
        const sd = other.stateDict();
        other.dispose();
        sd.delete("layer1.0.bn1.running_mean");
        sd.set("layer9.weight", zeros([1]));
        const before = model.conv1.weight.clone();
        let error: unknown;
        try {
          model.loadStateDict(sd);
        } catch (e) {
          error = e;
        }
        assert.ok(error instanceof StateDictError);
        assert.deepEqual(error.missingKeys, ["layer1.0.bn1.running_mean"]);
        assert.deepEqual(error.unexpectedKeys, ["layer9.weight"]);
        assert.deepEqual(
          error.mismatchedKeys.map((m) => [m.key, [...m.expected], [...m.got]]),
          [
            ["fc.weight", [3, 32], [7, 32]],
            ["fc.bias", [3], [7]],
          ],
        );
        assert.match(error.message, /Missing key\(s\) in state_dict: "layer1\.0\.bn1\.running_mean"/);
        assert.match(error.message, /Unexpected key\(s\) in state_dict: "layer9\.weight"/);
        assert.match(
          error.message,
          /size mismatch for fc\.weight: copying a param with shape \[7, 32\] from checkpoint, the shape in current model is \[3, 32\]/,
        );
        assert.ok(model.conv1.weight.equal(before), "nothing was copied");

        // Not strict: shape mismatches still throw (as PyTorch); without them the rest loads.
        assert.throws(
          () => model.loadStateDict(sd, { strict: false }),
          (e: unknown) => e instanceof StateDictError && e.mismatchedKeys.length === 2 && e.missingKeys.length === 0,
        );
        sd.delete("fc.weight");
        sd.delete("fc.bias");
        const result = model.loadStateDict(sd, { strict: false });
        assert.deepEqual(result, {
          missingKeys: ["layer1.0.bn1.running_mean", "fc.weight", "fc.bias"],
          unexpectedKeys: ["layer9.weight"],
        });
        assert.ok(model.conv1.weight.equal(sd.get("conv1.weight") as Tensor), "the present keys were copied");
        assert.ok(!model.conv1.weight.equal(before));
      });
    });
  });

  test("stripPrefix loads an official MoCo-style checkpoint's encoder_q; plain objects and other dtypes are accepted", () => {
    manualSeed(2);
    withModel(resnet18({ width: 4, numClasses: 0 }), (source) => {
      withModel(resnet18({ width: 4, numClasses: 0 }), (target) => {
        scope(() => {
          const checkpoint: Record<string, Tensor> = {};
          for (const [k, v] of source.stateDict()) {
            checkpoint[`module.encoder_q.${k}`] = k.endsWith("num_batches_tracked") ? v.add(3) : v.double();
            checkpoint[`module.encoder_k.${k}`] = zerosLikeOf(v);
          }
          checkpoint["module.queue"] = randn([8, 16]);
          checkpoint["module.queue_ptr"] = zeros([1], { dtype: "int64" });
          const result = target.loadStateDict(checkpoint, { stripPrefix: "module.encoder_q." });
          assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
          for (const [k, v] of source.stateDict()) {
            const loaded = paramOrBuffer(target, k);
            assert.equal(loaded.dtype, v.dtype, `${k} keeps its dtype`);
            if (k.endsWith("num_batches_tracked")) assert.equal(loaded.item(), v.item() + 3);
            else assert.ok(loaded.equal(v), k);
          }
          assert.throws(
            () => target.loadStateDict(checkpoint, { stripPrefix: "module.encoder_x." }),
            /Missing key\(s\)/,
          );
          assert.throws(
            () => target.loadStateDict({ "conv1.weight": 3 as unknown as Tensor }, { strict: false }),
            /value of "conv1\.weight" must be a Tensor/,
          );
        });
      });
    });
  });
});

function zerosLikeOf(t: Tensor): Tensor {
  return zeros(t.shape, { dtype: t.dtype });
}

function paramOrBuffer(m: AnyModule, name: string): Tensor {
  return m.namedParameters().find(([n]) => n === name)?.[1] ?? m.getBuffer(name);
}

describe("BatchNorm2d", () => {
  test("num_batches_tracked counts training forwards only; eval uses and keeps the running stats", () => {
    withModel(new BatchNorm2d(2), (bn) => {
      scope(() => {
        bn.forward(randn([4, 2, 3, 3]));
        bn.forward(randn([4, 2, 3, 3]));
        assert.equal(bn.numBatchesTracked?.item(), 2);
        const mean = (bn.runningMean as Tensor).clone();
        bn.eval();
        const x = randn([4, 2, 3, 3]);
        const y = bn.forward(x);
        assert.equal(bn.numBatchesTracked?.item(), 2);
        assert.ok((bn.runningMean as Tensor).equal(mean));
        const expected = x
          .sub((bn.runningMean as Tensor).view(1, 2, 1, 1))
          .div((bn.runningVar as Tensor).add(1e-5).sqrt().view(1, 2, 1, 1));
        assert.ok(y.allclose(expected, 1e-5, 1e-6));
      });
    });
  });

  test("names the problem: one value per channel, wrong channels, indivisible split batch", () => {
    withModel(new BatchNorm2d(3), (bn) => {
      scope(() => {
        assert.throws(() => bn.forward(randn([1, 3, 1, 1])), /more than 1 value per channel/);
        assert.throws(() => bn.forward(randn([2, 4, 2, 2])), /expected 3 channels/);
        assert.throws(() => bn.forward(randn([2, 3, 4])), /expected 4-d input/);
      });
    });
    withModel(new SplitBatchNorm(3, 4), (bn) => {
      scope(() =>
        assert.throws(() => bn.forward(randn([6, 3, 2, 2])), /batch size \(6\) must be divisible by numSplits \(4\)/),
      );
    });
  });
});

describe("ResNet options", () => {
  test("CIFAR stem, widths, no fc, input channels, unknown options", () => {
    withModel(resnet18({ cifarStem: true, width: 16, numClasses: 0, inChannels: 1 }), (model) => {
      assert.deepEqual([...model.conv1.weight.shape], [16, 1, 3, 3]);
      assert.deepEqual(model.conv1.stride, [1, 1]);
      assert.ok(model.maxpool instanceof Identity);
      assert.ok(model.fc instanceof Identity);
      assert.equal(model.featureDim, 128);
      assert.deepEqual([...model.getParameter("layer4.1.conv2.weight").shape], [128, 128, 3, 3]);
      scope(() => assert.deepEqual([...model.forward(randn([2, 1, 28, 28])).shape], [2, 128]));
    });
    withModel(resnet50({ widthMultiplier: 0.125, numClasses: 3 }), (model) => {
      assert.equal(model.width, 8);
      assert.equal(model.featureDim, 256);
      assert.deepEqual([...model.getParameter("layer1.0.conv3.weight").shape], [32, 8, 1, 1]);
      assert.deepEqual([...model.getParameter("layer2.0.conv2.weight").shape], [16, 16, 3, 3]);
      assert.deepEqual(model.getSubmodule("layer2.0.conv2").typeName, "Conv2d");
      assert.deepEqual((model.getSubmodule("layer2.0.conv2") as Conv2d).stride, [2, 2], "stride on the 3×3 (v1.5)");
      assert.deepEqual((model.getSubmodule("layer2.0.conv1") as Conv2d).stride, [1, 1]);
    });
    assert.throws(() => resnet18({ numClases: 10 } as never), /unknown option "numClases"/);
    assert.throws(() => resnet18({ width: 8, widthMultiplier: 0.5 }), /not both/);
  });

  test("zeroInitResidual zeroes the last BN weight of each block; other BN weights are 1", () => {
    for (const [build, last] of [
      [() => resnet18({ width: 4, zeroInitResidual: true }), "bn2"],
      [() => resnet50({ width: 4, zeroInitResidual: true }), "bn3"],
    ] as const) {
      withModel(build(), (model) => {
        scope(() => {
          for (const m of model.modules()) {
            if (!(m instanceof BasicBlock || m instanceof Bottleneck)) continue;
            const zeroed = (m as unknown as Record<string, BatchNorm2d>)[last] as BatchNorm2d;
            assert.equal((zeroed.weight as Tensor).abs().sum().item(), 0);
            assert.equal((m.bn1.weight as Tensor).sum().item(), m.bn1.numFeatures);
          }
        });
      });
    }
  });
});

describe("memory", () => {
  test("building, copying and disposing returns the live tensor count to its baseline", () => {
    const baseline = liveTensors();
    const model = resnet18({ width: 8 });
    assert.ok(liveTensors() > baseline);
    const copy = model.copy();
    model.dispose();
    copy.dispose();
    model.dispose();
    assert.equal(liveTensors(), baseline);
    assert.ok(model.isDisposed);
  });

  test("a model built inside a scope survives it; forward/backward and stateDict inside scopes leak nothing", () => {
    const model = scope(() => resnet18({ width: 8, numClasses: 4, normLayer: splitBatchNorm(2) }));
    try {
      const x = randn([4, 3, 32, 32]);
      const y = randint(0, 4, [4]);
      const baseline = liveTensors();
      for (let i = 0; i < 3; i++) {
        scope(() => {
          const loss = F.crossEntropy(model.forward(x), y);
          loss.backward();
          model.stateDict();
          model.namedParameters().map(([, p]) => p.grad);
        });
        model.zeroGrad();
        assert.equal(liveTensors(), baseline, `step ${i}`);
      }
      model.eval();
      scope(() => {
        noGrad(() => model.forward(x));
      });
      assert.equal(liveTensors(), baseline, "eval forward");
      const out = scope(() => new Sequential(new Flatten(), new Identity()).forward(x));
      assert.equal(liveTensors(), baseline + 1, "a Sequential leaves only its result");
      assert.ok(!x.isDisposed, "a Sequential never frees its input");
      out.dispose();
      x.dispose();
      y.dispose();
    } finally {
      model.dispose();
    }
  });

  test("toDevice('cpu') keeps the tensors; toString prints the tree", () => {
    withModel(new Net(), (net) => {
      const before = net.parameters();
      net.toDevice("cpu");
      assert.deepEqual(net.parameters(), before);
      const text = String(net);
      assert.match(text, /\(features\): Sequential\(/);
      assert.match(text, /\(0\): Conv2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\), padding=\(1, 1\)\)/);
      assert.match(text, /\(1\): Linear\(in_features=64, out_features=5, bias=False\)/);
    });
  });
});
