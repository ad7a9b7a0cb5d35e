// Views, reshapes, indexing, joining and splitting, forward and gradients, checked against PyTorch.
import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(1000);
const x = torch.randn([2, 3, 4]);
const y = torch.randn([2, 3, 4]);
const m = torch.randn([3, 5]);
const col = torch.randn([3, 1]);
const ones = torch.randn([1, 3, 1, 2]);
const idx1 = torch.tensor([2, 0, 2]); // index along dim 1 of x
const gatherIdx = torch.randint(0, 4, [2, 3, 2]);
const scatterIdx = torch.tensor([
  [0, 1, 2, 0, 1],
  [2, 0, 1, 1, 0],
]); // a permutation-free pattern for scatter
const perm = torch.tensor([
  [1, 0, 2, 2, 1],
  [0, 2, 1, 0, 2],
]);
const mask = torch.rand([2, 3, 4]).gt(0.5);
const rowMask = torch.tensor([true, false, true, false]);

crossCheck("shape: views and reshapes", [
  op({ name: "view", expr: "x.view(6, 4)", inputs: { x }, ours: ({ x }) => x.view(6, 4), grad: ["x"] }),
  op({ name: "view -1", expr: "x.view(-1)", inputs: { x }, ours: ({ x }) => x.view(-1), grad: ["x"] }),
  op({ name: "view array arg", expr: "x.view(2, -1)", inputs: { x }, ours: ({ x }) => x.view([2, -1]), grad: ["x"] }),
  op({
    name: "view of a transpose throws",
    expr: "x.transpose(0, 1).view(-1)",
    inputs: { x },
    ours: ({ x }) => x.transpose(0, 1).view(-1),
    throws: /view/,
  }),
  op({
    name: "reshape of a transpose",
    expr: "x.transpose(0, 1).reshape(3, 8)",
    inputs: { x },
    ours: ({ x }) => x.transpose(0, 1).reshape(3, 8),
    grad: ["x"],
  }),
  op({ name: "flatten", expr: "x.flatten()", inputs: { x }, ours: ({ x }) => x.flatten(), grad: ["x"] }),
  op({ name: "flatten(1)", expr: "x.flatten(1)", inputs: { x }, ours: ({ x }) => x.flatten(1), grad: ["x"] }),
  op({ name: "flatten(0, 1)", expr: "x.flatten(0, 1)", inputs: { x }, ours: ({ x }) => x.flatten(0, 1), grad: ["x"] }),
  op({ name: "squeeze all", expr: "t.squeeze()", inputs: { t: ones }, ours: ({ t }) => t.squeeze(), grad: ["t"] }),
  op({ name: "squeeze dim", expr: "t.squeeze(2)", inputs: { t: ones }, ours: ({ t }) => t.squeeze(2), grad: ["t"] }),
  op({
    name: "squeeze non-1 dim is a no-op",
    expr: "t.squeeze(1)",
    inputs: { t: ones },
    ours: ({ t }) => t.squeeze(1),
  }),
  op({ name: "unsqueeze 0", expr: "x.unsqueeze(0)", inputs: { x }, ours: ({ x }) => x.unsqueeze(0), grad: ["x"] }),
  op({ name: "unsqueeze -1", expr: "x.unsqueeze(-1)", inputs: { x }, ours: ({ x }) => x.unsqueeze(-1), grad: ["x"] }),
  op({ name: "permute", expr: "x.permute(2, 0, 1)", inputs: { x }, ours: ({ x }) => x.permute(2, 0, 1), grad: ["x"] }),
  op({ name: "permute array arg", expr: "x.permute(1, 2, 0)", inputs: { x }, ours: ({ x }) => x.permute([1, 2, 0]) }),
  op({ name: "transpose", expr: "x.transpose(0, 2)", inputs: { x }, ours: ({ x }) => x.transpose(0, 2), grad: ["x"] }),
  op({ name: "t", expr: "m.t()", inputs: { m }, ours: ({ m }) => m.t(), grad: ["m"] }),
  op({
    name: "contiguous",
    expr: "(x.transpose(1, 2).is_contiguous(), x.transpose(1, 2).contiguous(), x.transpose(1, 2).contiguous().is_contiguous(), list(x.transpose(1, 2).contiguous().stride()))",
    inputs: { x },
    ours: ({ x }) => {
      const c = x.transpose(1, 2).contiguous();
      return [x.transpose(1, 2).isContiguous, c, c.isContiguous, [...c.strides]];
    },
    grad: ["x"],
  }),
  op({
    name: "expand",
    expr: "c.expand(2, 3, 4)",
    inputs: { c: col },
    ours: ({ c }) => c.expand(2, 3, 4),
    grad: ["c"],
  }),
  op({ name: "expand -1", expr: "c.expand(-1, 6)", inputs: { c: col }, ours: ({ c }) => c.expand(-1, 6), grad: ["c"] }),
  op({
    name: "expandAs",
    expr: "c.expand_as(m)",
    inputs: { c: col, m },
    ours: ({ c, m }) => c.expandAs(m),
    grad: ["c"],
  }),
  op({ name: "repeat", expr: "m.repeat(2, 1, 3)", inputs: { m }, ours: ({ m }) => m.repeat(2, 1, 3), grad: ["m"] }),
  op({ name: "narrow", expr: "x.narrow(1, 1, 2)", inputs: { x }, ours: ({ x }) => x.narrow(1, 1, 2), grad: ["x"] }),
  op({
    name: "slice with step",
    expr: "x[:, :, 1::2]",
    inputs: { x },
    ours: ({ x }) => x.slice(2, 1, null, 2),
    grad: ["x"],
  }),
  op({ name: "slice negative start", expr: "x[:, -2:]", inputs: { x }, ours: ({ x }) => x.slice(1, -2), grad: ["x"] }),
  op({ name: "slice start:end", expr: "m[:, 1:4]", inputs: { m }, ours: ({ m }) => m.slice(1, 1, 4), grad: ["m"] }),
  op({ name: "slice beyond the end clamps", expr: "m[1:10]", inputs: { m }, ours: ({ m }) => m.slice(0, 1, 10) }),
  op({ name: "select", expr: "x[1]", inputs: { x }, ours: ({ x }) => x.select(0, 1), grad: ["x"] }),
  op({ name: "select negative", expr: "x[:, :, -1]", inputs: { x }, ours: ({ x }) => x.select(2, -1), grad: ["x"] }),
  op({ name: "tril", expr: "m.tril()", inputs: { m }, ours: ({ m }) => m.tril(), grad: ["m"] }),
  op({ name: "triu(1)", expr: "m.triu(1)", inputs: { m }, ours: ({ m }) => m.triu(1), grad: ["m"] }),
]);

crossCheck("shape: indexing and masking", [
  op({
    name: "indexSelect",
    expr: "x.index_select(1, i)",
    inputs: { x, i: idx1 },
    ours: ({ x, i }) => x.indexSelect(1, i),
    grad: ["x"],
  }),
  op({
    name: "gather",
    expr: "x.gather(2, i)",
    inputs: { x, i: gatherIdx },
    ours: ({ x, i }) => x.gather(2, i),
    grad: ["x"],
  }),
  op({
    name: "scatter tensor src",
    expr: "torch.zeros(2, 3).scatter(1, i[:, :3], s)",
    inputs: { i: perm, s: torch.randn([2, 3]) },
    ours: ({ i, s }) => torch.zeros([2, 3]).scatter(1, i.slice(1, 0, 3), s),
    grad: ["s"],
  }),
  op({
    name: "scatter into a tensor (grad of self)",
    expr: "b.scatter(1, torch.tensor([[0], [2]]), s)",
    inputs: { b: torch.randn([2, 3]), s: torch.randn([2, 1]) },
    ours: ({ b, s }) => b.scatter(1, torch.tensor([[0], [2]]), s),
    grad: ["b", "s"],
  }),
  op({
    name: "scatter scalar",
    expr: "m.scatter(0, i, 2.5)",
    inputs: { m, i: scatterIdx.slice(0, 0, 1) },
    ours: ({ m, i }) => m.scatter(0, i, 2.5),
    grad: ["m"],
  }),
  op({
    name: "indexCopy",
    expr: "b.index_copy(1, torch.tensor([3, 0]), s)",
    inputs: { b: torch.randn([2, 5, 3]), s: torch.randn([2, 2, 3]) },
    ours: ({ b, s }) => b.indexCopy(1, torch.tensor([3, 0]), s),
    grad: ["b", "s"],
  }),
  op({
    name: "indexCopy_",
    expr: "b.clone().index_copy_(0, torch.tensor([1]), s)",
    inputs: { b: torch.randn([2, 5, 3]), s: torch.randn([1, 5, 3]) },
    ours: ({ b, s }) => b.clone().indexCopy_(0, torch.tensor([1]), s),
    grad: ["b", "s"],
  }),
  op({
    name: "scatterAdd",
    expr: "torch.zeros(3, 5).scatter_add(0, i, s)",
    inputs: { i: scatterIdx, s: torch.randn([2, 5]) },
    ours: ({ i, s }) => torch.zeros([3, 5]).scatterAdd(0, i, s),
    grad: ["s"],
  }),
  op({
    name: "maskedFill scalar",
    expr: "x.masked_fill(k, -1.5)",
    inputs: { x, k: mask },
    ours: ({ x, k }) => x.maskedFill(k, -1.5),
    grad: ["x"],
  }),
  op({
    name: "maskedFill broadcast mask",
    expr: "x.masked_fill(k, 0)",
    inputs: { x, k: rowMask },
    ours: ({ x, k }) => x.maskedFill(k, 0),
    grad: ["x"],
  }),
  op({
    name: "maskedFill 0-d tensor value",
    expr: "x.masked_fill(k, v)",
    inputs: { x, k: mask, v: torch.tensor(4.5) },
    ours: ({ x, k, v }) => x.maskedFill(k, v),
    grad: ["x", "v"],
  }),
  op({
    name: "maskedFill int64",
    expr: "a.masked_fill(a > 2, 9)",
    inputs: { a: torch.arange(6) },
    ours: ({ a }) => a.maskedFill(a.gt(2), 9),
  }),
  op({
    name: "maskedSelect",
    expr: "x.masked_select(k)",
    inputs: { x, k: mask },
    ours: ({ x, k }) => x.maskedSelect(k),
    grad: ["x"],
  }),
  op({
    name: "where",
    expr: "torch.where(k, x, y)",
    inputs: { x, y, k: mask },
    ours: ({ x, y, k }) => torch.where(k, x, y),
    grad: ["x", "y"],
  }),
  op({
    name: "where broadcast",
    expr: "torch.where(k, x, c.unsqueeze(0))",
    inputs: { x, c: col, k: rowMask },
    ours: ({ x, c, k }) => torch.where(k, x, c.unsqueeze(0)),
    grad: ["x", "c"],
  }),
  op({
    name: "where scalars",
    expr: "torch.where(x > 0, x, 0.0)",
    inputs: { x },
    ours: ({ x }) => torch.where(x.gt(0), x, 0),
    grad: ["x"],
  }),
  op({
    name: "where int scalars",
    expr: "torch.where(x > 0, 1, -1)",
    inputs: { x },
    ours: ({ x }) => torch.where(x.gt(0), 1, -1),
  }),
  op({ name: "nonzero", expr: "k.nonzero()", inputs: { k: mask }, ours: ({ k }) => k.nonzero() }),
  op({
    name: "oneHot",
    expr: "F.one_hot(i, 4)",
    inputs: { i: torch.tensor([0, 3, 1, 1]) },
    ours: ({ i }) => i.oneHot(4),
  }),
  op({
    name: "asStrided",
    expr: "m.contiguous().as_strided((3, 2), (1, 3), 1)",
    inputs: { m },
    ours: ({ m }) => m.contiguous().asStrided([3, 2], [1, 3], 1),
    grad: ["m"],
  }),
  op({
    name: "indexSelect out of range throws",
    expr: "x.index_select(1, torch.tensor([3]))",
    inputs: { x },
    ours: ({ x }) => x.indexSelect(1, torch.tensor([3])),
    throws: true,
  }),
]);

crossCheck("shape: joining, splitting, flip and roll", [
  op({
    name: "cat dim 0",
    expr: "torch.cat([x, y], 0)",
    inputs: { x, y },
    ours: ({ x, y }) => torch.cat([x, y], 0),
    grad: ["x", "y"],
  }),
  op({
    name: "cat dim -1",
    expr: "torch.cat([x, y, x], -1)",
    inputs: { x, y },
    ours: ({ x, y }) => torch.cat([x, y, x], -1),
    grad: ["x", "y"],
  }),
  op({
    name: "cat differing sizes",
    expr: "torch.cat([m, c], 1)",
    inputs: { m, c: col },
    ours: ({ m, c }) => torch.cat([m, c], 1),
    grad: ["m", "c"],
  }),
  op({
    name: "cat int promotes with float",
    expr: "torch.cat([a, b])",
    inputs: { a: torch.arange(3), b: torch.rand([2]) },
    ours: ({ a, b }) => torch.cat([a, b]),
  }),
  op({
    name: "stack",
    expr: "torch.stack([x, y])",
    inputs: { x, y },
    ours: ({ x, y }) => torch.stack([x, y]),
    grad: ["x", "y"],
  }),
  op({
    name: "stack dim -1",
    expr: "torch.stack([x, y], -1)",
    inputs: { x, y },
    ours: ({ x, y }) => torch.stack([x, y], -1),
    grad: ["x", "y"],
  }),
  op({ name: "split size", expr: "x.split(3, 2)", inputs: { x }, ours: ({ x }) => x.split(3, 2), grad: ["x"] }),
  op({
    name: "split sizes",
    expr: "m.split([1, 4], 1)",
    inputs: { m },
    ours: ({ m }) => m.split([1, 4], 1),
    grad: ["m"],
  }),
  op({ name: "split dim 0", expr: "m.split(2)", inputs: { m }, ours: ({ m }) => m.split(2), grad: ["m"] }),
  op({ name: "chunk", expr: "m.chunk(3, 1)", inputs: { m }, ours: ({ m }) => m.chunk(3, 1), grad: ["m"] }),
  op({ name: "chunk uneven dim 0", expr: "x.chunk(2, 1)", inputs: { x }, ours: ({ x }) => x.chunk(2, 1), grad: ["x"] }),
  op({ name: "flip", expr: "x.flip(0, 2)", inputs: { x }, ours: ({ x }) => x.flip(0, 2), grad: ["x"] }),
  op({ name: "flip array arg", expr: "x.flip([-1])", inputs: { x }, ours: ({ x }) => x.flip([-1]), grad: ["x"] }),
  op({ name: "roll one dim", expr: "x.roll(1, 1)", inputs: { x }, ours: ({ x }) => x.roll(1, 1), grad: ["x"] }),
  op({
    name: "roll two dims",
    expr: "x.roll((1, -2), (0, 2))",
    inputs: { x },
    ours: ({ x }) => x.roll([1, -2], [0, 2]),
    grad: ["x"],
  }),
  op({ name: "roll int64", expr: "a.roll(-4, 0)", inputs: { a: torch.arange(10) }, ours: ({ a }) => a.roll(-4, 0) }),
]);
