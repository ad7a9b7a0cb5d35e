// src/nn against PyTorch/torchvision, run by the test itself (test/py/nn_parity.py, Debian's
// helpers/python.ts's PYTHON, Debian's with torch 1.13 and torchvision 0.14). Weights and results cross in torch.save
// files written and read by src/torch/serialize, so the checkpoint path is exercised both ways:
// our state dicts load into torchvision with strict=True, torchvision's into ours with strict.
//
// Tolerances (float32, same libtorch and the same thread count on both sides):
// |ours - torch| <= 1e-4·|torch| + 1e-5·max|torch| per tensor; integer buffers exactly; the
// random initialisation exactly (bit for bit).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  BatchNorm2d,
  Conv2d,
  Linear,
  MaxPool2d,
  AdaptiveAvgPool2d,
  Flatten,
  SplitBatchNorm,
  resnet,
  splitBatchNorm,
  type ResNet,
  type ResNetArch,
  type BatchNormOptions,
} from "../src/nn/index.js";
import { F, Tensor, keep, manualSeed, noGrad, randint, randn, scope, setNumThreads } from "../src/torch/index.js";
import { load, save } from "../src/torch/serialize/index.js";
import { PYTHON } from "./helpers/python.js";

const SCRIPT = join(import.meta.dirname, "py", "nn_parity.py");
const THREADS = 2;
setNumThreads(THREADS);

// ---- comparison -------------------------------------------------------------------------------

const RTOL = 1e-4;
const ATOL_REL = 1e-5;

/** Asserts ours ≈ theirs (floating) or ours == theirs (integers), naming `what`. */
function expectClose(ours: Tensor | null, theirs: unknown, what: string): void {
  assert.ok(theirs instanceof Tensor, `${what}: PyTorch gave no tensor`);
  assert.ok(ours instanceof Tensor, `${what}: ours is ${String(ours)}`);
  assert.deepEqual([...ours.shape], [...theirs.shape], `${what}: shape`);
  assert.equal(ours.dtype, theirs.dtype, `${what}: dtype`);
  scope(() => {
    if (ours.dtype !== "float32" && ours.dtype !== "float64") {
      assert.ok(ours.equal(theirs), `${what}: ${ours.toString()} != ${theirs.toString()}`);
      return;
    }
    const diff = ours.sub(theirs).abs();
    const scale = theirs.numel === 0 ? 0 : theirs.abs().max().item();
    const ok = diff
      .le(
        theirs
          .abs()
          .mul(RTOL)
          .add(ATOL_REL * scale + 1e-30),
      )
      .all()
      .item();
    if (!ok) {
      assert.fail(
        `${what}: max |diff| ${diff.max().item().toExponential(3)} with max |torch| ${scale.toExponential(3)}`,
      );
    }
  });
}

function expectEqual(ours: Tensor, theirs: unknown, what: string): void {
  assert.ok(theirs instanceof Tensor, `${what}: PyTorch gave no tensor`);
  assert.deepEqual([...ours.shape], [...theirs.shape], `${what}: shape`);
  assert.equal(ours.dtype, theirs.dtype, `${what}: dtype`);
  assert.ok(ours.equal(theirs), `${what}: not bit-identical`);
}

type Loaded = Record<string, unknown>;

function loadRecord(path: string): Loaded {
  const value = load(path);
  assert.ok(typeof value === "object" && value !== null && !(value instanceof Tensor), `${path}: not a dict`);
  return value as Loaded;
}

function record(value: unknown, what: string): Loaded {
  assert.ok(typeof value === "object" && value !== null, `${what}: not a dict`);
  return (value instanceof Map ? Object.fromEntries(value) : value) as Loaded;
}

// ---- the cases --------------------------------------------------------------------------------

interface CaseConfig {
  arch: ResNetArch;
  numClasses: number;
  cifarStem?: boolean;
  width?: number;
  inChannels?: number;
  /** SplitBatchNorm with this many splits (0: BatchNorm2d). */
  splits?: number;
}

interface Case {
  name: string;
  config: CaseConfig;
  input: number[];
}

const CASES: Case[] = [
  { name: "resnet18", config: { arch: "resnet18", numClasses: 10 }, input: [4, 3, 64, 64] },
  { name: "resnet18-cifar", config: { arch: "resnet18", numClasses: 10, cifarStem: true }, input: [4, 3, 32, 32] },
  { name: "resnet50", config: { arch: "resnet50", numClasses: 10 }, input: [2, 3, 64, 64] },
  {
    name: "resnet18-w16-gray-splitbn-nofc",
    config: { arch: "resnet18", numClasses: 0, cifarStem: true, width: 16, inChannels: 1, splits: 2 },
    input: [8, 1, 28, 28],
  },
  {
    name: "resnet50-w8-cifar-splitbn",
    config: { arch: "resnet50", numClasses: 10, cifarStem: true, width: 8, splits: 4 },
    input: [8, 3, 16, 16],
  },
];

const BN_CASES: { name: string; config: BatchNormOptions & { numFeatures: number } }[] = [
  { name: "bn-cumulative", config: { numFeatures: 3, momentum: null } },
  { name: "bn-noaffine", config: { numFeatures: 3, momentum: 0.3, affine: false } },
  { name: "bn-nostats", config: { numFeatures: 3, trackRunningStats: false } },
];

const TV = [
  { arch: "resnet18" as const, seed: 7, shape: [2, 3, 64, 64] },
  { arch: "resnet50" as const, seed: 11, shape: [2, 3, 64, 64] },
];
const ARCHS: ResNetArch[] = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"];
const LAYERS_SEED = 3;

function buildCase(c: CaseConfig): ResNet {
  return resnet(c.arch, {
    numClasses: c.numClasses,
    ...(c.cifarStem === undefined ? {} : { cifarStem: c.cifarStem }),
    ...(c.width === undefined ? {} : { width: c.width }),
    ...(c.inChannels === undefined ? {} : { inChannels: c.inChannels }),
    ...(c.splits ? { normLayer: splitBatchNorm(c.splits) } : {}),
  });
}

/** Non-trivial BN parameters and statistics, so that eval mode and the updates are really tested. */
function perturbNorms(model: ResNet): void {
  noGrad(() => {
    for (const m of model.modules()) {
      if (!(m instanceof BatchNorm2d)) continue;
      m.weight?.uniform_(0.5, 1.5);
      m.bias?.normal_(0, 0.2);
      m.runningMean?.normal_(0, 0.2);
      m.runningVar?.uniform_(0.5, 2);
      m.numBatchesTracked?.fill_(5);
    }
  });
}

const dir = mkdtempSync(join(tmpdir(), "moco-nn-parity-"));
const models = new Map<string, { model: ResNet; x: Tensor; target: Tensor }>();
const held: Tensor[] = [];
let pythonSeconds = 0;
let pythonTimings = "";

function hold<T extends Tensor>(t: T): T {
  held.push(keep(t));
  return t;
}

before(() => {
  manualSeed(1234);
  for (const c of CASES) {
    const model = buildCase(c.config);
    perturbNorms(model);
    const x = hold(randn(c.input));
    const classes = c.config.numClasses > 0 ? c.config.numClasses : 10;
    const target = hold(randint(0, classes, [c.input[0] as number]));
    models.set(c.name, { model, x, target });
    scope(() => save({ state_dict: model.stateDict(), x, target }, join(dir, `${c.name}.in.pt`)));
  }
  for (const c of BN_CASES) {
    const inputs = [0, 1, 2].map((i) =>
      hold(
        randn([4, 3, 5, 5])
          .mul(1 + i)
          .add(i - 1),
      ),
    );
    save({ inputs }, join(dir, `${c.name}.in.pt`));
  }
  save(
    {
      x: hold(randn([8, 6, 5, 5]).mul(2).add(0.5)),
      weight: hold(randn([6])),
      bias: hold(randn([6])),
      running_mean: hold(randn([6])),
      running_var: hold(randn([6]).abs().add(0.5)),
      upstream: hold(randn([8, 6, 5, 5])),
      splits: 4,
      momentum: 0.1,
      eps: 1e-5,
    },
    join(dir, "split.in.pt"),
  );
  save(
    { x4: hold(randn([2, 4, 9, 9])), x3: hold(randn([2, 3, 5, 4])), v: hold(randn([5, 7])) },
    join(dir, "layers.in.pt"),
  );
  const request = {
    threads: THREADS,
    cases: CASES.map((c) => ({ name: c.name, config: c.config })),
    bn: BN_CASES,
    tv: TV,
    split: true,
    keys: ARCHS,
    layers: [{ seed: LAYERS_SEED }],
  };
  writeFileSync(join(dir, "request.json"), JSON.stringify(request));
  const started = performance.now();
  const run = spawnSync(PYTHON, [SCRIPT, dir], { encoding: "utf8", timeout: 300_000 });
  pythonSeconds = (performance.now() - started) / 1000;
  if (run.error !== undefined) throw new Error(`could not run ${PYTHON} ${SCRIPT}: ${run.error.message}`);
  if (run.status !== 0) throw new Error(`${PYTHON} ${SCRIPT} exited with status ${run.status}:\n${run.stderr}`);
  pythonTimings = run.stderr.trim();
});

after(() => {
  for (const { model } of models.values()) model.dispose();
  for (const t of held) t.dispose();
  rmSync(dir, { recursive: true, force: true });
  console.log(`# nn_parity.py took ${pythonSeconds.toFixed(1)} s (${pythonTimings})`);
});

describe("ResNet parity with torchvision", () => {
  for (const c of CASES) {
    test(`${c.name}: loads into torchvision strictly; eval output, train output, loss, every gradient and BN buffer equal`, () => {
      const entry = models.get(c.name);
      assert.ok(entry !== undefined);
      const { model, x, target } = entry;
      scope(() => {
        const theirs = loadRecord(join(dir, `${c.name}.out.pt`));
        model.eval();
        const evalOut = noGrad(() => model.forward(x));
        expectClose(evalOut, theirs.eval, "eval output");

        model.train();
        const y = model.forward(x);
        const loss = F.crossEntropy(y, target);
        loss.backward();
        expectClose(y, theirs.train, "train output");
        expectClose(loss, theirs.loss, "loss");

        const named = model.namedParameters();
        assert.deepEqual(
          named.map(([n]) => n),
          theirs.param_names,
          "named_parameters order",
        );
        const grads = record(theirs.grads, "grads");
        for (const [name, p] of named) expectClose(p.grad, grads[name], `grad of ${name}`);

        const buffers = record(theirs.buffers, "buffers");
        const ours = model.namedBuffers();
        assert.deepEqual(
          ours.map(([n]) => n),
          Object.keys(buffers),
          "named_buffers",
        );
        for (const [key, t] of ours) expectClose(t, buffers[key], `${key} after one training forward`);
      });
      model.zeroGrad();
    });
  }
});

test("stateDict keys, shapes and dtypes equal torchvision's, in order (resnet18 ... resnet152)", () => {
  const theirs = JSON.parse(readFileSync(join(dir, "keys.json"), "utf8")) as Record<
    string,
    [string, number[], string][]
  >;
  for (const arch of ARCHS) {
    const model = resnet(arch);
    const ours = scope(() => [...model.stateDict()].map(([k, t]) => [k, [...t.shape], t.dtype]));
    model.dispose();
    assert.deepEqual(ours, theirs[arch], arch);
  }
});

describe("torchvision -> ours", () => {
  for (const { arch, seed } of TV) {
    test(`manualSeed(${seed}) + ${arch}() equals torch.manual_seed(${seed}) + torchvision's bit for bit; a trained torchvision state dict loads strictly, eval outputs equal`, () => {
      scope(() => {
        const theirs = loadRecord(join(dir, `tv_${arch}.pt`));
        const state = record(theirs.state_dict, "state_dict");
        manualSeed(seed);
        const seeded = resnet(arch);
        try {
          // Python's training forward ran under no_grad: its parameters are still the initial ones.
          for (const [key, p] of seeded.namedParameters()) expectEqual(p, state[key], `${arch} init ${key}`);
        } finally {
          seeded.dispose();
        }
        manualSeed(seed + 1);
        const model = resnet(arch);
        try {
          const result = model.loadStateDict(state as Record<string, Tensor>);
          assert.deepEqual(result, { missingKeys: [], unexpectedKeys: [] });
          const ours = model.stateDict();
          assert.deepEqual([...ours.keys()], Object.keys(state));
          for (const [key, t] of ours) expectEqual(t, state[key], `${arch} loaded ${key}`);
          model.eval();
          const y = noGrad(() => model.forward(theirs.x as Tensor));
          expectClose(y, theirs.eval, `${arch} eval output`);
        } finally {
          model.dispose();
        }
      });
    });
  }
});

test("Conv2d and Linear: PyTorch's default init bit for bit (same seed), and the same outputs; pools and flatten", () => {
  scope(() => {
    const inputs = loadRecord(join(dir, "layers.in.pt"));
    const theirs = loadRecord(join(dir, "layers.out.pt"));
    manualSeed(LAYERS_SEED);
    const conv = new Conv2d(4, 6, 3, { stride: 2, padding: 1, dilation: 2, groups: 2 });
    const convNb = new Conv2d(3, 5, [3, 1], { bias: false });
    const lin = new Linear(7, 3);
    try {
      for (const [name, m] of [
        ["conv", conv],
        ["conv_nb", convNb],
        ["lin", lin],
      ] as const) {
        const sd = record(theirs[name], name);
        const ours = m.stateDict();
        assert.deepEqual([...ours.keys()], Object.keys(sd));
        for (const [k, t] of ours) expectEqual(t, sd[k], `${name}.${k}`);
      }
      const x4 = inputs.x4 as Tensor;
      expectClose(conv.forward(x4), theirs.conv_out, "conv output");
      expectClose(convNb.forward(inputs.x3 as Tensor), theirs.conv_nb_out, "conv (no bias) output");
      expectClose(lin.forward(inputs.v as Tensor), theirs.lin_out, "linear output");
      expectClose(new MaxPool2d(3, { stride: 2, padding: 1, ceilMode: true }).forward(x4), theirs.pool_out, "max pool");
      expectClose(new AdaptiveAvgPool2d([2, 3]).forward(x4), theirs.gap_out, "adaptive avg pool");
      expectClose(new Flatten().forward(x4), theirs.flat_out, "flatten");
    } finally {
      for (const m of [conv, convNb, lin]) m.dispose();
    }
  });
});

describe("BatchNorm2d variants over three training forwards, then eval", () => {
  for (const c of BN_CASES) {
    test(c.name, () => {
      const { numFeatures, ...options } = c.config;
      const bn = new BatchNorm2d(numFeatures, options);
      try {
        scope(() => {
          const inputs = loadRecord(join(dir, `${c.name}.in.pt`)).inputs as Tensor[];
          const theirs = loadRecord(join(dir, `${c.name}.out.pt`));
          const outs = theirs.outs as Tensor[];
          inputs.forEach((x, i) => expectClose(bn.forward(x), outs[i], `train forward ${i}`));
          bn.eval();
          expectClose(bn.forward(inputs[0] as Tensor), outs[3], "eval forward");
          const state = record(theirs.state, "state");
          const ours = bn.stateDict();
          assert.deepEqual([...ours.keys()], Object.keys(state));
          for (const [k, t] of ours) expectClose(t, state[k], k);
        });
      } finally {
        bn.dispose();
      }
    });
  }
});

describe("SplitBatchNorm", () => {
  test("training equals a plain BatchNorm per split in PyTorch (output, gradients, averaged running stats)", () => {
    scope(() => {
      const input = loadRecord(join(dir, "split.in.pt"));
      const theirs = loadRecord(join(dir, "split.out.pt"));
      const bn = new SplitBatchNorm(6, input.splits as number, {
        momentum: input.momentum as number,
        eps: input.eps as number,
      });
      try {
        noGrad(() => {
          bn.weight?.copy_(input.weight as Tensor);
          bn.bias?.copy_(input.bias as Tensor);
          bn.runningMean?.copy_(input.running_mean as Tensor);
          bn.runningVar?.copy_(input.running_var as Tensor);
        });
        const x = (input.x as Tensor).clone().requiresGrad_();
        const y = bn.forward(x);
        y.mul(input.upstream as Tensor)
          .sum()
          .backward();
        expectClose(y, theirs.out, "output");
        expectClose(x.grad, theirs.grad_x, "grad of the input");
        expectClose(bn.weight?.grad ?? null, theirs.grad_weight, "grad of weight");
        expectClose(bn.bias?.grad ?? null, theirs.grad_bias, "grad of bias");
        expectClose(bn.runningMean, theirs.running_mean, "running_mean");
        expectClose(bn.runningVar, theirs.running_var, "running_var");
        assert.equal(bn.numBatchesTracked?.item(), 0, "num_batches_tracked is not incremented, as in the MoCo demo");
      } finally {
        bn.dispose();
      }
    });
  });

  test("eval mode equals plain BatchNorm2d with the same parameters and statistics", () => {
    manualSeed(5);
    const split = new SplitBatchNorm(4, 2);
    const plain = new BatchNorm2d(4);
    try {
      scope(() => {
        noGrad(() => {
          split.weight?.uniform_(0.5, 1.5);
          split.bias?.normal_();
          split.runningMean?.normal_();
          split.runningVar?.uniform_(0.5, 2);
        });
        plain.loadStateDict(split.stateDict());
        split.eval();
        plain.eval();
        const x = randn([6, 4, 3, 3]);
        assert.ok(split.forward(x).equal(plain.forward(x)));
        assert.deepEqual(split.stateDictKeys(), plain.stateDictKeys());
      });
    } finally {
      split.dispose();
      plain.dispose();
    }
  });
});
