// channels_last against PyTorch 1.13, run by the test: conv, batch norm, ReLU and pooling on
// channels-last inputs give NCHW's values (float32 tolerance of test/helpers/pytorch.ts) and keep
// channels-last exactly where PyTorch's outputs do (`isContiguousIn("channelsLast")` vs Python's
// `is_contiguous(memory_format=torch.channels_last)`, also for gradients); Module.to converts the 4-d
// weights in place; a ResNet forward/backward in channels-last equals the NCHW one.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BatchNorm2d, Conv2d, SplitBatchNorm, resnet18, splitBatchNorm, type ResNet } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import {
  F,
  Tensor,
  liveTensors,
  manualSeed,
  randint,
  randn,
  scope,
  tensor,
  type MemoryFormat,
} from "../src/torch/index.js";
import { assertMatchesPython, crossCheck, op, runPython } from "./helpers/pytorch.js";

manualSeed(3131);

const CL = "torch.channels_last";
const cl = (t: Tensor): Tensor => t.contiguous({ memoryFormat: "channelsLast" });
/** Each output with whether it is channels-last, as the Python side reports it. */
const layouts = (...ts: Tensor[]): unknown[] => ts.flatMap((t) => [t, t.isContiguousIn("channelsLast")]);
const pyLayouts = (expr: string): string =>
  `(lambda outs: [x for o in outs for x in (o, o.is_contiguous(memory_format=${CL}))])(${expr})`;

crossCheck("channels_last: values and output layouts equal PyTorch's", [
  op({
    name: "contiguous and strides",
    expr: `(lambda y: [y, list(y.stride()), y.is_contiguous(), y.is_contiguous(memory_format=${CL})])(x.contiguous(memory_format=${CL}))`,
    inputs: { x: randn([2, 3, 4, 5]) },
    ours: ({ x }) => {
      const y = cl(x);
      return [y, [...y.strides], y.isContiguous, y.isContiguousIn("channelsLast")];
    },
  }),
  op({
    name: "conv2d (channels-last input and weight) equals NCHW",
    expr: pyLayouts(
      `[F.conv2d(x.contiguous(memory_format=${CL}), w.contiguous(memory_format=${CL}), b, 1, 1), F.conv2d(x, w, b, 1, 1)]`,
    ),
    inputs: { x: randn([2, 3, 9, 9]), w: randn([6, 3, 3, 3]), b: randn([6]) },
    ours: ({ x, w, b }) => layouts(F.conv2d(cl(x), cl(w), b, { padding: 1 }), F.conv2d(x, w, b, { padding: 1 })),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "conv2d: channels-last input, NCHW weight",
    expr: pyLayouts(`[F.conv2d(x.contiguous(memory_format=${CL}), w, None, 2, 1)]`),
    inputs: { x: randn([2, 4, 8, 8]), w: randn([5, 4, 3, 3]) },
    ours: ({ x, w }) => layouts(F.conv2d(cl(x), w, null, { stride: 2, padding: 1 })),
  }),
  op({
    name: "batch norm (training and eval)",
    expr: pyLayouts(
      `(lambda y: [F.batch_norm(y, rm, rv, g, be, True, 0.1, 1e-5), F.batch_norm(y, rm, rv, g, be, False, 0.1, 1e-5)])(x.contiguous(memory_format=${CL}))`,
    ),
    inputs: { x: randn([4, 5, 6, 6]), rm: randn([5]), rv: randn([5]).abs(), g: randn([5]), be: randn([5]) },
    ours: ({ x, rm, rv, g, be }) => {
      const y = cl(x);
      const options = { weight: g, bias: be, momentum: 0.1, eps: 1e-5 };
      return layouts(F.batchNorm(y, rm, rv, { ...options, training: true }), F.batchNorm(y, rm, rv, options));
    },
    grad: ["x", "g", "be"],
    after: ["rm", "rv"],
  }),
  op({
    name: "relu",
    expr: pyLayouts(`[F.relu(x.contiguous(memory_format=${CL}))]`),
    inputs: { x: randn([2, 3, 5, 5]) },
    ours: ({ x }) => layouts(F.relu(cl(x))),
    grad: ["x"],
  }),
  op({
    name: "max pool, avg pool, adaptive avg pool",
    expr: pyLayouts(
      `(lambda y: [F.max_pool2d(y, 3, 2, 1), F.avg_pool2d(y, 2, 2), F.adaptive_avg_pool2d(y, (1, 1))])(x.contiguous(memory_format=${CL}))`,
    ),
    inputs: { x: randn([2, 4, 8, 8]) },
    ours: ({ x }) => {
      const y = cl(x);
      return layouts(
        F.maxPool2d(y, 3, { stride: 2, padding: 1 }),
        F.avgPool2d(y, 2, { stride: 2 }),
        F.adaptiveAvgPool2d(y, [1, 1]),
      );
    },
    grad: ["x"],
  }),
  op({
    name: "conv → BN → ReLU → add (a residual unit)",
    expr: pyLayouts(
      `(lambda y: (lambda z: [z, F.relu(z + y)])(F.relu(F.batch_norm(F.conv2d(y, w.contiguous(memory_format=${CL}), None, 1, 1), None, None, None, None, True, 0.1, 1e-5))))(x.contiguous(memory_format=${CL}))`,
    ),
    inputs: { x: randn([2, 4, 6, 6]), w: randn([4, 4, 3, 3]) },
    ours: ({ x, w }) => {
      const y = cl(x);
      const z = F.relu(F.batchNorm(F.conv2d(y, cl(w), null, { padding: 1 }), null, null, { training: true }));
      return layouts(z, F.relu(z.add(y)));
    },
    grad: ["x", "w"],
  }),
]);

describe("channels_last: gradients, Module.to and a ResNet", () => {
  test("suggestedMemoryFormat follows the strides (libtorch's suggest_memory_format)", () => {
    scope(() => {
      const x = randn([2, 3, 4, 5]);
      assert.equal(x.suggestedMemoryFormat, "contiguous");
      assert.equal(cl(x).suggestedMemoryFormat, "channelsLast");
      assert.equal(x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2).suggestedMemoryFormat, "channelsLast");
      assert.throws(() => x.contiguous({ memoryFormat: "rowMajor" as MemoryFormat }), /memoryFormat must be one of/);
    });
  });

  test("gradients of channels-last conv inputs and weights keep PyTorch's layout", () => {
    scope(() => {
      const x = cl(randn([2, 3, 7, 7])).requiresGrad_();
      const w = cl(randn([4, 3, 3, 3])).requiresGrad_();
      F.conv2d(x, w, null, { padding: 1 }).sum().backward();
      const [python] = runPython([
        {
          name: "grad layouts",
          expr: `(lambda x, w: (F.conv2d(x, w, None, 1, 1).sum().backward(), [x.grad, w.grad, x.grad.is_contiguous(memory_format=${CL}), w.grad.is_contiguous(memory_format=${CL})])[1])(x.detach().contiguous(memory_format=${CL}).requires_grad_(), w.detach().contiguous(memory_format=${CL}).requires_grad_())`,
          inputs: { x: x.detach(), w: w.detach() },
        },
      ]);
      assert.equal(python?.error, undefined, python?.error);
      const gx = x.grad as Tensor;
      const gw = w.grad as Tensor;
      assertMatchesPython(
        [gx, gw, gx.isContiguousIn("channelsLast"), gw.isContiguousIn("channelsLast")],
        python!.value,
        "grads",
      );
    });
  });

  test("Module.to({ memoryFormat }) converts 4-d parameters in place and leaves the rest", () => {
    scope(() => {
      const conv = new Conv2d(3, 8, 3, { padding: 1 });
      const bn = new BatchNorm2d(8);
      const weight = conv.weight;
      const before = weight.clone();
      const opt = new SGD([...conv.parameters(), ...bn.parameters()], { lr: 0.1, momentum: 0.9 });
      assert.equal(conv.to({ memoryFormat: "channelsLast" }), conv);
      bn.to({ memoryFormat: "channelsLast" });
      assert.equal(conv.weight, weight, "the same Tensor object (optimizers keep it)");
      assert.equal(weight.isContiguousIn("channelsLast"), true);
      assert.equal(weight.isContiguous, false);
      assert.equal(weight.requiresGrad, true);
      assert.ok(weight.equal(before), "values unchanged");
      for (const t of [conv.bias, bn.weight, bn.bias, bn.runningMean]) assert.equal(t?.isContiguous, true);
      // The optimizer steps the converted tensors.
      const x = cl(randn([2, 3, 5, 5]));
      const y = bn.forward(conv.forward(x));
      assert.equal(y.isContiguousIn("channelsLast"), true);
      y.mul(y).sum().backward();
      opt.step();
      assert.equal(weight.isContiguousIn("channelsLast"), true, "the step keeps the layout");
      assert.ok(!weight.equal(before), "the step changed the weight");
      conv.to({ memoryFormat: "contiguous" });
      assert.equal(weight.isContiguous, true);
      assert.throws(() => conv.to({ dtype: "int64" }), /only floating dtypes/);
      opt.dispose();
      conv.dispose();
      bn.dispose();
    });
  });

  test("Module.to({ dtype }) casts floating parameters and buffers, not integer ones", () => {
    scope(() => {
      const bn = new BatchNorm2d(4);
      bn.to({ dtype: "bfloat16" });
      assert.equal(bn.weight?.dtype, "bfloat16");
      assert.equal(bn.runningVar?.dtype, "bfloat16");
      assert.equal(bn.numBatchesTracked?.dtype, "int64");
      bn.dispose();
    });
  });

  test("ResNet-18 forward and backward in channels-last equal NCHW", () => {
    compareLayouts(() => resnet18({ numClasses: 10, width: 8, cifarStem: true, inChannels: 1 }), 4);
  });

  test("ResNet-18 with split BN (4 splits) in channels-last equals NCHW", () => {
    compareLayouts(() => {
      const model = resnet18({
        numClasses: 10,
        width: 8,
        cifarStem: true,
        inChannels: 1,
        normLayer: splitBatchNorm(4),
      });
      assert.equal(model.batchSplits, 4);
      assert.equal(model.bn1 instanceof SplitBatchNorm && model.bn1.order, "consecutive");
      return model;
    }, 8);
  });

  test("split BN in consecutive order = the demo's interleaved order on the reordered batch, in either layout", () => {
    const baseline = liveTensors();
    scope(() => {
      manualSeed(5);
      const x = randn([8, 3, 5, 5]).mul_(2).add_(1);
      const grad = randn([8, 3, 5, 5]);
      // The demo's split s = samples n with n mod 4 = s; consecutive split s = samples 2s, 2s + 1.
      const toBlocks = tensor([0, 4, 1, 5, 2, 6, 3, 7], { dtype: "int64" });
      const demo = new SplitBatchNorm(3, 4);
      const ours = demo.copy();
      ours.order = "consecutive";
      for (const layer of [demo, ours]) {
        layer.weight?.detach().uniform_(0.5, 1.5);
        layer.bias?.detach().normal_(0, 0.2);
      }
      ours.loadStateDict(demo.stateDict());
      const xa = x.clone().requiresGrad_(true);
      const a = demo.forward(xa);
      a.backward(grad);
      for (const format of ["contiguous", "channelsLast"] as const) {
        const copy = ours.copy();
        const xb = x.indexSelect(0, toBlocks).contiguous({ memoryFormat: format }).requiresGrad_(true);
        const b = copy.forward(xb);
        b.backward(grad.indexSelect(0, toBlocks).contiguous({ memoryFormat: format }));
        assert.ok(b.allclose(a.indexSelect(0, toBlocks), 1e-5, 1e-6), `${format}: output`);
        assert.equal(b.isContiguousIn(format), true, `${format}: output layout`);
        assert.ok(
          (xb.grad as Tensor).allclose((xa.grad as Tensor).indexSelect(0, toBlocks), 1e-4, 1e-6),
          `${format}: input grad`,
        );
        assert.ok(
          (copy.weight?.grad as Tensor).allclose(demo.weight?.grad as Tensor, 1e-4, 1e-6),
          `${format}: weight grad`,
        );
        assert.ok(
          (copy.runningMean as Tensor).allclose(demo.runningMean as Tensor, 1e-5, 1e-7),
          `${format}: running mean`,
        );
        assert.ok(
          (copy.runningVar as Tensor).allclose(demo.runningVar as Tensor, 1e-5, 1e-7),
          `${format}: running var`,
        );
        assert.ok(!(copy.runningVar as Tensor).allclose(ours.runningVar as Tensor), `${format}: the running var moved`);
        copy.dispose();
      }
      demo.dispose();
      ours.dispose();
    });
    assert.equal(liveTensors(), baseline, "no tensor leaks");
  });
});

/** A training step of `make()`'s model in NCHW and of its channels-last copy: equal logits, gradients, buffers. */
function compareLayouts(make: () => ResNet, batch: number): void {
  const baseline = liveTensors();
  scope(() => {
    manualSeed(11);
    const nchw = make();
    const chl = nchw.copy().to({ memoryFormat: "channelsLast" });
    const x = randn([batch, 1, 16, 16]);
    const target = randint(0, 10, [batch]);
    const a = nchw.forward(x);
    const b = chl.forward(cl(x));
    assert.ok(b.allclose(a, 1e-4, 1e-5), "logits");
    F.crossEntropy(a, target).backward();
    F.crossEntropy(b, target).backward();
    const pa = nchw.namedParameters();
    const pb = chl.namedParameters();
    pa.forEach(([name, p], i) => {
      const q = pb[i]![1];
      if (p.ndim === 4) assert.equal(q.isContiguousIn("channelsLast"), true, `${name} is channels-last`);
      assert.ok((q.grad as Tensor).allclose(p.grad as Tensor, 1e-3, 1e-5), `grad of ${name}`);
      if (p.ndim === 4) assert.equal((q.grad as Tensor).isContiguousIn("channelsLast"), true, `grad of ${name} layout`);
    });
    for (const [name, buffer] of nchw.namedBuffers()) {
      const other = chl.getBuffer(name);
      assert.ok(other.allclose(buffer, 1e-4, 1e-6), `buffer ${name}`);
    }
    nchw.dispose();
    chl.dispose();
  });
  assert.equal(liveTensors(), baseline, "no tensor leaks");
}
