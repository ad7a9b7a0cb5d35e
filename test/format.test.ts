// String(tensor) must read exactly like Python's str(tensor) (torch/_tensor_str.py defaults).
import * as torch from "../src/torch/index.js";
import { crossCheck, op } from "./helpers/pytorch.js";

torch.manualSeed(6000);
const f = (values: number[], dtype: torch.DType = "float32") => torch.tensor(values, { dtype });

/** Each tensor goes to Python as it is; both sides print it. */
const tensors: Record<string, torch.Tensor> = {
  "small float": torch.randn([2, 3]),
  "float vector": torch.randn([5]),
  ints: torch.arange(12).reshape(3, 4).sub(5),
  "int64 beyond 2^53": torch.fromTypedArray(new BigInt64Array([2n ** 62n + 1n, -(2n ** 63n), 3n])),
  "wide ints": torch.tensor([
    [1, -100000],
    [33, 7],
  ]),
  bools: torch.tensor([
    [true, false, true],
    [false, false, true],
  ]),
  "all true": torch.tensor([true, true]),
  "all false": torch.tensor([false, false]),
  "integral floats": f([1, 2, 3]),
  "integral floats with negative zero": f([-0, 1, 2]),
  "only zeros": f([0, -0, 0]),
  "ties round half to even (fixed)": f([1.03125, -0.28125, 2.5, 0.15625]),
  "ties round half to even (scientific)": f([1.03125, 1e-5, -2.71875e-6]),
  "9.99995 carries (scientific)": f([9.99995, 1e-6], "float64"),
  "nan in a wrapped line": f([Number.NaN, ...Array.from({ length: 40 }, (_, i) => i)]),
  "integral floats, wide": f([100000, 2, -7]),
  "integral floats over 1e8": f([1e9, 1]),
  "scientific: small values": f([1e-5, 1, 1234.5]),
  "scientific: ratio over 1000": f([1e4, 1.5]),
  "ratio exactly 1000": f([0.001, 1.0]),
  "scientific: tiny": f([1e-8, 2e-8, -3.5e-8]),
  "scientific: huge": f([1.5e10, 1, -2]),
  "large fixed": f([-1234.5678, 0.25, 99.125]),
  "rounding to 4 digits": f([0.12345, 2.00005, -0.99999]),
  "negative zero": f([-0, 1.5]),
  "nan and inf": f([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5]),
  "nan with integral floats": f([Number.NaN, 1, 2]),
  "all nan": f([Number.NaN, Number.NaN]),
  "inf only": f([Number.POSITIVE_INFINITY, 0]),
  "3-d": torch.randn([2, 3, 4]),
  "4-d": torch.randn([2, 2, 2, 2]),
  "line wrapping 1-d": torch.randn([30]),
  "line wrapping ints": torch.arange(100),
  "line wrapping 2-d": torch.randn([3, 20]),
  float64: torch.randn([2, 3], { dtype: "float64" }),
  "float64 precise": f([1 / 3, 2 / 3], "float64"),
  float16: torch.randn([4]).to("float16"),
  bfloat16: torch.randn([4]).to("bfloat16"),
  int32: torch.tensor([1, -2, 300], { dtype: "int32" }),
  int16: torch.tensor([1, -2, 300], { dtype: "int16" }),
  int8: torch.tensor([1, -2, 100], { dtype: "int8" }),
  uint8: torch.tensor(
    [
      [0, 255],
      [7, 128],
    ],
    { dtype: "uint8" },
  ),
  "0-d float": torch.tensor(3.5),
  "0-d negative float": torch.tensor(-0.123456),
  "0-d int": torch.tensor(7),
  "0-d bool": torch.tensor(true),
  "0-d float64": torch.tensor(2.5, { dtype: "float64" }),
  "0-d scientific": torch.tensor(1.5e-7),
  "empty 1-d": torch.zeros([0]),
  "empty 2-d": torch.zeros([2, 0]),
  "empty int64": torch.zeros([0], { dtype: "int64" }),
  "empty float64": torch.zeros([0], { dtype: "float64" }),
  "summarized 2-d": torch.randn([40, 30]),
  "summarized 1-d ints": torch.arange(2000),
  "summarized 3-d": torch.randn([11, 10, 12]),
  "summarized with one short dim": torch.randn([2, 600]),
  "summarized scientific": torch.randn([1001]).mul(1e-6),
  "summarized bools": torch.randn([1200]).gt(0),
  "summarized float64": torch.randn([1100], { dtype: "float64" }),
  "1001 elements": torch.arange(1001).to("float32"),
  "exactly 1000 elements": torch.arange(1000).to("float32").reshape(10, 100),
};

crossCheck(
  "format: String(t) equals Python's str(t)",
  Object.entries(tensors).map(([name, t]) => op({ name, expr: "str(t)", inputs: { t }, ours: ({ t }) => String(t) })),
);

crossCheck("format: autograd and device annotations", [
  op({
    name: "requires_grad leaf",
    expr: "str(t.requires_grad_())",
    inputs: { t: torch.randn([3]) },
    ours: ({ t }) => String(t.requiresGrad_()),
  }),
  op({
    name: "grad_fn of a product",
    expr: "str(t.requires_grad_() * 2)",
    inputs: { t: torch.randn([2, 2]) },
    ours: ({ t }) => String(t.requiresGrad_().mul(2)),
  }),
  op({
    name: "grad_fn of a sum",
    expr: "str((t.requires_grad_() + 1).sum())",
    inputs: { t: torch.randn([2, 2]) },
    ours: ({ t }) => String(t.requiresGrad_().add(1).sum()),
  }),
  op({
    name: "requires_grad float64",
    expr: "str(t.requires_grad_())",
    inputs: { t: torch.randn([2], { dtype: "float64" }) },
    ours: ({ t }) => String(t.requiresGrad_()),
  }),
  op({
    name: "detached prints no annotation",
    expr: "str((t.requires_grad_() * 3).detach())",
    inputs: { t: torch.randn([2]) },
    ours: ({ t }) => String(t.requiresGrad_().mul(3).detach()),
  }),
  op({
    name: "summarized with grad_fn",
    expr: "str(t.requires_grad_().exp())",
    inputs: { t: torch.randn([50, 30]) },
    ours: ({ t }) => String(t.requiresGrad_().exp()),
  }),
]);
