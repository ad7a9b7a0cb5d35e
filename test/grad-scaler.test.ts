// The loss scaler's rules on the CPU (the arithmetic that stands in for libtorch 1.13's CUDA-only
// fused ops): a scaled backward, unscaled gradients, a skipped step on an overflow with the scale
// backed off, growth after growthInterval clean steps, and a state that resumes exactly. The same
// sequence runs against torch.amp.GradScaler on a GPU in test/gpu.test.ts.
import assert from "node:assert/strict";
import { test } from "node:test";

import { GradScaler, SGD } from "../src/optim/index.js";
import { randn, scope } from "../src/torch/index.js";

function run(scaler: GradScaler, factors: number[]) {
  return scope(() => {
    const x = randn([6]);
    const w0 = randn([6]);
    const w = w0.clone().requiresGrad_(true);
    const optimizer = new SGD([w], { lr: 0.1 });
    const stepped: boolean[] = [];
    const scales: number[] = [];
    const grads: number[][] = [];
    for (const f of factors) {
      scope(() => {
        optimizer.zeroGrad();
        const loss = w.mul(x).sum().mul(f);
        const scaled = scaler.scale(loss);
        assert.equal(scaled.item(), loss.item() * scaler.getScale());
        scaled.backward();
        scaler.unscale_(optimizer);
        grads.push([...(w.grad?.toArray() ?? [])] as number[]);
        stepped.push(scaler.step(optimizer));
        scaler.update();
        scales.push(scaler.getScale());
      });
    }
    const result = { stepped, scales, grads, w: w.detach().clone(), w0: w0.clone(), x: x.clone() };
    optimizer.dispose();
    return result;
  });
}

test("GradScaler: scale, unscale, skip on overflow, backoff, growth (torch.amp.GradScaler's rules)", () => {
  const scaler = new GradScaler({ initScale: 1024, growthInterval: 2 });
  const r = run(scaler, [1, Infinity, 1, 1, 1]);
  assert.deepEqual(r.stepped, [true, false, true, true, true]);
  assert.deepEqual(r.scales, [1024, 512, 512, 1024, 1024]);
  // Unscaled gradients are the true ones (x), up to float32 rounding of x·s/s.
  const x = r.x.toArray() as unknown as number[];
  for (const i of [0, 2, 3, 4]) r.grads[i]?.forEach((g, j) => assert.ok(Math.abs(g - (x[j] as number)) < 1e-6));
  // Four steps of lr 0.1 with gradient x: the overflowed step changed nothing.
  assert.ok(r.w.allclose(r.w0.sub(r.x.mul(0.4)), 1e-5, 1e-6));
  scaler.dispose();
  for (const t of [r.w, r.w0, r.x]) t.dispose();
});

test("GradScaler: the state dict resumes the scaling exactly; disabled it only steps", () => {
  const a = new GradScaler({ initScale: 256, growthInterval: 3 });
  const first = run(a, [1, 1]);
  const state = a.stateDict();
  assert.deepEqual(state, {
    scale: 256,
    growth_factor: 2,
    backoff_factor: 0.5,
    growth_interval: 3,
    _growth_tracker: 2,
  });
  const b = new GradScaler({ initScale: 1, growthInterval: 3 });
  b.loadStateDict(state);
  assert.deepEqual(run(b, [1]).scales, [512]);
  assert.deepEqual(run(a, [1]).scales, [512]);
  const off = new GradScaler({ enabled: false });
  const r = run(off, [1, 1]);
  assert.deepEqual(r.scales, [1, 1]);
  assert.deepEqual(r.stepped, [true, true]);
  assert.throws(() => new GradScaler({ backoffFactor: 2 }), /backoffFactor must be in \(0, 1\)/);
  assert.throws(() => new GradScaler({ growthInterval: 0 }), /growthInterval must be a positive integer/);
  for (const s of [a, b, off]) s.dispose();
  for (const t of [first.w, first.w0, first.x, r.w, r.w0, r.x]) t.dispose();
});
