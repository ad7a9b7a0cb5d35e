// SGD and the learning-rate schedules against PyTorch 1.13 (torch.optim.SGD, MultiStepLR,
// CosineAnnealingLR, LinearLR) and the official MoCo formulas. The Python side runs in the test
// (test/py/optim_sgd.py, test/py/optim_schedules.py) on the same float32 values.
//
// Tolerances: parameters and momentum buffers within rtol 1e-5, atol 1e-6 (float32, the same kernels
// in the same order; in practice the results are bit-identical). Learning rates: the step schedule is
// bit-identical to the official MoCo formula; the cosine within a few ulps of it (V8's Math.cos vs
// glibc's cos); torch's schedulers within 1e-12 relative (their recursive forms round differently).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import {
  SGD,
  constantSchedule,
  cosineSchedule,
  fractionalEpoch,
  setLr,
  stepSchedule,
  withWarmup,
  type SGDParamGroupSpec,
  type SGDStateDict,
} from "../src/optim/index.js";
import * as torch from "../src/torch/index.js";
import { Tensor } from "../src/torch/index.js";
import { load, save, type Saveable } from "../src/torch/serialize/index.js";
import { PYTHON } from "./helpers/python.js";

const here = dirname(fileURLToPath(import.meta.url));

// ---- helpers ------------------------------------------------------------------------------------
interface JsonTensor {
  shape: number[];
  data: number[];
}

function runPython<T>(script: string, input: unknown): T {
  const result = spawnSync(PYTHON, [join(here, "py", script)], {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  if (result.status !== 0) throw new Error(`${script} failed (status ${result.status}):\n${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

function toJson(t: Tensor): JsonTensor {
  return { shape: [...t.shape], data: Array.from(t.toTypedArray<"float32">()) };
}

function fromJson(j: JsonTensor): Tensor {
  return torch.fromTypedArray(Float32Array.from(j.data), j.shape);
}

/** A state dict as JSON in the encoding of optim_sgd.py: tensors as {__tensor__}, int keys as strings. */
function encode(value: unknown): unknown {
  if (value instanceof Tensor) return { __tensor__: toJson(value) };
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), encode(v)]));
  if (Array.isArray(value)) return value.map(encode);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, encode(v)]));
  }
  return value;
}

/** Python's JSON state dict as ours: tensors back to Tensors, state as a Map keyed by index. */
function decodeStateDict(json: { state: Record<string, unknown>; param_groups: unknown[] }): SGDStateDict {
  const dec = (value: unknown): unknown => {
    if (typeof value === "object" && value !== null && "__tensor__" in value) {
      return fromJson((value as { __tensor__: JsonTensor }).__tensor__);
    }
    if (Array.isArray(value)) return value.map(dec);
    if (typeof value === "object" && value !== null) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, dec(v)]));
    }
    return value;
  };
  return {
    state: new Map(
      Object.entries(json.state).map(([k, v]) => [Number(k), dec(v) as { momentum_buffer: Tensor | null }]),
    ),
    param_groups: json.param_groups.map(dec) as SGDStateDict["param_groups"],
  };
}

function assertClose(
  actual: readonly number[],
  expected: readonly number[],
  what: string,
  rtol = 1e-5,
  atol = 1e-6,
): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}[${i}]: ours ${a}, PyTorch ${e} (|diff| ${Math.abs(a - e)})`);
    }
  }
}

function assertTensorClose(actual: Tensor, expected: JsonTensor, what: string): void {
  assert.deepEqual([...actual.shape], expected.shape, `${what}: shape`);
  assertClose(Array.from(actual.toTypedArray<"float32">()), expected.data, what);
}

/** Deep equality of two encoded state dicts: structure and scalars exact, tensors within tolerance. */
function assertSameLayout(ours: unknown, theirs: unknown, path = "state_dict"): void {
  if (typeof theirs === "object" && theirs !== null && "__tensor__" in theirs) {
    assert.ok(typeof ours === "object" && ours !== null && "__tensor__" in ours, `${path}: expected a tensor`);
    const a = (ours as { __tensor__: JsonTensor }).__tensor__;
    const b = (theirs as { __tensor__: JsonTensor }).__tensor__;
    assert.deepEqual(a.shape, b.shape, `${path}: shape`);
    assertClose(a.data, b.data, path);
    return;
  }
  if (Array.isArray(theirs)) {
    assert.ok(Array.isArray(ours), `${path}: expected an array, got ${JSON.stringify(ours)}`);
    assert.equal(ours.length, theirs.length, `${path}: length`);
    theirs.forEach((v, i) => assertSameLayout((ours as unknown[])[i], v, `${path}[${i}]`));
    return;
  }
  if (typeof theirs === "object" && theirs !== null) {
    assert.ok(typeof ours === "object" && ours !== null, `${path}: expected an object, got ${JSON.stringify(ours)}`);
    assert.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort(), `${path}: keys`);
    for (const [k, v] of Object.entries(theirs))
      assertSameLayout((ours as Record<string, unknown>)[k], v, `${path}.${k}`);
    return;
  }
  assert.equal(ours, theirs, `${path}`);
}

// ---- the scenarios ------------------------------------------------------------------------------
interface Scenario {
  name: string;
  defaults: Record<string, number | boolean>;
  /** Per-group overrides in PyTorch's names, with the indices of their parameters. */
  groups: { params: number[]; [key: string]: number | boolean | number[] }[];
  /** Parameters whose gradient is null at a given step: [step, param]. */
  nullGrads?: [number, number][];
  lrs?: number[];
}

const SHAPES = [[4, 3], [5], [2, 3, 2]];
const STEPS = 4;

const scenarios: Scenario[] = [
  { name: "plain SGD (momentum 0)", defaults: { lr: 0.1 }, groups: [{ params: [0, 1, 2] }] },
  { name: "momentum 0.9", defaults: { lr: 0.1, momentum: 0.9 }, groups: [{ params: [0, 1, 2] }] },
  {
    name: "momentum 0.9, dampening 0.3",
    defaults: { lr: 0.05, momentum: 0.9, dampening: 0.3 },
    groups: [{ params: [0, 1, 2] }],
  },
  {
    name: "momentum 0.9, weight decay 1e-2",
    defaults: { lr: 0.1, momentum: 0.9, weight_decay: 1e-2 },
    groups: [{ params: [0, 1, 2] }],
  },
  {
    name: "nesterov, weight decay 1e-4",
    defaults: { lr: 0.1, momentum: 0.9, weight_decay: 1e-4, nesterov: true },
    groups: [{ params: [0, 1, 2] }],
  },
  {
    name: "weight decay without momentum, maximize",
    defaults: { lr: 0.03, weight_decay: 5e-4, maximize: true },
    groups: [{ params: [0, 1, 2] }],
  },
  {
    name: "two parameter groups, a skipped gradient and a schedule",
    defaults: { lr: 0.1, momentum: 0.9, weight_decay: 1e-4 },
    groups: [{ params: [0, 2] }, { params: [1], lr: 0.01, momentum: 0.5, dampening: 0.1, weight_decay: 0.05 }],
    nullGrads: [
      [0, 1],
      [2, 2],
    ],
    lrs: [0.1, 0.08, 0.05, 0.02],
  },
  {
    name: "nesterov group beside a plain group",
    defaults: { lr: 0.2 },
    groups: [{ params: [0] }, { params: [1, 2], momentum: 0.9, nesterov: true, weight_decay: 1e-3 }],
  },
];

const camel: Record<string, string> = { weight_decay: "weightDecay" };
function toOurs(options: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(options).map(([k, v]) => [camel[k] ?? k, v]));
}

interface PyStep {
  params: JsonTensor[];
  buffers: (JsonTensor | null)[];
  state_dict: { state: Record<string, unknown>; param_groups: unknown[] };
}
interface PyResult {
  steps: PyStep[];
  state_dict: { state: Record<string, unknown>; param_groups: unknown[] };
  initial_state_dict: unknown;
}

function makeData(seed: number, steps: number, nullGrads: [number, number][] = []) {
  torch.manualSeed(seed);
  const init = SHAPES.map((s) => toJson(torch.scope(() => torch.randn(s))));
  const grads = Array.from({ length: steps }, (_, step) =>
    SHAPES.map((s, i) => (nullGrads.some(([a, b]) => a === step && b === i) ? null : toJson(torch.randn(s)))),
  );
  return { init, grads };
}

function makeOptimizer(scenario: Scenario, params: Tensor[]): SGD {
  const groups: SGDParamGroupSpec[] = scenario.groups.map(({ params: idx, ...rest }) => ({
    ...toOurs(rest),
    params: idx.map((i) => params[i] as Tensor),
  }));
  return new SGD(groups, toOurs(scenario.defaults) as { lr: number });
}

/** Sets the gradients of step `s` and steps our optimizer. */
function ourStep(opt: SGD, params: Tensor[], grads: (JsonTensor | null)[], lr?: number): void {
  if (lr !== undefined) setLr(opt, lr);
  opt.zeroGrad();
  torch.scope(() => {
    params.forEach((p, i) => {
      const g = grads[i];
      p.grad = g === null || g === undefined ? null : fromJson(g);
    });
  });
  opt.step();
}

function pyInput(scenario: Scenario, init: JsonTensor[], grads: (JsonTensor | null)[][], extra: object = {}) {
  return {
    defaults: scenario.defaults,
    groups: scenario.groups,
    params: init,
    steps: grads,
    lrs: scenario.lrs,
    ...extra,
  };
}

// ---- tests --------------------------------------------------------------------------------------
describe("SGD matches torch.optim.SGD", () => {
  scenarios.forEach((scenario, n) => {
    it(scenario.name, () => {
      const { init, grads } = makeData(100 + n, STEPS, scenario.nullGrads);
      const py = runPython<PyResult>("optim_sgd.py", pyInput(scenario, init, grads));
      const params = init.map((j) => fromJson(j).requiresGrad_());
      const opt = makeOptimizer(scenario, params);
      assertSameLayout(encode(opt.stateDict()), py.initial_state_dict, "initial state_dict");
      for (let s = 0; s < STEPS; s++) {
        ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
        const expected = py.steps[s] as PyStep;
        params.forEach((p, i) => {
          assertTensorClose(p, expected.params[i] as JsonTensor, `step ${s + 1}, param ${i}`);
          const buf = opt.stateOf(p)?.momentum_buffer ?? null;
          const eb = expected.buffers[i] ?? null;
          if (eb === null) assert.equal(buf, null, `step ${s + 1}, param ${i}: no momentum buffer expected`);
          else assertTensorClose(buf as Tensor, eb, `step ${s + 1}, momentum buffer ${i}`);
        });
        assertSameLayout(encode(opt.stateDict()), expected.state_dict, `state_dict after step ${s + 1}`);
      }
      opt.dispose();
      params.forEach((p) => p.dispose());
    });
  });
});

describe("SGD state dict round trips with PyTorch", () => {
  const scenario = scenarios[6] as Scenario; // two groups, momentum, skipped gradients
  const { init, grads } = makeData(7, 4, scenario.nullGrads);

  it("ours after 2 steps loads into torch.optim.SGD, which continues exactly as we do", () => {
    const params = init.map((j) => fromJson(j).requiresGrad_());
    const opt = makeOptimizer(scenario, params);
    for (let s = 0; s < 2; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const mid = { params: params.map(toJson), state: encode(opt.stateDict()) };
    for (let s = 2; s < 4; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const py = runPython<PyResult>(
      "optim_sgd.py",
      pyInput(scenario, mid.params, grads.slice(2), { load: mid.state, lrs: scenario.lrs?.slice(2) }),
    );
    const last = py.steps[1] as PyStep;
    params.forEach((p, i) => assertTensorClose(p, last.params[i] as JsonTensor, `param ${i}`));
    assertSameLayout(encode(opt.stateDict()), py.state_dict);
    opt.dispose();
  });

  it("PyTorch's after 2 steps loads into ours, which continues exactly as PyTorch does", () => {
    const py = runPython<PyResult>("optim_sgd.py", pyInput(scenario, init, grads));
    const mid = py.steps[1] as PyStep;
    const params = mid.params.map((j) => fromJson(j).requiresGrad_());
    // Different hyper-parameters on purpose: the loaded ones must win.
    const opt = new SGD([{ params: [params[0] as Tensor, params[2] as Tensor] }, { params: [params[1] as Tensor] }], {
      lr: 0.5,
      momentum: 0.1,
    });
    const loaded = decodeStateDict(mid.state_dict);
    opt.loadStateDict(loaded);
    for (const s of loaded.state.values()) s.momentum_buffer?.dispose(); // ours are copies
    assert.equal(opt.paramGroups[1]?.lr, 0.08);
    assert.equal(opt.paramGroups[1]?.weightDecay, 0.05);
    assert.equal(opt.paramGroups[1]?.momentum, 0.5);
    for (let s = 2; s < 4; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const last = py.steps[3] as PyStep;
    params.forEach((p, i) => assertTensorClose(p, last.params[i] as JsonTensor, `param ${i}`));
    assertSameLayout(encode(opt.stateDict()), py.state_dict);
    opt.dispose();
  });

  it("a state dict with object keys (JSON) loads too", () => {
    const params = init.map((j) => fromJson(j).requiresGrad_());
    const opt = makeOptimizer(scenario, params);
    for (let s = 0; s < 2; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const json = encode(opt.stateDict()) as { state: Record<string, unknown>; param_groups: unknown[] };
    const other = makeOptimizer(scenario, params);
    const decoded = decodeStateDict(json);
    other.loadStateDict({ state: Object.fromEntries(decoded.state), param_groups: decoded.param_groups });
    assertSameLayout(encode(other.stateDict()), json);
    for (const s of decoded.state.values()) s.momentum_buffer?.dispose();
    opt.dispose();
    other.dispose();
  });
});

describe("SGD behaviour", () => {
  it("validates its hyper-parameters with clear errors", () => {
    const p = torch.zeros([2]).requiresGrad_();
    assert.throws(() => new SGD([p], { lr: -1 }), /invalid learning rate -1/);
    assert.throws(() => new SGD([p], { lr: 0.1, momentum: -0.5 }), /invalid momentum -0.5/);
    assert.throws(() => new SGD([p], { lr: 0.1, weightDecay: -1e-4 }), /invalid weightDecay/);
    assert.throws(
      () => new SGD([p], { lr: 0.1, nesterov: true }),
      /Nesterov momentum requires momentum > 0 and dampening 0/,
    );
    assert.throws(
      () => new SGD([p], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
      /Nesterov momentum requires/,
    );
    assert.throws(() => new SGD([{ params: [p], lr: -0.1 }], { lr: 0.1 }), /invalid learning rate .*parameter group 0/);
    assert.throws(() => new SGD([p], { lr: 0.1, weight_decay: 1 } as never), /unknown option "weight_decay"/);
    assert.throws(() => new SGD([p], {} as never), /lr is required/);
    assert.throws(() => new SGD([], { lr: 0.1 }), /empty parameter list/);
    assert.throws(() => new SGD([{ params: [p] }, { params: [p] }], { lr: 0.1 }), /more than one parameter group/);
    const q = torch.scope(() => p.mul(2));
    assert.throws(() => new SGD([q], { lr: 0.1 }), /non-leaf/);
    q.dispose();
    p.dispose();
  });

  it("zeroGrad sets gradients to null (or zero in place), step skips null gradients", () => {
    const p = torch.ones([3]).requiresGrad_();
    const opt = new SGD([p], { lr: 0.5, momentum: 0.9 });
    torch.scope(() => p.mul(2).sum().backward());
    opt.zeroGrad({ setToNone: false });
    const g = p.grad;
    assert.deepEqual(g?.toArray(), [0, 0, 0]);
    g?.dispose();
    opt.zeroGrad();
    assert.equal(p.grad, null);
    opt.step(); // nothing to do
    assert.deepEqual(p.toArray(), [1, 1, 1]);
    assert.equal(opt.stateOf(p), undefined);
    assert.equal(opt.stateDict().state.size, 0);
    opt.dispose();
    p.dispose();
  });

  it("keeps its momentum buffers alive across enclosing scopes and frees them on dispose", () => {
    const p = torch.ones([3]).requiresGrad_();
    const baseline = torch.liveTensors();
    const opt = new SGD([p], { lr: 0.1, momentum: 0.9 });
    for (let i = 0; i < 3; i++) {
      torch.scope(() => {
        p.grad = torch.full([3], 0.5);
        opt.step();
      });
    }
    // Only the momentum buffer remains as a handle (the gradient lives inside p's at::Tensor).
    assert.equal(torch.liveTensors(), baseline + 1);
    const buf = opt.stateOf(p)?.momentum_buffer;
    assert.ok(buf instanceof Tensor && !buf.isDisposed);
    assertClose(buf.toArray(), [0.5 * (1 + 0.9 + 0.81), 0.5 * (1 + 0.9 + 0.81), 0.5 * (1 + 0.9 + 0.81)], "buffer");
    opt.dispose();
    assert.ok(buf.isDisposed);
    assert.equal(torch.liveTensors(), baseline);
    p.dispose();
  });

  it("step records no autograd history and updates in place", () => {
    const p = torch.ones([2]).requiresGrad_();
    const opt = new SGD([p], { lr: 1 });
    p.grad = torch.scope(() => torch.full([2], 0.25));
    opt.step();
    assert.ok(p.isLeaf);
    assert.equal(p.gradFn, null);
    assert.deepEqual(p.toArray(), [0.75, 0.75]);
    opt.dispose();
    p.dispose();
  });

  it("loadStateDict rejects mismatched layouts and leaves the optimizer unchanged", () => {
    const a = torch.zeros([2]).requiresGrad_();
    const b = torch.zeros([3]).requiresGrad_();
    const opt = new SGD([a, b], { lr: 0.1, momentum: 0.9 });
    const good = {
      lr: 0.2,
      momentum: 0.9,
      dampening: 0,
      weight_decay: 0,
      nesterov: false,
      maximize: false,
      foreach: null,
      params: [0, 1],
    };
    assert.throws(
      () => opt.loadStateDict({ state: new Map(), param_groups: [good, good] }),
      /2 parameter groups, the optimizer has 1/,
    );
    assert.throws(
      () => opt.loadStateDict({ state: new Map(), param_groups: [{ ...good, params: [0] }] }),
      /holds 1 parameters, the optimizer's group 0 holds 2/,
    );
    const wrong = torch.zeros([5]);
    assert.throws(
      () => opt.loadStateDict({ state: new Map([[0, { momentum_buffer: wrong }]]), param_groups: [good] }),
      /momentum_buffer has shape \[5\], its parameter has shape \[2\]/,
    );
    assert.throws(
      () => opt.loadStateDict({ state: new Map([[7, { momentum_buffer: null }]]), param_groups: [good] }),
      /state\[7\] names no parameter/,
    );
    assert.throws(
      () => opt.loadStateDict({ state: new Map(), param_groups: [{ ...good, lr: "fast" }] }),
      /param_groups\[0\]\.lr must be a number/,
    );
    assert.equal(opt.paramGroups[0]?.lr, 0.1);
    // bigint numbers (Python ints from an unpickler) are accepted.
    opt.loadStateDict({ state: new Map(), param_groups: [{ ...good, dampening: 0n, params: [0n, 1n] }] });
    assert.equal(opt.paramGroups[0]?.lr, 0.2);
    wrong.dispose();
    opt.dispose();
    a.dispose();
    b.dispose();
  });
});

describe("learning-rate schedules", () => {
  const spec = { lr: 0.03, epochs: 200, milestones: [120, 160], gamma: 0.1, warmup: 5, start_factor: 0.1 };
  const py = runPython<Record<string, number[]>>("optim_schedules.py", spec);
  const epochs = Array.from({ length: spec.epochs }, (_, e) => e);
  const rel = (values: number[], expected: number[] | undefined, what: string) =>
    assertClose(values, expected ?? [], what, 1e-12, 0);

  it("step equals the official MoCo adjust_learning_rate bit for bit and torch's MultiStepLR", () => {
    const sched = stepSchedule({ lr: spec.lr, milestones: spec.milestones, gamma: spec.gamma });
    const ours = epochs.map(sched);
    assert.deepEqual(ours, py.moco_step);
    rel(ours, py.multistep, "MultiStepLR");
    assert.equal(sched(119), 0.03);
    assert.equal(sched(119.99), 0.03);
    assert.equal(sched(120), 0.03 * 0.1);
  });

  it("cosine equals the official MoCo v2 formula and torch's CosineAnnealingLR", () => {
    const sched = cosineSchedule({ lr: spec.lr, epochs: spec.epochs });
    const ours = epochs.map(sched);
    // Same expression in the same order; V8's Math.cos and glibc's cos may differ in the last bit.
    assertClose(ours, py.moco_cos ?? [], "MoCo cosine", 4e-16 * 8, 0);
    rel(ours, py.cosine_annealing, "CosineAnnealingLR");
    assert.equal(sched(spec.epochs), 0);
    assert.equal(sched(spec.epochs + 10), 0);
  });

  it("per-iteration cosine uses the fractional epoch", () => {
    const sched = cosineSchedule({ lr: 0.06, epochs: 10 });
    const e = fractionalEpoch(3, 25, 100);
    assert.equal(e, 3.25);
    assert.equal(sched(e), 0.06 * (0.5 * (1 + Math.cos((Math.PI * 3.25) / 10))));
    assert.ok(sched(3) > sched(3.25) && sched(3.25) > sched(3.5));
    assert.throws(() => fractionalEpoch(3, 100, 100), /iteration must be an integer in \[0, 100\)/);
    const floor = cosineSchedule({ lr: 0.1, epochs: 10, minLr: 0.001 });
    assert.equal(floor(0), 0.1);
    assert.ok(Math.abs(floor(10) - 0.001) < 1e-15);
  });

  it("linear warmup composes with step (as LinearLR chained with MultiStepLR) and with cosine", () => {
    const sched = withWarmup(stepSchedule({ lr: spec.lr, milestones: spec.milestones }), {
      epochs: spec.warmup,
      startFactor: spec.start_factor,
    });
    rel(epochs.map(sched), py.warmup_multistep, "LinearLR+MultiStepLR");
    const cos = cosineSchedule({ lr: 0.1, epochs: 100 });
    const warm = withWarmup(cos, { epochs: 10 });
    assert.equal(warm(0), 0);
    assert.equal(warm(5), cos(5) * 0.5);
    assert.equal(warm(10), cos(10));
    assert.equal(warm(50), cos(50));
  });

  it("schedules are pure: any order of calls gives the same values (exact resume)", () => {
    const sched = withWarmup(cosineSchedule({ lr: 0.03, epochs: 50 }), { epochs: 3 });
    const forward = Array.from({ length: 50 }, (_, e) => sched(e));
    const backward = Array.from({ length: 50 }, (_, e) => sched(49 - e)).reverse();
    assert.deepEqual(forward, backward);
  });

  it("validates arguments; setLr sets every group", () => {
    assert.throws(() => stepSchedule({ lr: -1, milestones: [] }), /lr must be >= 0/);
    assert.throws(() => cosineSchedule({ lr: 0.1, epochs: 0 }), /epochs must be > 0/);
    assert.throws(
      () => withWarmup(constantSchedule(0.1), { epochs: 2, startFactor: 2 }),
      /startFactor must be in \[0, 1\]/,
    );
    assert.throws(() => constantSchedule(0.1)(-1), /epoch must be >= 0/);
    assert.throws(() => constantSchedule(0.1)(Number.NaN), /epoch must be a finite number/);
    const a = torch.zeros([1]).requiresGrad_();
    const b = torch.zeros([1]).requiresGrad_();
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 5 }], { lr: 1 });
    setLr(opt, 0.25);
    assert.deepEqual(
      opt.paramGroups.map((g) => g.lr),
      [0.25, 0.25],
    );
    assert.throws(() => setLr(opt, -0.1), /lr must be >= 0/);
    a.dispose();
    b.dispose();
  });
});

// Through our serializer (src/torch/serialize): ours → torch.load, torch.save → ours.
describe("SGD state dict through torch.save / torch.load files", () => {
  const scenario = scenarios[6] as Scenario; // two groups, momentum, weight decay, skipped gradients
  const { init, grads } = makeData(11, 4, scenario.nullGrads);
  const dir = mkdtempSync(join(tmpdir(), "moco-optim-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const gradTensors = (from: number, to: number) =>
    grads.slice(from, to).map((step) => step.map((g) => (g === null ? null : fromJson(g))));
  const disposeAll = (value: unknown): void => {
    if (value instanceof Tensor) value.dispose();
    else if (value instanceof Map) for (const v of value.values()) disposeAll(v);
    else if (Array.isArray(value)) value.forEach(disposeAll);
    else if (typeof value === "object" && value !== null) Object.values(value).forEach(disposeAll);
  };
  const runSerialize = (input: string, output: string) => {
    const r = spawnSync(PYTHON, [join(here, "py", "optim_serialize.py"), input, output], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`optim_serialize.py failed:\n${r.stderr}`);
  };

  it("ours, saved with our serializer, loads in Python's torch.optim.SGD and continues as we do", () => {
    const params = init.map((j) => fromJson(j).requiresGrad_());
    const opt = makeOptimizer(scenario, params);
    for (let s = 0; s < 2; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const later = gradTensors(2, 4);
    const input = join(dir, "ours.pt");
    save(
      {
        params: params.map((p) => p.detach()),
        groups: scenario.groups,
        defaults: scenario.defaults,
        grads: later,
        lrs: scenario.lrs?.slice(2) ?? null,
        optimizer: opt.stateDict(),
      } as Saveable,
      input,
    );
    disposeAll(later);
    for (let s = 2; s < 4; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const output = join(dir, "python.pt");
    runSerialize(input, output);
    const result = load(output) as {
      params: Tensor[];
      optimizer: unknown;
      loaded: unknown;
      checks: Record<string, string[]>;
    };
    // Python sees PyTorch's own layout: int state keys, tensor buffers, the same group keys.
    assert.deepEqual(result.checks.state_key_types, ["int"]);
    assert.deepEqual(result.checks.buffer_types, ["Tensor"]);
    assert.deepEqual(result.checks.group_keys, result.checks.reference_group_keys);
    params.forEach((p, i) => assertTensorClose(p, toJson(result.params[i] as Tensor), `param ${i}`));
    assertSameLayout(encode(opt.stateDict()), encode(result.optimizer));
    disposeAll(result);
    opt.dispose();
    params.forEach((p) => p.dispose());
  });

  it("PyTorch's, written by torch.save, loads through our serializer and continues as PyTorch does", () => {
    // Python takes 2 steps from `init` and saves; we load that and take 2 more; Python takes all 4.
    const first = join(dir, "start.pt");
    const initTensors = init.map(fromJson);
    const base = { groups: scenario.groups, defaults: scenario.defaults, optimizer: null };
    save(
      { ...base, params: initTensors, grads: gradTensors(0, 2), lrs: scenario.lrs?.slice(0, 2) ?? null } as Saveable,
      first,
    );
    runSerialize(first, join(dir, "two.pt"));
    save({ ...base, params: initTensors, grads: gradTensors(0, 4), lrs: scenario.lrs ?? null } as Saveable, first);
    runSerialize(first, join(dir, "four.pt"));
    initTensors.forEach((t) => t.dispose());

    const two = load(join(dir, "two.pt")) as { params: Tensor[]; optimizer: { state: unknown; param_groups: unknown } };
    assert.ok(two.optimizer.state instanceof Map, "Python's int-keyed state loads as a Map");
    const params = two.params.map((t) => t.clone().requiresGrad_());
    const opt = makeOptimizer(scenario, params);
    opt.loadStateDict(two.optimizer);
    disposeAll(two);
    for (let s = 2; s < 4; s++) ourStep(opt, params, grads[s] as (JsonTensor | null)[], scenario.lrs?.[s]);
    const four = load(join(dir, "four.pt")) as { params: Tensor[]; optimizer: unknown };
    params.forEach((p, i) => assertTensorClose(p, toJson(four.params[i] as Tensor), `param ${i}`));
    assertSameLayout(encode(opt.stateDict()), encode(four.optimizer));
    disposeAll(four);
    opt.dispose();
    params.forEach((p) => p.dispose());
  });
});
