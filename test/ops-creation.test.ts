// Creation, conversion, metadata, RNG streams and runtime settings, checked against PyTorch.
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import { describe, it } from "node:test";
import * as torch from "../src/torch/index.js";
import { crossCheck, op, runPython, assertMatchesPython, type PyValue } from "./helpers/pytorch.js";

const exact = { rtol: 0, atol: 0 };

crossCheck("creation: filled tensors, ranges and eye", [
  op({ name: "zeros", expr: "torch.zeros(2, 3)", ours: () => torch.zeros([2, 3]) }),
  op({
    name: "zeros int64",
    expr: "torch.zeros(4, dtype=torch.int64)",
    ours: () => torch.zeros(4, { dtype: "int64" }),
  }),
  op({ name: "zeros 0-d", expr: "torch.zeros(())", ours: () => torch.zeros([]) }),
  op({
    name: "ones float64",
    expr: "torch.ones(2, 2, dtype=torch.float64)",
    ours: () => torch.ones([2, 2], { dtype: "float64" }),
  }),
  op({ name: "ones bool", expr: "torch.ones(3, dtype=torch.bool)", ours: () => torch.ones([3], { dtype: "bool" }) }),
  op({ name: "full float", expr: "torch.full((2, 3), 3.5)", ours: () => torch.full([2, 3], 3.5) }),
  op({ name: "full int infers int64", expr: "torch.full((2,), 7)", ours: () => torch.full([2], 7) }),
  op({ name: "full bool", expr: "torch.full((2,), True)", ours: () => torch.full([2], true) }),
  op({
    name: "full uint8",
    expr: "torch.full((3,), 200, dtype=torch.uint8)",
    ours: () => torch.full([3], 200, { dtype: "uint8" }),
  }),
  op({
    name: "empty: shape and dtype",
    expr: "(list(torch.empty(2, 5, dtype=torch.int32).shape), torch.empty(2, 5, dtype=torch.int32).dtype, torch.empty(3).dtype)",
    ours: () => {
      const t = torch.empty([2, 5], { dtype: "int32" });
      return [[...t.shape], t.dtype, torch.empty([3]).dtype];
    },
  }),
  op({ name: "arange end", expr: "torch.arange(5)", ours: () => torch.arange(5) }),
  op({ name: "arange start end", expr: "torch.arange(-3, 4)", ours: () => torch.arange(-3, 4) }),
  op({ name: "arange negative step", expr: "torch.arange(10, 0, -3)", ours: () => torch.arange(10, 0, -3) }),
  op({ name: "arange fractional step", expr: "torch.arange(1, 4, 0.5)", ours: () => torch.arange(1, 4, 0.5) }),
  op({ name: "arange 0..1 by 0.1", expr: "torch.arange(0, 1, 0.1)", ours: () => torch.arange(0, 1, 0.1) }),
  op({ name: "arange fractional end", expr: "torch.arange(2.5)", ours: () => torch.arange(2.5) }),
  op({
    name: "arange float64",
    expr: "torch.arange(0, 2, 0.25, dtype=torch.float64)",
    ours: () => torch.arange(0, 2, 0.25, { dtype: "float64" }),
  }),
  op({
    name: "arange int32",
    expr: "torch.arange(6, dtype=torch.int32)",
    ours: () => torch.arange(6, undefined, 1, { dtype: "int32" }),
  }),
  op({ name: "linspace", expr: "torch.linspace(0, 1, 5)", ours: () => torch.linspace(0, 1, 5) }),
  op({ name: "linspace 7 steps", expr: "torch.linspace(-2, 3, 7)", ours: () => torch.linspace(-2, 3, 7) }),
  op({
    name: "linspace float64",
    expr: "torch.linspace(-1, 1, 11, dtype=torch.float64)",
    ours: () => torch.linspace(-1, 1, 11, { dtype: "float64" }),
  }),
  op({ name: "linspace one step", expr: "torch.linspace(2, 5, 1)", ours: () => torch.linspace(2, 5, 1) }),
  op({ name: "eye", expr: "torch.eye(3)", ours: () => torch.eye(3) }),
  op({ name: "eye rectangular", expr: "torch.eye(2, 4)", ours: () => torch.eye(2, 4) }),
  op({
    name: "eye int64",
    expr: "torch.eye(3, 2, dtype=torch.int64)",
    ours: () => torch.eye(3, 2, { dtype: "int64" }),
  }),
  op({
    name: "zerosLike/onesLike",
    expr: "(torch.zeros_like(x), torch.ones_like(x))",
    inputs: { x: torch.eye(2, 3, { dtype: "int32" }) },
    ours: ({ x }) => [torch.zerosLike(x), torch.onesLike(x)],
  }),
]);

crossCheck("creation: from JS data and typed arrays", [
  op({
    name: "from Float32Array",
    expr: "torch.tensor([1.5, -2.25, 3e-8, 65504.0, -0.0], dtype=torch.float32)",
    ours: () => torch.fromTypedArray(new Float32Array([1.5, -2.25, 3e-8, 65504.0, -0.0])),
  }),
  op({
    name: "from Float64Array with shape",
    expr: "torch.tensor([[0.1, 0.2, 0.3], [1e-300, 1e300, -7.0]], dtype=torch.float64)",
    ours: () => torch.fromTypedArray(new Float64Array([0.1, 0.2, 0.3, 1e-300, 1e300, -7.0]), [2, 3]),
  }),
  op({
    name: "from Int32Array",
    expr: "torch.tensor([-2147483648, 2147483647, 0, 5], dtype=torch.int32)",
    ours: () => torch.fromTypedArray(new Int32Array([-2147483648, 2147483647, 0, 5])),
  }),
  op({
    name: "from BigInt64Array beyond 2^53",
    expr: "torch.tensor([2**62 + 1, -(2**63), 2**63 - 1, -5], dtype=torch.int64)",
    ours: () => torch.fromTypedArray(new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 1n, -5n])),
  }),
  op({
    name: "from Uint8Array",
    expr: "torch.tensor([[0, 255], [7, 128]], dtype=torch.uint8)",
    ours: () => torch.fromTypedArray(new Uint8Array([0, 255, 7, 128]), [2, 2]),
  }),
  op({
    name: "from Uint8Array as bool",
    expr: "torch.tensor([True, False, True])",
    ours: () => torch.fromTypedArray(new Uint8Array([1, 0, 1]), [3], "bool"),
  }),
  op({
    name: "tensor() nested ints",
    expr: "torch.tensor([[1, 2], [3, -4]])",
    ours: () =>
      torch.tensor([
        [1, 2],
        [3, -4],
      ]),
  }),
  op({ name: "tensor() floats", expr: "torch.tensor([[1.5], [2.0]])", ours: () => torch.tensor([[1.5], [2]]) }),
  op({ name: "tensor() bools", expr: "torch.tensor([True, False])", ours: () => torch.tensor([true, false]) }),
  op({ name: "tensor() scalar", expr: "torch.tensor(3.25)", ours: () => torch.tensor(3.25) }),
  op({
    name: "tensor() with dtype",
    expr: "torch.tensor([1, 2], dtype=torch.float64)",
    ours: () => torch.tensor([1, 2], { dtype: "float64" }),
  }),
  op({
    name: "tensor() 0.1 rounds like Python",
    expr: "torch.tensor([0.1, 1/3])",
    ours: () => torch.tensor([0.1, 1 / 3]),
  }),
  op({
    name: "to Float32Array (non-contiguous source)",
    expr: "x.t().contiguous().flatten().tolist()",
    inputs: {
      x: torch.tensor([
        [0.5, -1.25, 3],
        [4, 5, 6.5],
      ]),
    },
    ours: ({ x }) => {
      const data = x.t().toTypedArray();
      assert.ok(data instanceof Float32Array);
      return Array.from(data);
    },
  }),
  op({
    name: "to Float64Array",
    expr: "[0.1, 1e-300, -2.5]",
    ours: () => {
      const data = torch.tensor([0.1, 1e-300, -2.5], { dtype: "float64" }).toTypedArray();
      assert.ok(data instanceof Float64Array);
      return Array.from(data);
    },
  }),
  op({
    name: "to Int32Array",
    expr: "torch.arange(-3, 3, dtype=torch.int32).tolist()",
    ours: () => {
      const data = torch.arange(-3, 3, 1, { dtype: "int32" }).toTypedArray();
      assert.ok(data instanceof Int32Array);
      return Array.from(data);
    },
  }),
  op({
    name: "to BigInt64Array (exact beyond 2^53)",
    expr: "[str(v) for v in (torch.tensor([2**62 + 1, -3]) * 1).tolist()]",
    ours: () => {
      const data = torch
        .fromTypedArray(new BigInt64Array([2n ** 62n + 1n, -3n]))
        .mul(1)
        .toTypedArray();
      assert.ok(data instanceof BigInt64Array);
      return Array.from(data, String);
    },
  }),
  op({
    name: "to Uint8Array (uint8 and bool)",
    expr: "(torch.tensor([0, 9, 255], dtype=torch.uint8).tolist(), [int(b) for b in (torch.arange(4) > 1).tolist()])",
    ours: () => {
      const u = torch.tensor([0, 9, 255], { dtype: "uint8" }).toTypedArray();
      const b = torch.arange(4).gt(1).toTypedArray();
      assert.ok(u instanceof Uint8Array && b instanceof Uint8Array);
      return [Array.from(u), Array.from(b)];
    },
  }),
  op({
    name: "toArray/tolist",
    expr: "x.tolist()",
    inputs: { x: torch.arange(6).reshape(2, 3) },
    ours: ({ x }) => x.tolist(),
  }),
  op({
    name: "item float32",
    expr: "x.sum().item()",
    inputs: { x: torch.tensor([0.1, 0.2, 0.3]) },
    ours: ({ x }) => x.sum().item(),
    tol: exact,
  }),
  op({
    name: "item int64",
    expr: "x.max().item()",
    inputs: { x: torch.tensor([3, 17, -2]) },
    ours: ({ x }) => x.max().item(),
  }),
  op({
    name: "item float64",
    expr: "x.item()",
    inputs: { x: torch.tensor([1 / 3], { dtype: "float64" }) },
    ours: ({ x }) => x.item(),
    tol: exact,
  }),
  op({
    name: "item bool (as a number)",
    expr: "int(x.any().item())",
    inputs: { x: torch.tensor([false, true]) },
    ours: ({ x }) => x.any().item(),
  }),
  op({
    name: "shape, dtype and device",
    expr: "[(list(t.shape), t.dtype, str(t.device), t.dim(), t.numel()) for t in (x, x.float(), x.double(), x.int(), x.long(), x.bool(), x.to(torch.float16))]",
    inputs: { x: torch.arange(24).reshape(2, 3, 4) },
    ours: ({ x }) =>
      [x, x.float(), x.double(), x.int(), x.long(), x.bool(), x.to("float16")].map((t) => [
        [...t.shape],
        t.dtype,
        t.device,
        t.ndim,
        t.numel,
      ]),
  }),
  op({
    name: "strides of a transpose",
    expr: "list(x.transpose(0, 2).stride())",
    inputs: { x: torch.zeros([2, 3, 4]) },
    ours: ({ x }) => [...x.transpose(0, 2).strides],
  }),
]);

// Same engine (mt19937 in libtorch's CPU generator), same seed: the streams must match bit for bit.
crossCheck("creation: random streams equal Python's after manual_seed", [
  op({
    name: "rand after seed",
    setup: "torch.manual_seed(123)",
    expr: "torch.rand(3, 4)",
    ours: () => (torch.manualSeed(123), torch.rand([3, 4])),
    tol: exact,
  }),
  op({
    name: "rand float64 after seed",
    setup: "torch.manual_seed(5)",
    expr: "torch.rand(7, dtype=torch.float64)",
    ours: () => (torch.manualSeed(5), torch.rand([7], { dtype: "float64" })),
    tol: exact,
  }),
  op({
    name: "randn small (scalar path)",
    setup: "torch.manual_seed(1)",
    expr: "torch.randn(5)",
    ours: () => (torch.manualSeed(1), torch.randn([5])),
    tol: exact,
  }),
  op({
    name: "randn large (vectorised path)",
    setup: "torch.manual_seed(2)",
    expr: "torch.randn(4, 50)",
    ours: () => (torch.manualSeed(2), torch.randn([4, 50])),
    tol: exact,
  }),
  op({
    name: "randint after seed",
    setup: "torch.manual_seed(3)",
    expr: "(torch.randint(0, 10, (12,)), torch.randint(-5, 5, (2, 3), dtype=torch.int32))",
    ours: () => (torch.manualSeed(3), [torch.randint(0, 10, [12]), torch.randint(-5, 5, [2, 3], { dtype: "int32" })]),
  }),
  op({
    name: "randperm after seed",
    setup: "torch.manual_seed(4)",
    expr: "(torch.randperm(10), torch.randperm(100), torch.randperm(5, dtype=torch.int32))",
    ours: () => (torch.manualSeed(4), [torch.randperm(10), torch.randperm(100), torch.randperm(5, { dtype: "int32" })]),
  }),
  op({
    name: "one stream across rand, randn, randperm and randint",
    setup: "torch.manual_seed(7)",
    expr: "(torch.rand(5), torch.randn(20), torch.randperm(8), torch.randint(-3, 3, (6,)), torch.rand(2))",
    ours: () => {
      torch.manualSeed(7);
      return [torch.rand([5]), torch.randn([20]), torch.randperm(8), torch.randint(-3, 3, [6]), torch.rand([2])];
    },
    tol: exact,
  }),
  op({
    name: "uniform_ and normal_ after seed",
    setup: "torch.manual_seed(8)",
    expr: "(torch.empty(6).uniform_(-2, 3), torch.empty(20).normal_(1, 0.5))",
    ours: () => {
      torch.manualSeed(8);
      return [torch.empty([6]).uniform_(-2, 3), torch.empty([20]).normal_(1, 0.5)];
    },
    tol: exact,
  }),
  op({
    name: "bernoulli after seed",
    setup: "torch.manual_seed(9)",
    expr: "torch.bernoulli(p)",
    inputs: { p: torch.linspace(0, 1, 20) },
    ours: ({ p }) => (torch.manualSeed(9), torch.bernoulli(p)),
  }),
  op({
    name: "getRngState after seed equals torch.get_rng_state()",
    setup: "torch.manual_seed(42)",
    expr: "torch.get_rng_state()",
    ours: () => (torch.manualSeed(42), torch.getRngState()),
  }),
]);

describe("creation: random ranges and dtypes", () => {
  it("rand is in [0, 1) with the requested dtype", () => {
    torch.scope(() => {
      torch.manualSeed(11);
      const r = torch.rand([20000]);
      assert.equal(r.dtype, "float32");
      assert.ok(r.min().item() >= 0 && r.max().item() < 1);
      assert.ok(Math.abs(r.mean().item() - 0.5) < 0.01);
      assert.equal(torch.rand([2], { dtype: "float64" }).dtype, "float64");
    });
  });
  it("randn has mean 0 and std 1", () => {
    torch.scope(() => {
      torch.manualSeed(12);
      const r = torch.randn([20000]);
      assert.equal(r.dtype, "float32");
      assert.ok(Math.abs(r.mean().item()) < 0.03);
      assert.ok(Math.abs(r.std().item() - 1) < 0.03);
    });
  });
  it("randint covers [low, high) and nothing else", () => {
    torch.scope(() => {
      torch.manualSeed(13);
      const r = torch.randint(-2, 3, [5000]);
      assert.equal(r.dtype, "int64");
      assert.equal(r.min().item(), -2);
      assert.equal(r.max().item(), 2);
      assert.equal(torch.randint(0, 4, [3], { dtype: "uint8" }).dtype, "uint8");
      assert.throws(() => torch.randint(3, 3, [2]), /high/);
    });
  });
  it("randperm is a permutation of 0..n-1", () => {
    torch.scope(() => {
      const p = torch.randperm(1000);
      assert.equal(p.dtype, "int64");
      assert.deepEqual(
        p.sort().values.toArray(),
        Array.from({ length: 1000 }, (_, i) => i),
      );
      assert.equal(torch.randperm(0).numel, 0);
    });
  });
});

describe("runtime: RNG state", () => {
  it("save, draw, restore, draw again gives identical draws", () => {
    torch.scope(() => {
      torch.manualSeed(21);
      torch.rand([3]);
      const state = torch.getRngState();
      assert.equal(state.dtype, "uint8");
      const first = [torch.rand([10]), torch.randn([33]), torch.randperm(17), torch.randint(0, 100, [9])];
      torch.setRngState(state);
      const second = [torch.rand([10]), torch.randn([33]), torch.randperm(17), torch.randint(0, 100, [9])];
      first.forEach((t, i) => assert.ok(t.equal(second[i] as torch.Tensor), `draw ${i} differs after restoring`));
      // The state tensor is a copy: drawing did not change it.
      assert.ok(torch.getRngState().equal(state) === false);
    });
  });

  it("a state from Python's torch.get_rng_state() reproduces Python's next draws", () => {
    torch.scope(() => {
      const [result] = runPython([
        {
          name: "state",
          setup: "torch.manual_seed(99)\ntorch.randn(3)\ns = torch.get_rng_state()",
          expr: "(s, torch.rand(6), torch.randn(17), torch.randperm(12), torch.randint(0, 1000, (5,)))",
        },
      ]);
      assert.ok(result !== undefined && result.error === undefined, result?.error);
      const [state, ...draws] = result.value as torch.Tensor[];
      torch.manualSeed(0); // something else first: the state alone must determine the stream
      torch.setRngState(state as torch.Tensor);
      const ours = [torch.rand([6]), torch.randn([17]), torch.randperm(12), torch.randint(0, 1000, [5])];
      assertMatchesPython(ours, draws as PyValue, "draws after setRngState", exact);
    });
  });

  it("rejects a state that is not a uint8 tensor", () => {
    torch.scope(() => {
      assert.throws(() => torch.setRngState(torch.zeros([5056])), /uint8/);
    });
  });
});

describe("runtime: thread count", () => {
  it("setNumThreads changes getNumThreads and is restored", () => {
    const original = torch.getNumThreads();
    assert.ok(Number.isInteger(original) && original >= 1);
    try {
      torch.setNumThreads(2);
      assert.equal(torch.getNumThreads(), 2);
      torch.setNumThreads(1);
      assert.equal(torch.getNumThreads(), 1);
      torch.scope(() => {
        // Work still runs (and agrees) on one thread.
        const a = torch.ones([64, 64]);
        assert.equal(a.mm(a).sum().item(), 64 * 64 * 64);
      });
    } finally {
      torch.setNumThreads(original);
    }
    assert.equal(torch.getNumThreads(), original);
  });
  it("rejects invalid counts", () => {
    assert.throws(() => torch.setNumThreads(0), /setNumThreads/);
    assert.throws(() => torch.setNumThreads(1.5), /setNumThreads/);
    assert.throws(() => torch.setThreadNumThreads(0), /setThreadNumThreads/);
  });
  it("setThreadNumThreads in a worker thread sets that thread's count only (the loader's workers)", async () => {
    const original = torch.getNumThreads();
    torch.setNumThreads(2);
    try {
      // The worker runs the TypeScript sources through tsx's loader, registered in it first.
      const api = import.meta.resolve("tsx/esm/api");
      const runtime = new URL("../src/torch/index.ts", import.meta.url).href;
      const code = `
        const { parentPort } = require("node:worker_threads");
        import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(runtime)}); }).then((torch) => {
          const before = torch.getNumThreads();
          const changed = torch.setThreadNumThreads(1);
          const sum = torch.scope(() => torch.ones([64, 64]).mm(torch.ones([64, 64])).sum().item());
          parentPort.postMessage({ before, changed, after: torch.getNumThreads(), sum });
        });`;
      const worker = new Worker(code, { eval: true });
      const report = await new Promise<{ before: number; changed: boolean; after: number; sum: number }>(
        (resolve, reject) => {
          worker.once("message", resolve);
          worker.once("error", reject);
        },
      );
      await worker.terminate();
      assert.equal(report.before, 2); // a new thread starts from the process-wide count
      assert.equal(report.changed, true); // Debian's libtorch: the OpenMP backend
      assert.equal(report.after, 1);
      assert.equal(report.sum, 64 * 64 * 64);
      assert.equal(torch.getNumThreads(), 2); // this thread's count is untouched
    } finally {
      torch.setNumThreads(original);
    }
  });
});
