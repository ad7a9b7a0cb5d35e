// Reductions, arg-reductions, top-k and sorting, forward and gradients, checked against PyTorch.
import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(3000);
const x = torch.randn([3, 4, 5]);
const m = torch.randn([4, 6]);
const v = torch.randn([7]);
const pos = torch.rand([3, 4]).add(0.5);
const ints = torch.randint(-5, 6, [3, 4]);
const dups = torch.tensor([
  [3, 1, 3, 2, 1, 3],
  [0, 0, 5, 5, 0, 1],
]); // ties: sort must be stable
const mask = torch.tensor([
  [true, false, true],
  [true, true, true],
]);
const counts = torch.tensor([0, 3, 1, 3, 3, 5]);

crossCheck("reduce: sum, mean, std, var and friends", [
  op({ name: "sum all", expr: "x.sum()", inputs: { x }, ours: ({ x }) => x.sum(), grad: ["x"] }),
  op({ name: "sum dim", expr: "x.sum(1)", inputs: { x }, ours: ({ x }) => x.sum(1), grad: ["x"] }),
  op({
    name: "sum dims keepdim",
    expr: "x.sum((0, 2), keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.sum([0, 2], true),
    grad: ["x"],
  }),
  op({ name: "sum negative dim", expr: "x.sum(-1)", inputs: { x }, ours: ({ x }) => x.sum(-1), grad: ["x"] }),
  op({
    name: "sum to float64",
    expr: "x.sum(1, dtype=torch.float64)",
    inputs: { x },
    ours: ({ x }) => x.sum(1, false, "float64"),
    grad: ["x"],
  }),
  op({ name: "sum int64 stays int64", expr: "i.sum()", inputs: { i: ints }, ours: ({ i }) => i.sum() }),
  op({ name: "sum int32 becomes int64", expr: "i.int().sum(0)", inputs: { i: ints }, ours: ({ i }) => i.int().sum(0) }),
  op({
    name: "sum bool counts",
    expr: "(k.sum(), k.sum(1))",
    inputs: { k: mask },
    ours: ({ k }) => [k.sum(), k.sum(1)],
  }),
  op({ name: "mean all", expr: "x.mean()", inputs: { x }, ours: ({ x }) => x.mean(), grad: ["x"] }),
  op({
    name: "mean dim keepdim",
    expr: "x.mean(1, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.mean(1, true),
    grad: ["x"],
  }),
  op({ name: "mean dims", expr: "x.mean((1, 2))", inputs: { x }, ours: ({ x }) => x.mean([1, 2]), grad: ["x"] }),
  op({
    name: "mean of int64 with dtype",
    expr: "i.mean(dtype=torch.float32)",
    inputs: { i: ints },
    ours: ({ i }) => i.mean(undefined, false, "float32"),
  }),
  op({ name: "mean of int64 throws", expr: "i.mean()", inputs: { i: ints }, ours: ({ i }) => i.mean(), throws: true }),
  op({ name: "std all", expr: "x.std()", inputs: { x }, ours: ({ x }) => x.std(), grad: ["x"] }),
  op({ name: "std dim", expr: "x.std(1)", inputs: { x }, ours: ({ x }) => x.std(1), grad: ["x"] }),
  op({
    name: "std biased keepdim",
    expr: "x.std(2, unbiased=False, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.std(2, false, true),
    grad: ["x"],
  }),
  op({ name: "std dims", expr: "x.std((0, 2))", inputs: { x }, ours: ({ x }) => x.std([0, 2]), grad: ["x"] }),
  op({ name: "var all", expr: "x.var()", inputs: { x }, ours: ({ x }) => x.var(), grad: ["x"] }),
  op({
    name: "var dim biased",
    expr: "x.var(0, unbiased=False)",
    inputs: { x },
    ours: ({ x }) => x.var(0, false),
    grad: ["x"],
  }),
  op({
    name: "var dim keepdim",
    expr: "x.var(-1, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.var(-1, true, true),
    grad: ["x"],
  }),
  op({ name: "prod all", expr: "p.prod()", inputs: { p: pos }, ours: ({ p }) => p.prod(), grad: ["p"] }),
  op({
    name: "prod dim keepdim",
    expr: "p.prod(1, keepdim=True)",
    inputs: { p: pos },
    ours: ({ p }) => p.prod(1, true),
    grad: ["p"],
  }),
  op({ name: "norm", expr: "x.norm()", inputs: { x }, ours: ({ x }) => x.norm(), grad: ["x"] }),
  op({ name: "norm p1 dim", expr: "x.norm(1, 2)", inputs: { x }, ours: ({ x }) => x.norm(1, 2), grad: ["x"] }),
  op({
    name: "norm p2 dims keepdim",
    expr: "x.norm(2, (1, 2), keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.norm(2, [1, 2], true),
    grad: ["x"],
  }),
  op({ name: "logsumexp", expr: "x.logsumexp(1)", inputs: { x }, ours: ({ x }) => x.logsumexp(1), grad: ["x"] }),
  op({
    name: "logsumexp large values",
    expr: "(x * 100).logsumexp((0, 2), keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.mul(100).logsumexp([0, 2], true),
    grad: ["x"],
  }),
  op({ name: "cumsum", expr: "x.cumsum(2)", inputs: { x }, ours: ({ x }) => x.cumsum(2), grad: ["x"] }),
  op({ name: "cumsum int", expr: "i.cumsum(0)", inputs: { i: ints }, ours: ({ i }) => i.cumsum(0) }),
  op({
    name: "all, any",
    expr: "(k.all(), k.any(), k.all(1), k.any(0), k.all(0, keepdim=True))",
    inputs: { k: mask },
    ours: ({ k }) => [k.all(), k.any(), k.all(1), k.any(0), k.all(0, true)],
  }),
  op({
    name: "all, any of numbers",
    expr: "(i.all(), i.any(), (i * 0).any(), i.all(1))",
    inputs: { i: ints },
    ours: ({ i }) => [i.all(), i.any(), i.mul(0).any(), i.all(1)],
  }),
  op({ name: "bincount", expr: "torch.bincount(c)", inputs: { c: counts }, ours: ({ c }) => torch.bincount(c) }),
  op({
    name: "bincount weights minlength",
    expr: "torch.bincount(c, w, minlength=8)",
    inputs: { c: counts, w: torch.rand([6]) },
    ours: ({ c, w }) => torch.bincount(c, w, 8),
  }),
]);

crossCheck("reduce: min, max, arg-reductions, topk and sort", [
  op({ name: "max all", expr: "x.max()", inputs: { x }, ours: ({ x }) => x.max(), grad: ["x"] }),
  op({ name: "min all", expr: "x.min()", inputs: { x }, ours: ({ x }) => x.min(), grad: ["x"] }),
  op({ name: "max dim", expr: "x.max(1)", inputs: { x }, ours: ({ x }) => x.max(1), grad: ["x"] }),
  op({
    name: "max dim keepdim",
    expr: "x.max(-1, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.max(-1, true),
    grad: ["x"],
  }),
  op({ name: "min dim", expr: "x.min(0)", inputs: { x }, ours: ({ x }) => x.min(0), grad: ["x"] }),
  op({
    name: "min dim keepdim",
    expr: "x.min(2, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.min(2, true),
    grad: ["x"],
  }),
  op({ name: "max int64", expr: "(i.max(), i.max(1))", inputs: { i: ints }, ours: ({ i }) => [i.max(), i.max(1)] }),
  op({ name: "argmax all", expr: "x.argmax()", inputs: { x }, ours: ({ x }) => x.argmax() }),
  op({ name: "argmax dim", expr: "x.argmax(1)", inputs: { x }, ours: ({ x }) => x.argmax(1) }),
  op({
    name: "argmax dim keepdim",
    expr: "x.argmax(2, keepdim=True)",
    inputs: { x },
    ours: ({ x }) => x.argmax(2, true),
  }),
  op({ name: "argmin all", expr: "x.argmin()", inputs: { x }, ours: ({ x }) => x.argmin() }),
  op({ name: "argmin dim", expr: "x.argmin(-1)", inputs: { x }, ours: ({ x }) => x.argmin(-1) }),
  op({
    name: "argmax with ties picks the first",
    expr: "d.argmax(1)",
    inputs: { d: dups },
    ours: ({ d }) => d.argmax(1),
  }),
  op({ name: "topk", expr: "m.topk(3)", inputs: { m }, ours: ({ m }) => m.topk(3), grad: ["m"] }),
  op({
    name: "topk dim 0 smallest",
    expr: "m.topk(2, dim=0, largest=False)",
    inputs: { m },
    ours: ({ m }) => m.topk(2, 0, false),
    grad: ["m"],
  }),
  op({ name: "topk of a vector", expr: "v.topk(5)", inputs: { v }, ours: ({ v }) => v.topk(5), grad: ["v"] }),
  op({
    name: "topk int64",
    expr: "i.topk(2)",
    inputs: {
      i: torch.tensor([
        [5, 1, 9, 3],
        [2, 8, 0, 7],
      ]),
    },
    ours: ({ i }) => i.topk(2),
  }),
  op({ name: "sort", expr: "m.sort()", inputs: { m }, ours: ({ m }) => m.sort(), grad: ["m"] }),
  op({
    name: "sort dim 0 descending",
    expr: "m.sort(0, descending=True)",
    inputs: { m },
    ours: ({ m }) => m.sort(0, true),
    grad: ["m"],
  }),
  op({ name: "sort with ties is stable", expr: "d.sort(stable=True)", inputs: { d: dups }, ours: ({ d }) => d.sort() }),
  op({
    name: "sort descending with ties is stable",
    expr: "d.sort(descending=True, stable=True)",
    inputs: { d: dups },
    ours: ({ d }) => d.sort(-1, true),
  }),
  op({ name: "argsort", expr: "m.argsort()", inputs: { m }, ours: ({ m }) => m.argsort() }),
  op({
    name: "argsort dim 0 descending",
    expr: "m.argsort(0, descending=True)",
    inputs: { m },
    ours: ({ m }) => m.argsort(0, true),
  }),
  op({
    name: "argsort with ties is stable",
    expr: "torch.argsort(d, stable=True)",
    inputs: { d: dups },
    ours: ({ d }) => d.argsort(),
  }),
  op({ name: "topk k too large throws", expr: "v.topk(8)", inputs: { v }, ours: ({ v }) => v.topk(8), throws: true }),
]);
