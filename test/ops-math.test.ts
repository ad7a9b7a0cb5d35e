// Elementwise math with broadcasting and Python-scalar semantics, products, comparisons and logic,
// forward and gradients, checked against PyTorch.
import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(2000);
const a = torch.randn([3, 4]);
const b = torch.randn([4]);
const c = torch.randn([3, 1]);
const pos = torch.rand([3, 4]).add(0.5); // away from 0 for log, sqrt, pow, div
const posRow = torch.rand([4]).add(0.5);
const ints = torch.arange(-3, 3); // int64
const i32 = torch.tensor([-7, -2, 0, 3, 8], { dtype: "int32" });
const u8 = torch.tensor([0, 100, 250], { dtype: "uint8" });
const f64 = torch.randn([5], { dtype: "float64" });
const halves = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 0.49, -0.51, 3.7]);
const special = torch.tensor([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -1.5]);
const bools = torch.tensor([true, false, true, false]);
const bools2 = torch.tensor([true, true, false, false]);
const batch = torch.randn([2, 3, 4]);
const batch2 = torch.randn([2, 4, 5]);
const mat = torch.randn([4, 5]);
const vec3 = torch.randn([3]);

crossCheck("math: arithmetic with broadcasting and scalars", [
  op({ name: "add", expr: "a + b", inputs: { a, b }, ours: ({ a, b }) => a.add(b), grad: ["a", "b"] }),
  op({
    name: "add alpha",
    expr: "torch.add(a, c, alpha=0.5)",
    inputs: { a, c },
    ours: ({ a, c }) => a.add(c, 0.5),
    grad: ["a", "c"],
  }),
  op({ name: "add scalar", expr: "a + 2.5", inputs: { a }, ours: ({ a }) => a.add(2.5), grad: ["a"] }),
  op({ name: "sub", expr: "a - c", inputs: { a, c }, ours: ({ a, c }) => a.sub(c), grad: ["a", "c"] }),
  op({
    name: "sub alpha",
    expr: "torch.sub(a, b, alpha=2)",
    inputs: { a, b },
    ours: ({ a, b }) => a.sub(b, 2),
    grad: ["a", "b"],
  }),
  op({ name: "sub scalar", expr: "a - 1", inputs: { a }, ours: ({ a }) => a.sub(1), grad: ["a"] }),
  op({ name: "mul", expr: "a * b", inputs: { a, b }, ours: ({ a, b }) => a.mul(b), grad: ["a", "b"] }),
  op({ name: "mul scalar", expr: "a * -3", inputs: { a }, ours: ({ a }) => a.mul(-3), grad: ["a"] }),
  op({ name: "mul outer broadcast", expr: "c * b", inputs: { b, c }, ours: ({ b, c }) => c.mul(b), grad: ["b", "c"] }),
  op({ name: "div", expr: "a / p", inputs: { a, p: posRow }, ours: ({ a, p }) => a.div(p), grad: ["a", "p"] }),
  op({ name: "div scalar", expr: "a / 4", inputs: { a }, ours: ({ a }) => a.div(4), grad: ["a"] }),
  op({ name: "neg", expr: "-a", inputs: { a }, ours: ({ a }) => a.neg(), grad: ["a"] }),
  op({ name: "pow 2", expr: "a ** 2", inputs: { a }, ours: ({ a }) => a.pow(2), grad: ["a"] }),
  op({ name: "pow 0.5", expr: "p ** 0.5", inputs: { p: pos }, ours: ({ p }) => p.pow(0.5), grad: ["p"] }),
  op({ name: "pow -1.5", expr: "p.pow(-1.5)", inputs: { p: pos }, ours: ({ p }) => p.pow(-1.5), grad: ["p"] }),
  op({
    name: "pow tensor exponent",
    expr: "p ** b",
    inputs: { p: pos, b },
    ours: ({ p, b }) => p.pow(b),
    grad: ["p", "b"],
  }),
  op({ name: "sqrt", expr: "p.sqrt()", inputs: { p: pos }, ours: ({ p }) => p.sqrt(), grad: ["p"] }),
  op({ name: "rsqrt", expr: "p.rsqrt()", inputs: { p: pos }, ours: ({ p }) => p.rsqrt(), grad: ["p"] }),
  op({ name: "exp", expr: "a.exp()", inputs: { a }, ours: ({ a }) => a.exp(), grad: ["a"] }),
  op({ name: "log", expr: "p.log()", inputs: { p: pos }, ours: ({ p }) => p.log(), grad: ["p"] }),
  op({ name: "abs", expr: "a.abs()", inputs: { a }, ours: ({ a }) => a.abs(), grad: ["a"] }),
  op({ name: "clamp", expr: "a.clamp(-0.5, 0.5)", inputs: { a }, ours: ({ a }) => a.clamp(-0.5, 0.5), grad: ["a"] }),
  op({ name: "clamp min", expr: "a.clamp(min=0.1)", inputs: { a }, ours: ({ a }) => a.clampMin(0.1), grad: ["a"] }),
  op({
    name: "clamp max",
    expr: "a.clamp(max=-0.2)",
    inputs: { a },
    ours: ({ a }) => a.clamp(null, -0.2),
    grad: ["a"],
  }),
  op({ name: "clamp int64", expr: "i.clamp(-1, 1)", inputs: { i: ints }, ours: ({ i }) => i.clamp(-1, 1) }),
  op({ name: "floor", expr: "h.floor()", inputs: { h: halves }, ours: ({ h }) => h.floor(), grad: ["h"] }),
  op({ name: "ceil", expr: "h.ceil()", inputs: { h: halves }, ours: ({ h }) => h.ceil() }),
  op({ name: "round half to even", expr: "h.round()", inputs: { h: halves }, ours: ({ h }) => h.round(), grad: ["h"] }),
  op({ name: "sin", expr: "a.sin()", inputs: { a }, ours: ({ a }) => a.sin(), grad: ["a"] }),
  op({ name: "cos", expr: "a.cos()", inputs: { a }, ours: ({ a }) => a.cos(), grad: ["a"] }),
  op({ name: "tanh", expr: "a.tanh()", inputs: { a }, ours: ({ a }) => a.tanh(), grad: ["a"] }),
  op({ name: "sigmoid", expr: "a.sigmoid()", inputs: { a }, ours: ({ a }) => a.sigmoid(), grad: ["a"] }),
  op({ name: "sign", expr: "a.sign()", inputs: { a }, ours: ({ a }) => a.sign() }),
  op({ name: "reciprocal", expr: "p.reciprocal()", inputs: { p: pos }, ours: ({ p }) => p.reciprocal(), grad: ["p"] }),
  op({ name: "remainder (Python sign)", expr: "a.remainder(0.7)", inputs: { a }, ours: ({ a }) => a.remainder(0.7) }),
  op({ name: "remainder int", expr: "i.remainder(4)", inputs: { i: i32 }, ours: ({ i }) => i.remainder(4) }),
  op({
    name: "maximum",
    expr: "torch.maximum(a, b)",
    inputs: { a, b },
    ours: ({ a, b }) => a.maximum(b),
    grad: ["a", "b"],
  }),
  op({
    name: "minimum",
    expr: "torch.minimum(a, c)",
    inputs: { a, c },
    ours: ({ a, c }) => a.minimum(c),
    grad: ["a", "c"],
  }),
  op({
    name: "nan, inf through exp/abs/sign",
    expr: "(s.exp(), s.abs(), s.sign(), s.clamp(-1, 1))",
    inputs: { s: special },
    ours: ({ s }) => [s.exp(), s.abs(), s.sign(), s.clamp(-1, 1)],
  }),
  op({
    name: "isnan, isfinite",
    expr: "(s.isnan(), s.isfinite())",
    inputs: { s: special },
    ours: ({ s }) => [s.isnan(), s.isfinite()],
  }),
  op({
    name: "float64 stays float64",
    expr: "(d * 2, d + 0.5, d.exp())",
    inputs: { d: f64 },
    ours: ({ d }) => [d.mul(2), d.add(0.5), d.exp()],
    grad: ["d"],
  }),
]);

// Python's scalar rules: an integer scalar keeps an integer tensor's dtype, a float scalar makes it
// the default float dtype, true division is always floating, a 0-d tensor acts like a scalar.
crossCheck("math: integer and scalar type promotion", [
  op({ name: "int64 + 1 stays int64", expr: "i + 1", inputs: { i: ints }, ours: ({ i }) => i.add(1) }),
  op({ name: "int64 + 0.5 becomes float32", expr: "i + 0.5", inputs: { i: ints }, ours: ({ i }) => i.add(0.5) }),
  op({ name: "int64 * 2", expr: "i * 2", inputs: { i: ints }, ours: ({ i }) => i.mul(2) }),
  op({ name: "int64 * 2.5", expr: "i * 2.5", inputs: { i: ints }, ours: ({ i }) => i.mul(2.5) }),
  op({
    name: "int64 - 3 alpha 2",
    expr: "torch.sub(i, 3, alpha=2)",
    inputs: { i: ints },
    ours: ({ i }) => i.sub(3, 2),
  }),
  op({ name: "int64 / 2 is true division", expr: "i / 2", inputs: { i: ints }, ours: ({ i }) => i.div(2) }),
  op({ name: "int64 / int64", expr: "i / (i.abs() + 1)", inputs: { i: ints }, ours: ({ i }) => i.div(i.abs().add(1)) }),
  op({ name: "int64 ** 2", expr: "i ** 2", inputs: { i: ints }, ours: ({ i }) => i.pow(2) }),
  op({ name: "int64 ** 0.5", expr: "i.abs() ** 0.5", inputs: { i: ints }, ours: ({ i }) => i.abs().pow(0.5) }),
  op({ name: "int32 + 1 stays int32", expr: "i + 1", inputs: { i: i32 }, ours: ({ i }) => i.add(1) }),
  op({
    name: "int32 + int64 tensor",
    expr: "i + torch.arange(5)",
    inputs: { i: i32 },
    ours: ({ i }) => i.add(torch.arange(5)),
  }),
  op({ name: "uint8 + 10 wraps as uint8", expr: "u + 10", inputs: { u: u8 }, ours: ({ u }) => u.add(10) }),
  op({ name: "bool + 1 becomes int64", expr: "k + 1", inputs: { k: bools }, ours: ({ k }) => k.add(1) }),
  op({ name: "bool * 1.5 becomes float32", expr: "k * 1.5", inputs: { k: bools }, ours: ({ k }) => k.mul(1.5) }),
  op({
    name: "float32 * float64 0-d stays float32",
    expr: "a * torch.tensor(2.5, dtype=torch.float64)",
    inputs: { a },
    ours: ({ a }) => a.mul(torch.tensor(2.5, { dtype: "float64" })),
  }),
  op({
    name: "float32 + float64 1-d becomes float64",
    expr: "b + d[:4]",
    inputs: { b, d: f64 },
    ours: ({ b, d }) => b.add(d.slice(0, 0, 4)),
  }),
  op({
    name: "int64 + float32 tensor",
    expr: "i[:4] + b",
    inputs: { i: ints, b },
    ours: ({ i, b }) => i.slice(0, 0, 4).add(b),
  }),
  op({
    name: "int64 tensor + int 0-d float tensor",
    expr: "i + torch.tensor(0.5)",
    inputs: { i: ints },
    ours: ({ i }) => i.add(torch.tensor(0.5)),
  }),
]);

crossCheck("math: products", [
  op({ name: "matmul 2d", expr: "a @ m", inputs: { a, m: mat }, ours: ({ a, m }) => a.matmul(m), grad: ["a", "m"] }),
  op({
    name: "matmul batched broadcast",
    expr: "x @ m",
    inputs: { x: batch, m: mat },
    ours: ({ x, m }) => torch.matmul(x, m),
    grad: ["x", "m"],
  }),
  op({
    name: "matmul vector-matrix",
    expr: "v @ a",
    inputs: { v: vec3, a },
    ours: ({ v, a }) => v.matmul(a),
    grad: ["v", "a"],
  }),
  op({
    name: "matmul matrix-vector",
    expr: "a @ b",
    inputs: { a, b },
    ours: ({ a, b }) => a.matmul(b),
    grad: ["a", "b"],
  }),
  op({
    name: "matmul dot",
    expr: "b @ p",
    inputs: { b, p: posRow },
    ours: ({ b, p }) => b.matmul(p),
    grad: ["b", "p"],
  }),
  op({ name: "mm", expr: "a.mm(m)", inputs: { a, m: mat }, ours: ({ a, m }) => a.mm(m), grad: ["a", "m"] }),
  op({
    name: "mm int64",
    expr: "i.view(2, 3).mm(i.view(3, 2))",
    inputs: { i: ints },
    ours: ({ i }) => i.view(2, 3).mm(i.view(3, 2)),
  }),
  op({
    name: "bmm",
    expr: "x.bmm(y)",
    inputs: { x: batch, y: batch2 },
    ours: ({ x, y }) => x.bmm(y),
    grad: ["x", "y"],
  }),
  op({ name: "mm shape mismatch throws", expr: "a.mm(a)", inputs: { a }, ours: ({ a }) => a.mm(a), throws: true }),
  op({
    name: "outer",
    expr: "torch.outer(v, b)",
    inputs: { v: vec3, b },
    ours: ({ v, b }) => v.outer(b),
    grad: ["v", "b"],
  }),
  op({
    name: "einsum ij,jk->ik",
    expr: "torch.einsum('ij,jk->ik', a, m)",
    inputs: { a, m: mat },
    ours: ({ a, m }) => torch.einsum("ij,jk->ik", a, m),
    grad: ["a", "m"],
  }),
  op({
    name: "einsum row dots",
    expr: "torch.einsum('nc,nc->n', a, p)",
    inputs: { a, p: pos },
    ours: ({ a, p }) => torch.einsum("nc,nc->n", a, p),
    grad: ["a", "p"],
  }),
  op({
    name: "einsum batched",
    expr: "torch.einsum('bij,bjk->bik', x, y)",
    inputs: { x: batch, y: batch2 },
    ours: ({ x, y }) => torch.einsum("bij,bjk->bik", x, y),
    grad: ["x", "y"],
  }),
  op({
    name: "einsum transpose and sum",
    expr: "torch.einsum('bij->j', x)",
    inputs: { x: batch },
    ours: ({ x }) => torch.einsum("bij->j", x),
    grad: ["x"],
  }),
  op({
    name: "einsum diagonal",
    expr: "torch.einsum('ii->i', a[:, :3])",
    inputs: { a },
    ours: ({ a }) => torch.einsum("ii->i", a.slice(1, 0, 3)),
    grad: ["a"],
  }),
]);

crossCheck("math: comparisons and logic", [
  op({
    name: "eq, ne tensors",
    expr: "(a == a.round(), a != b)",
    inputs: { a, b },
    ours: ({ a, b }) => [a.eq(a.round()), a.ne(b)],
  }),
  op({
    name: "lt, le, gt, ge broadcast",
    expr: "(a < b, a <= c, a > c, a >= b)",
    inputs: { a, b, c },
    ours: ({ a, b, c }) => [a.lt(b), a.le(c), a.gt(c), a.ge(b)],
  }),
  op({
    name: "comparisons with scalars",
    expr: "(a < 0, a >= 0.25, a == 0, a != 1)",
    inputs: { a },
    ours: ({ a }) => [a.lt(0), a.ge(0.25), a.eq(0), a.ne(1)],
  }),
  op({
    name: "int tensor against float scalar",
    expr: "(i > -0.5, i == 2, i <= 1.5)",
    inputs: { i: ints },
    ours: ({ i }) => [i.gt(-0.5), i.eq(2), i.le(1.5)],
  }),
  op({
    name: "comparisons with nan",
    expr: "(s == s, s > 0, s != s)",
    inputs: { s: special },
    ours: ({ s }) => [s.eq(s), s.gt(0), s.ne(s)],
  }),
  op({
    name: "logical and, or, xor, not",
    expr: "(p & q, p | q, p ^ q, ~p)",
    inputs: { p: bools, q: bools2 },
    ours: ({ p, q }) => [p.logicalAnd(q), p.logicalOr(q), p.logicalXor(q), p.logicalNot()],
  }),
  op({
    name: "logical ops on numbers",
    expr: "(torch.logical_and(i, i - 1), torch.logical_or(a.round(), a.round() * 0), torch.logical_not(i))",
    inputs: { i: ints, a },
    ours: ({ i, a }) => [i.logicalAnd(i.sub(1)), a.round().logicalOr(a.round().mul(0)), i.logicalNot()],
  }),
  op({
    name: "allclose true",
    expr: "torch.allclose(a, a + 1e-7)",
    inputs: { a },
    ours: ({ a }) => a.allclose(a.add(1e-7)),
  }),
  op({
    name: "allclose false",
    expr: "torch.allclose(a, a + 1e-3)",
    inputs: { a },
    ours: ({ a }) => a.allclose(a.add(1e-3)),
  }),
  op({
    name: "allclose rtol atol",
    expr: "(torch.allclose(a, a * 1.01, rtol=0.02), torch.allclose(a, a + 0.1, atol=0.2), torch.allclose(a, a * 1.01, rtol=0.001))",
    inputs: { a },
    ours: ({ a }) => [a.allclose(a.mul(1.01), 0.02), a.allclose(a.add(0.1), 0, 0.2), a.allclose(a.mul(1.01), 0.001)],
  }),
  op({
    name: "allclose broadcast",
    expr: "torch.allclose(a, a[0])",
    inputs: { a },
    ours: ({ a }) => a.allclose(a.select(0, 0)),
  }),
  op({
    name: "allclose nan",
    expr: "(torch.allclose(s, s), torch.allclose(s, s, equal_nan=True))",
    inputs: { s: special },
    ours: ({ s }) => [s.allclose(s), s.allclose(s, 1e-5, 1e-8, true)],
  }),
  op({
    name: "equal",
    expr: "(torch.equal(a, a.clone()), torch.equal(a, b), torch.equal(i, i + 0))",
    inputs: { a, b, i: ints },
    ours: ({ a, b, i }) => [a.equal(a.clone()), a.equal(b), i.equal(i.add(0))],
  }),
]);
