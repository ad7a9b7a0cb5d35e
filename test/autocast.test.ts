// Autocast (bf16 mixed precision) against PyTorch 1.13's torch.autocast("cpu", torch.bfloat16), run by
// the test: every output's dtype must equal PyTorch's (the dtype decisions are libtorch's own, so
// they must agree exactly), values within the bf16 tolerance of test/helpers/pytorch.ts (rtol 1e-2,
// atol 1e-3) or float32's where the output is float32; gradients of float32 leaves are float32.
// Then the region's own semantics: nesting, enabled: false inside, state restored after a throw,
// synchronous only.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AutocastError,
  F,
  autocast,
  buildInfo,
  cat,
  einsum,
  getAutocastDtype,
  isAutocastEnabled,
  manualSeed,
  noGrad,
  randint,
  randn,
  scope,
  zeros,
  type Tensor,
} from "../src/torch/index.js";
import { MocoError } from "../src/errors.js";
import { Linear } from "../src/nn/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

manualSeed(1515);

/** Python's side: runs f() inside torch.autocast("cpu", dtype=torch.bfloat16). */
const SETUP = `
def under_autocast(f):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return f()
`;
const bf16 = <T>(fn: () => T): T => autocast({ deviceType: "cpu", dtype: "bfloat16" }, fn);
/** Each output with its dtype's name, so that a dtype mismatch is reported by name too. */
const withDtypes = (...ts: Tensor[]): unknown[] => ts.flatMap((t) => [t, t.dtype]);
const pyWithDtypes = (expr: string): string =>
  `under_autocast(lambda: (lambda outs: [x for o in outs for x in (o, str(o.dtype)[6:])])(${expr}))`;

crossCheck("autocast: output dtypes and values equal torch.autocast's", [
  op({
    name: "conv2d",
    setup: SETUP,
    expr: pyWithDtypes("[F.conv2d(x, w, b, 1, 1)]"),
    inputs: { x: randn([2, 3, 8, 8]), w: randn([4, 3, 3, 3]), b: randn([4]) },
    ours: ({ x, w, b }) => bf16(() => withDtypes(F.conv2d(x, w, b, { padding: 1 }))),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "linear",
    setup: SETUP,
    expr: pyWithDtypes("[F.linear(x, w, b)]"),
    inputs: { x: randn([5, 16]), w: randn([8, 16]), b: randn([8]) },
    ours: ({ x, w, b }) => bf16(() => withDtypes(F.linear(x, w, b))),
    grad: ["x", "w", "b"],
  }),
  op({
    name: "matmul and mm",
    setup: SETUP,
    expr: pyWithDtypes("[torch.matmul(a, c), torch.mm(a, c)]"),
    inputs: { a: randn([6, 32]), c: randn([32, 5]) },
    ours: ({ a, c }) => bf16(() => withDtypes(a.matmul(c), a.mm(c))),
  }),
  op({
    name: "batch norm (training) after a conv",
    setup: SETUP,
    expr: pyWithDtypes("(lambda y: [y, F.batch_norm(y, rm, rv, g, be, True, 0.1, 1e-5)])(F.conv2d(x, w))"),
    inputs: {
      x: randn([4, 3, 6, 6]),
      w: randn([5, 3, 3, 3]),
      rm: randn([5]),
      rv: randn([5]).abs(),
      g: randn([5]),
      be: randn([5]),
    },
    ours: ({ x, w, rm, rv, g, be }) =>
      bf16(() => {
        const y = F.conv2d(x, w);
        return withDtypes(y, F.batchNorm(y, rm, rv, { weight: g, bias: be, training: true, momentum: 0.1, eps: 1e-5 }));
      }),
    after: ["rm", "rv"],
  }),
  op({
    name: "softmax and cross-entropy of bf16 logits",
    setup: SETUP,
    expr: pyWithDtypes("(lambda z: [z, F.softmax(z, 1), F.log_softmax(z, 1), F.cross_entropy(z, t)])(F.linear(x, w))"),
    inputs: { x: randn([6, 10]), w: randn([7, 10]), t: randint(0, 7, [6]) },
    ours: ({ x, w, t }) =>
      bf16(() => {
        const z = F.linear(x, w);
        return withDtypes(z, F.softmax(z, 1), F.logSoftmax(z, 1), F.crossEntropy(z, t));
      }),
    grad: ["x", "w"],
  }),
  op({
    name: "normalize",
    setup: SETUP,
    expr: pyWithDtypes("(lambda z: [F.normalize(x, dim=1), z, F.normalize(z, dim=1)])(F.linear(x, w))"),
    inputs: { x: randn([4, 12]), w: randn([6, 12]) },
    ours: ({ x, w }) =>
      bf16(() => {
        const z = F.linear(x, w);
        return withDtypes(F.normalize(x, { dim: 1 }), z, F.normalize(z, { dim: 1 }));
      }),
  }),
  op({
    name: "MoCo logits: normalize, einsum/mm with the queue, cat, divide by T, cross-entropy",
    setup: SETUP,
    expr: pyWithDtypes(`(lambda q, k: (lambda lp, ln: (lambda logits: [q, k, lp, ln, logits,
        F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))])(torch.cat([lp, ln], dim=1) / 0.2))(
        torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1), torch.einsum("nc,ck->nk", [q, queue])))(
        F.normalize(F.linear(xq, w), dim=1), F.normalize(F.linear(xk, w), dim=1))`),
    inputs: {
      xq: randn([8, 16]),
      xk: randn([8, 16]),
      w: randn([8, 16]),
      queue: F.normalize(randn([8, 32]), { dim: 0 }),
    },
    ours: ({ xq, xk, w, queue }) =>
      bf16(() => {
        const q = F.normalize(F.linear(xq, w), { dim: 1 });
        const k = F.normalize(F.linear(xk, w), { dim: 1 });
        const lPos = einsum("nc,nc->n", q, k).unsqueeze(-1);
        const lNeg = einsum("nc,ck->nk", q, queue);
        const logits = cat([lPos, lNeg], 1).div(0.2);
        const labels = zeros([logits.shape[0] ?? 0], { dtype: "int64" });
        return withDtypes(q, k, lPos, lNeg, logits, F.crossEntropy(logits, labels));
      }),
    grad: ["xq", "w"],
    // logits/T amplifies one bf16 rounding of q·queue (|value| up to 1/T = 5) by 5.
    tol: { rtol: 1e-2, atol: 2e-2 },
    gradTol: { rtol: 2e-2, atol: 2e-2 },
  }),
  op({
    name: "enabled: false inside a region computes float32",
    setup:
      SETUP +
      "\ndef off(f):\n    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=False):\n        return f()\n",
    expr: "under_autocast(lambda: (lambda a, b: [a, str(a.dtype)[6:], b, str(b.dtype)[6:]])(torch.mm(x, y), off(lambda: torch.mm(x, y))))",
    inputs: { x: randn([4, 8]), y: randn([8, 3]) },
    ours: ({ x, y }) =>
      bf16(() => {
        const a = x.mm(y);
        const b = autocast({ deviceType: "cpu", enabled: false }, () => x.mm(y));
        return [a, a.dtype, b, b.dtype];
      }),
  }),
]);

describe("autocast: the region", () => {
  test("float32 parameters get float32 gradients through an autocast forward", () => {
    scope(() => {
      const layer = new Linear(16, 4);
      const x = randn([8, 16]);
      const out = bf16(() => layer.forward(x));
      assert.equal(out.dtype, "bfloat16");
      out.float().mul(out.float()).sum().backward();
      for (const p of layer.parameters()) {
        const g = p.grad;
        assert.ok(g !== null);
        assert.equal(g.dtype, "float32");
      }
      layer.dispose();
    });
  });

  test("nesting restores each level's state; leaving the outermost restores the original", () => {
    assert.equal(isAutocastEnabled("cpu"), false);
    const before = getAutocastDtype("cpu");
    scope(() => {
      const x = randn([2, 4]);
      const y = randn([4, 2]);
      bf16(() => {
        assert.equal(isAutocastEnabled("cpu"), true);
        assert.equal(getAutocastDtype("cpu"), "bfloat16");
        assert.equal(x.mm(y).dtype, "bfloat16");
        autocast({ deviceType: "cpu", enabled: false }, () => {
          assert.equal(isAutocastEnabled("cpu"), false);
          assert.equal(x.mm(y).dtype, "float32");
          bf16(() => assert.equal(x.mm(y).dtype, "bfloat16"));
          assert.equal(isAutocastEnabled("cpu"), false);
        });
        assert.equal(isAutocastEnabled("cpu"), true);
        assert.equal(x.mm(y).dtype, "bfloat16");
      });
      assert.equal(x.mm(y).dtype, "float32");
    });
    assert.equal(isAutocastEnabled("cpu"), false);
    assert.equal(getAutocastDtype("cpu"), before);
  });

  test("leaving the outermost region clears libtorch's cache of bf16 weight copies", () => {
    scope(() => {
      // The cache holds the bf16 copy of a float32 leaf that requires grad (a weight) for the rest
      // of the region. A weight updated between two regions must be cast afresh in the second.
      const w = randn([8, 4]).requiresGrad_();
      const x = randn([3, 8]);
      const first = bf16(() => bf16(() => x.mm(w)).detach());
      noGrad(() => w.add_(1));
      const second = bf16(() => x.mm(w)).detach();
      const expected = noGrad(() => x.to("bfloat16").mm(w.to("bfloat16")));
      assert.ok(second.equal(expected), "the second region sees the updated weight");
      assert.ok(!second.equal(first));
    });
  });

  test("a throw inside restores the previous state and propagates", () => {
    const boom = new Error("boom");
    bf16(() => {
      assert.throws(
        () =>
          autocast({ deviceType: "cpu", enabled: false }, () => {
            throw boom;
          }),
        (e) => e === boom,
      );
      assert.equal(isAutocastEnabled("cpu"), true);
    });
    assert.throws(() => bf16(() => randn([2, 3]).mm(randn([4, 2]))), /mm/);
    assert.equal(isAutocastEnabled("cpu"), false);
    scope(() => assert.equal(randn([2, 3]).mm(randn([3, 2])).dtype, "float32"));
  });

  test("synchronous only: a Promise is refused, and the state is restored", () => {
    assert.throws(
      () => autocast({ deviceType: "cpu" }, (async () => 1) as unknown as () => number),
      /autocast: the function returned a Promise/,
    );
    assert.equal(isAutocastEnabled("cpu"), false);
    assert.throws(
      () => autocast({ deviceType: "cpu" }, Promise.resolve(1) as unknown as () => number),
      /autocast: expected a synchronous function, got a Promise/,
    );
  });

  test("bad options are refused with the argument named", () => {
    assert.throws(() => autocast({ deviceType: "tpu" as "cpu" }, () => 1), /deviceType must be "cpu" or "cuda"/);
    assert.throws(() => autocast({ deviceType: "cpu", dtype: "float32" as "bfloat16" }, () => 1), /dtype must be/);
    if (Number.parseInt(buildInfo().torchVersion, 10) < 2) {
      // PyTorch 1.13 refuses it too (its CPU autocast knows only bfloat16).
      assert.throws(
        () => autocast({ deviceType: "cpu", dtype: "float16" }, () => 1),
        (e) => e instanceof AutocastError && e instanceof MocoError && e.code === "ERR_AUTOCAST",
      );
    }
    assert.equal(isAutocastEnabled("cpu"), false);
  });

  test("CUDA autocast state is separate from the CPU's (CPU ops unaffected)", () => {
    scope(() => {
      const x = randn([2, 4]);
      autocast({ deviceType: "cuda" }, () => {
        assert.equal(isAutocastEnabled("cuda"), true);
        assert.equal(getAutocastDtype("cuda"), "float16");
        assert.equal(isAutocastEnabled("cpu"), false);
        assert.equal(x.mm(x.t()).dtype, "float32");
      });
      assert.equal(isAutocastEnabled("cuda"), false);
    });
  });
});
