// The multi-tensor paths (libtorch's _foreach_* ops) against the per-tensor ones: SGD's multi-tensor
// step and MoCo's momentum update must give the same bits, step after step, in every configuration
// (momentum, dampening, weight decay, Nesterov, maximize, parameters without a gradient). PyTorch
// parity of the per-tensor path is test/optim.test.ts's job.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { momentumUpdate } from "../src/moco/mechanisms.js";
import { Linear, Sequential } from "../src/nn/index.js";
import { SGD, type SGDOptions } from "../src/optim/index.js";
import {
  foreachAdd,
  foreachAdd_,
  foreachMul_,
  foreachNeg,
  gradsOf,
  liveTensors,
  manualSeed,
  noGrad,
  randn,
  scope,
  type Tensor,
} from "../src/torch/index.js";

const SHAPES = [[8, 3, 3, 3], [8], [16, 8], [16], [5, 7, 2]] as const;

function sameBits(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  assert.ok(Buffer.from(a.toBytes()).equals(Buffer.from(b.toBytes())), `${what}: the bits differ`);
}

/** Runs `steps` steps of SGD with the given options on fresh copies of the same parameters. */
function run(options: SGDOptions, foreach: boolean, steps: number): { params: Tensor[]; bufs: (Tensor | null)[] } {
  manualSeed(77);
  const params = SHAPES.map((s) => randn([...s]).requiresGrad_());
  const opt = new SGD(params, { ...options, foreach });
  for (let step = 0; step < steps; step++) {
    scope(() => {
      // Parameter 3 has no gradient on even steps: the multi-tensor pass must skip it, and its first
      // momentum buffer then appears later than the others' (the mixed first-step branch).
      params.forEach((p, i) => {
        p.grad = i === 3 && step % 2 === 0 ? null : randn([...p.shape]);
      });
      opt.step();
    });
  }
  const bufs = params.map((p) => opt.stateOf(p)?.momentum_buffer?.clone() ?? null);
  opt.dispose();
  return { params, bufs };
}

const CONFIGS: Record<string, SGDOptions> = {
  plain: { lr: 0.1 },
  momentum: { lr: 0.03, momentum: 0.9 },
  "momentum + weight decay (MoCo's)": { lr: 0.03, momentum: 0.9, weightDecay: 1e-4 },
  dampening: { lr: 0.05, momentum: 0.8, dampening: 0.3, weightDecay: 5e-4 },
  nesterov: { lr: 0.06, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  maximize: { lr: 0.01, momentum: 0.5, weightDecay: 1e-3, maximize: true },
  "integral hyper-parameters": { lr: 1, momentum: 1, weightDecay: 2 },
};

describe("SGD: the multi-tensor step equals the per-tensor step bit for bit", () => {
  for (const [name, options] of Object.entries(CONFIGS)) {
    test(name, () => {
      const baseline = liveTensors();
      const single = run(options, false, 5);
      const multi = run(options, true, 5);
      single.params.forEach((p, i) => sameBits(multi.params[i] as Tensor, p, `param ${i}`));
      single.bufs.forEach((b, i) => {
        const m = multi.bufs[i] ?? null;
        assert.equal(m === null, b === null, `momentum buffer ${i} presence`);
        if (b !== null && m !== null) sameBits(m, b, `momentum buffer ${i}`);
      });
      for (const t of [...single.params, ...multi.params, ...single.bufs, ...multi.bufs]) t?.dispose();
      assert.equal(liveTensors(), baseline, "no tensor leaks");
    });
  }

  test("the multi-tensor step leaves .grad untouched (also with Nesterov)", () => {
    scope(() => {
      const p = randn([4, 4]).requiresGrad_();
      const g = randn([4, 4]);
      const copy = g.clone();
      p.grad = g;
      const opt = new SGD([p], { lr: 0.1, momentum: 0.9, nesterov: true, foreach: true });
      opt.step();
      opt.step();
      sameBits(p.grad as Tensor, copy, "grad");
      opt.dispose();
    });
  });

  test("foreach is validated and carried in the state dict", () => {
    scope(() => {
      const p = randn([2]).requiresGrad_();
      assert.throws(
        () => new SGD([p], { lr: 0.1, foreach: "yes" as unknown as boolean }),
        /foreach must be a boolean or null/,
      );
      const opt = new SGD([{ params: [p], foreach: false }], { lr: 0.1, foreach: true });
      assert.equal(opt.paramGroups[0]?.foreach, false);
      assert.equal(opt.stateDict().param_groups[0]?.foreach, false);
      assert.equal(new SGD([p], { lr: 0.1 }).paramGroups[0]?.foreach, null);
    });
  });
});

describe("foreach ops equal their per-tensor ops", () => {
  test("mul_, add_, add, neg and gradsOf", () => {
    scope(() => {
      const xs = SHAPES.map((s) => randn([...s]));
      const ys = SHAPES.map((s) => randn([...s]));
      const ref = xs.map((x, i) =>
        x
          .clone()
          .mul_(0.37)
          .add_(ys[i] as Tensor, -2.5),
      );
      const got = xs.map((x) => x.clone());
      foreachMul_(got, 0.37);
      foreachAdd_(got, ys, -2.5);
      got.forEach((g, i) => sameBits(g, ref[i] as Tensor, `mul_/add_ ${i}`));
      foreachAdd(xs, ys, 0.5).forEach((t, i) => sameBits(t, (xs[i] as Tensor).add(ys[i] as Tensor, 0.5), `add ${i}`));
      foreachNeg(xs).forEach((t, i) => sameBits(t, (xs[i] as Tensor).neg(), `neg ${i}`));
      assert.throws(() => foreachAdd_(xs, ys.slice(1)), /same length/);
      const p = randn([3]).requiresGrad_();
      p.grad = randn([3]);
      const [g, none] = gradsOf([p, randn([2])]);
      assert.equal(none, null);
      sameBits(g as Tensor, p.grad as Tensor, "gradsOf");
      foreachMul_([], 2); // empty lists are no-ops
    });
  });
});

describe("MoCo's momentum update through foreach equals k.mul_(m).add_(q, 1 − m)", () => {
  for (const m of [0.99, 0.999, 0, 0.5]) {
    test(`m = ${m}`, () => {
      const baseline = liveTensors();
      manualSeed(5);
      const make = () => new Sequential(new Linear(12, 8), new Linear(8, 4));
      const q = make();
      const k = make();
      const reference = k.parameters().map((t) => noGrad(() => t.clone()));
      for (let step = 0; step < 3; step++) {
        noGrad(() => reference.forEach((r, i) => r.mul_(m).add_(q.parameters()[i] as Tensor, 1 - m)));
        momentumUpdate(k, q, m);
        noGrad(() => q.parameters().forEach((p) => p.add_(0.01)));
      }
      k.parameters().forEach((t, i) => sameBits(t, reference[i] as Tensor, `key parameter ${i}`));
      for (const t of reference) t.dispose();
      q.dispose();
      k.dispose();
      assert.equal(liveTensors(), baseline, "no tensor leaks");
    });
  }
});
