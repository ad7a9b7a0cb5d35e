// In-place ops, noGrad, and autograd semantics (backward, grad accumulation, retain graph, detach),
// checked against PyTorch.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(5000);
const x = torch.randn([3, 4]);
const y = torch.randn([3, 4]);
const row = torch.randn([4]);
const g = torch.randn([3, 4]);
const ints = torch.arange(-3, 3);
const mask = torch.rand([3, 4]).gt(0.5);

// Each in-place case returns the mutated tensor and also compares the input after the call: both
// the returned object and the caller's tensor must hold PyTorch's values.
crossCheck("in place ops", [
  op({ name: "add_ tensor", expr: "x.add_(y)", inputs: { x, y }, ours: ({ x, y }) => x.add_(y), after: ["x", "y"] }),
  op({
    name: "add_ alpha",
    expr: "x.add_(r, alpha=-0.5)",
    inputs: { x, r: row },
    ours: ({ x, r }) => x.add_(r, -0.5),
    after: ["x"],
  }),
  op({ name: "add_ scalar", expr: "x.add_(3)", inputs: { x }, ours: ({ x }) => x.add_(3), after: ["x"] }),
  op({ name: "add_ int64 scalar", expr: "i.add_(2)", inputs: { i: ints }, ours: ({ i }) => i.add_(2), after: ["i"] }),
  op({
    name: "add_ float into int64 throws",
    expr: "i.add_(0.5)",
    inputs: { i: ints },
    ours: ({ i }) => i.add_(0.5),
    throws: true,
  }),
  op({ name: "sub_", expr: "x.sub_(y, alpha=2)", inputs: { x, y }, ours: ({ x, y }) => x.sub_(y, 2), after: ["x"] }),
  op({ name: "mul_ tensor", expr: "x.mul_(r)", inputs: { x, r: row }, ours: ({ x, r }) => x.mul_(r), after: ["x"] }),
  op({ name: "mul_ scalar", expr: "x.mul_(0.999)", inputs: { x }, ours: ({ x }) => x.mul_(0.999), after: ["x"] }),
  op({ name: "div_", expr: "x.div_(7)", inputs: { x }, ours: ({ x }) => x.div_(7), after: ["x"] }),
  op({
    name: "momentum update (mul_ then add_ alpha)",
    expr: "k.mul_(0.99).add_(q, alpha=0.01)",
    inputs: { k: x, q: y },
    ours: ({ k, q }) => k.mul_(0.99).add_(q, 0.01),
    after: ["k"],
  }),
  op({
    name: "addcmul_",
    expr: "x.addcmul_(y, r, value=0.3)",
    inputs: { x, y, r: row },
    ours: ({ x, y, r }) => x.addcmul_(y, r, 0.3),
    after: ["x"],
  }),
  op({ name: "lerp_", expr: "x.lerp_(y, 0.25)", inputs: { x, y }, ours: ({ x, y }) => x.lerp_(y, 0.25), after: ["x"] }),
  op({ name: "copy_", expr: "x.copy_(y)", inputs: { x, y }, ours: ({ x, y }) => x.copy_(y), after: ["x"] }),
  op({
    name: "copy_ broadcast",
    expr: "x.copy_(r)",
    inputs: { x, r: row },
    ours: ({ x, r }) => x.copy_(r),
    after: ["x"],
  }),
  op({
    name: "copy_ converts dtype",
    expr: "x.copy_(d)",
    inputs: { x, d: torch.randn([3, 4], { dtype: "float64" }) },
    ours: ({ x, d }) => x.copy_(d),
    after: ["x"],
  }),
  op({
    name: "copy_ float into int64 truncates",
    expr: "i.copy_(torch.tensor([1.7, -1.7, 2.5, -0.2, 0.0, 9.99]))",
    inputs: { i: ints },
    ours: ({ i }) => i.copy_(torch.tensor([1.7, -1.7, 2.5, -0.2, 0, 9.99])),
    after: ["i"],
  }),
  op({
    name: "copy_ into a view writes through",
    expr: "(x.narrow(1, 1, 2).copy_(torch.zeros(3, 2)), x)[1]",
    inputs: { x },
    ours: ({ x }) => (x.narrow(1, 1, 2).copy_(torch.zeros([3, 2])), x),
  }),
  op({ name: "zero_", expr: "x.zero_()", inputs: { x }, ours: ({ x }) => x.zero_(), after: ["x"] }),
  op({ name: "fill_", expr: "x.fill_(-2.5)", inputs: { x }, ours: ({ x }) => x.fill_(-2.5), after: ["x"] }),
  op({ name: "fill_ int64", expr: "i.fill_(7)", inputs: { i: ints }, ours: ({ i }) => i.fill_(7), after: ["i"] }),
  op({ name: "fill_ bool", expr: "k.fill_(True)", inputs: { k: mask }, ours: ({ k }) => k.fill_(true), after: ["k"] }),
  op({
    name: "clamp_",
    expr: "x.clamp_(-0.3, 0.6)",
    inputs: { x },
    ours: ({ x }) => x.clamp_(-0.3, 0.6),
    after: ["x"],
  }),
  op({ name: "clamp_ min only", expr: "x.clamp_(min=0)", inputs: { x }, ours: ({ x }) => x.clamp_(0), after: ["x"] }),
  op({
    name: "clamp_ max only",
    expr: "x.clamp_(max=0.1)",
    inputs: { x },
    ours: ({ x }) => x.clamp_(null, 0.1),
    after: ["x"],
  }),
  op({ name: "relu_", expr: "x.relu_()", inputs: { x }, ours: ({ x }) => x.relu_(), after: ["x"] }),
  op({
    name: "maskedFill_",
    expr: "x.masked_fill_(k, 1.25)",
    inputs: { x, k: mask },
    ours: ({ x, k }) => x.maskedFill_(k, 1.25),
    after: ["x"],
  }),
  op({
    name: "in place on a non-leaf keeps the graph",
    expr: "(x * 2).add_(y).mul_(y)",
    inputs: { x, y },
    ours: ({ x, y }) => x.mul(2).add_(y).mul_(y),
    grad: ["x", "y"],
  }),
  op({
    name: "in place on a leaf that requires grad throws",
    expr: "x.add_(1)",
    inputs: { x },
    ours: ({ x }) => x.add_(1),
    grad: ["x"],
    throws: /leaf|grad/,
  }),
]);

crossCheck("autograd: backward, gradients, retain graph", [
  op({
    name: "grad_fn names",
    setup: "x = x.detach().requires_grad_()",
    expr: "[type(t.grad_fn).__name__ if t.grad_fn is not None else None for t in (x, x * 2, x + 1, torch.add(x, 2, alpha=3), x - 1, x / 2, x * 0.5 + y, (x * 1).add_(2), (x * 1).mul_(3), x ** 2, x.remainder(2), x.clamp(0), torch.where(y > 0, x, 0.0), x.sum(), x.mm(y.t()), x.relu(), x.detach())]",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      return [
        x,
        x.mul(2),
        x.add(1),
        x.add(2, 3),
        x.sub(1),
        x.div(2),
        x.mul(0.5).add(y),
        x.mul(1).add_(2),
        x.mul(1).mul_(3),
        x.pow(2),
        x.remainder(2),
        x.clamp(0),
        torch.where(y.gt(0), x, 0),
        x.sum(),
        x.mm(y.t()),
        x.relu(),
        x.detach(),
      ].map((t) => t.gradFn);
    },
  }),
  op({
    name: "requiresGrad and isLeaf propagate",
    setup: "x = x.detach().requires_grad_()\nz = x * y",
    expr: "(x.requires_grad, x.is_leaf, y.requires_grad, z.requires_grad, z.is_leaf, z.detach().requires_grad, torch.zeros(2, requires_grad=True).requires_grad)",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      const z = x.mul(y);
      return [
        x.requiresGrad,
        x.isLeaf,
        y.requiresGrad,
        z.requiresGrad,
        z.isLeaf,
        z.detach().requiresGrad,
        torch.zeros([2], { requiresGrad: true }).requiresGrad,
      ];
    },
  }),
  op({
    name: "backward of a scalar without a gradient",
    setup: "x = x.detach().requires_grad_()\n((x * x).sin().sum() * 3).backward()",
    expr: "x.grad",
    inputs: { x },
    ours: ({ x }) => {
      x.requiresGrad_();
      x.mul(x).sin().sum().mul(3).backward();
      return x.grad;
    },
  }),
  op({
    name: "backward with a gradient argument",
    setup: "x = x.detach().requires_grad_()\n(x * x * 3 + y).backward(g)",
    expr: "x.grad",
    inputs: { x, y, g },
    ours: ({ x, y, g }) => {
      x.requiresGrad_();
      x.mul(x).mul(3).add(y).backward(g);
      return x.grad;
    },
  }),
  op({
    name: "backward of a non-scalar without a gradient throws",
    setup: "x = x.detach().requires_grad_()",
    expr: "(x * 2).backward()",
    inputs: { x },
    ours: ({ x }) => {
      x.requiresGrad_();
      x.mul(2).backward();
    },
    throws: /scalar/,
  }),
  op({
    name: "second backward without retainGraph throws",
    setup: "x = x.detach().requires_grad_()\nl = (x.exp() * y).sum()\nl.backward()",
    expr: "l.backward()",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      const l = x.exp().mul(y).sum();
      l.backward();
      l.backward();
    },
    throws: /graph/,
  }),
  op({
    name: "retainGraph: two backwards accumulate",
    // x.grad is the accumulator itself in both: a reference taken earlier sees the accumulation.
    setup:
      "x = x.detach().requires_grad_()\nl = (x.exp() * y).sum()\nl.backward(retain_graph=True)\ng1 = x.grad.clone()\nref = x.grad\nl.backward()",
    expr: "(g1, x.grad, ref)",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      const l = x.exp().mul(y).sum();
      l.backward(undefined, { retainGraph: true });
      const g1 = x.grad?.clone();
      const ref = x.grad;
      l.backward();
      return [g1, x.grad, ref];
    },
  }),
  op({
    name: "gradients accumulate across graphs until reset",
    setup:
      "x = x.detach().requires_grad_()\n(x * y).sum().backward()\n(x ** 2).sum().backward()\na = x.grad.clone()\nx.grad = None\n(x * 3).sum().backward()",
    expr: "(a, x.grad)",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      x.mul(y).sum().backward();
      x.pow(2).sum().backward();
      const a = x.grad;
      x.grad = null;
      x.mul(3).sum().backward();
      return [a, x.grad];
    },
  }),
  op({
    name: "grad of an unused leaf is None",
    setup: "x = x.detach().requires_grad_()\ny = y.detach().requires_grad_()\n(x * 2).sum().backward()",
    expr: "(x.grad, y.grad)",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      y.requiresGrad_();
      x.mul(2).sum().backward();
      return [x.grad, y.grad];
    },
  }),
  op({
    name: "detach stops the gradient and shares storage",
    setup: "x = x.detach().requires_grad_()\nd = x.detach()\n(d * x).sum().backward()\nd[0, 0] = 100.0",
    expr: "(x.grad, d.requires_grad, x[0, 0].item())",
    inputs: { x },
    ours: ({ x }) => {
      x.requiresGrad_();
      const d = x.detach();
      assert.equal(d.storageId, x.storageId);
      d.mul(x).sum().backward();
      d.narrow(0, 0, 1).narrow(1, 0, 1).fill_(100);
      return [x.grad, d.requiresGrad, x.select(0, 0).select(0, 0).item()];
    },
  }),
  op({
    name: "retainGrad on a non-leaf",
    setup: "x = x.detach().requires_grad_()\nh = x * 2\nh.retain_grad()\n(h.tanh() * y).sum().backward()",
    expr: "(h.grad, x.grad)",
    inputs: { x, y },
    ours: ({ x, y }) => {
      x.requiresGrad_();
      const h = x.mul(2).retainGrad();
      h.tanh().mul(y).sum().backward();
      return [h.grad, x.grad];
    },
  }),
  op({
    name: "createGraph gives second derivatives",
    setup:
      "x = x.detach().requires_grad_()\n(x ** 3).sum().backward(create_graph=True)\ng1 = x.grad\nx.grad = None\ng1.sum().backward()",
    expr: "(g1, x.grad)",
    inputs: { x },
    ours: ({ x }) => {
      x.requiresGrad_();
      x.pow(3).sum().backward(undefined, { createGraph: true });
      const g1 = x.grad;
      x.grad = null;
      g1?.sum().backward();
      return [g1, x.grad];
    },
  }),
  op({
    name: "noGrad: nothing recorded inside",
    setup:
      "x = x.detach().requires_grad_()\nwith torch.no_grad():\n    z = x * 2\n    inside = torch.is_grad_enabled()\nw = x * 2",
    expr: "(z.requires_grad, z.grad_fn is None, inside, torch.is_grad_enabled(), w.requires_grad)",
    inputs: { x },
    ours: ({ x }) => {
      x.requiresGrad_();
      let inside = true;
      const z = torch.noGrad(() => {
        inside = torch.isGradEnabled();
        return x.mul(2);
      });
      const w = x.mul(2);
      return [z.requiresGrad, z.gradFn === null, inside, torch.isGradEnabled(), w.requiresGrad];
    },
  }),
]);

describe("noGrad and enableGrad", () => {
  it("restores grad mode after a throw, and the error propagates", () => {
    torch.scope(() => {
      const x = torch.ones([2], { requiresGrad: true });
      assert.throws(
        () =>
          torch.noGrad(() => {
            assert.equal(torch.isGradEnabled(), false);
            throw new Error("boom");
          }),
        /boom/,
      );
      assert.equal(torch.isGradEnabled(), true);
      assert.equal(x.mul(2).requiresGrad, true);
    });
  });

  it("nests: enableGrad inside noGrad records, and each level restores its predecessor", () => {
    torch.scope(() => {
      const x = torch.ones([2], { requiresGrad: true });
      torch.noGrad(() => {
        assert.equal(x.mul(2).requiresGrad, false);
        const inner = torch.enableGrad(() => x.mul(3));
        assert.equal(inner.requiresGrad, true);
        assert.equal(torch.isGradEnabled(), false);
        torch.noGrad(() => assert.equal(torch.isGradEnabled(), false));
        assert.equal(torch.isGradEnabled(), false);
      });
      assert.equal(torch.isGradEnabled(), true);
    });
  });

  it("an in-place update under noGrad on a leaf is allowed and not recorded", () => {
    torch.scope(() => {
      const p = torch.ones([3], { requiresGrad: true });
      torch.noGrad(() => p.mul_(0.5).add_(torch.ones([3]), 0.25));
      assert.deepEqual(p.toArray(), [0.75, 0.75, 0.75]);
      assert.equal(p.isLeaf, true);
      assert.equal(p.gradFn, null);
      p.mul(2).sum().backward();
      assert.deepEqual(p.grad?.toArray(), [2, 2, 2]);
    });
  });

  it("rejects an async function", () => {
    assert.throws(() => torch.noGrad(async () => 1), /Promise/);
    assert.equal(torch.isGradEnabled(), true);
  });
});

describe("retain graph errors", () => {
  it("a second backward without retainGraph throws a catchable Error mentioning the graph", () => {
    torch.scope(() => {
      const x = torch.randn([4], { requiresGrad: true });
      const l = x.exp().sum();
      l.backward();
      let caught: unknown;
      try {
        l.backward();
      } catch (error) {
        caught = error;
      }
      assert.ok(caught instanceof Error, "expected an Error");
      assert.match(caught.message, /graph/);
      // The process and the tensors are fine afterwards.
      assert.equal(x.grad?.shape[0], 4);
      const again = x.exp().sum();
      again.backward();
    });
  });
});
