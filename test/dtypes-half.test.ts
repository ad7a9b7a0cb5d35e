// bfloat16 and float16 as full dtypes of the tensor layer, against PyTorch 1.13 run by the test:
// creation and casts give PyTorch's bits exactly (compared as int16 bit patterns, not within a
// tolerance), toArray gives the exact values as JS numbers, String(t) equals Python's str(t), and
// checkpoints travel both ways with the dtype intact.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import {
  Tensor,
  arange,
  full,
  fromBytes,
  load,
  ones,
  randn,
  save,
  scope,
  tensor,
  zeros,
  type DType,
} from "../src/torch/index.js";
import { crossCheck, op, runPython } from "./helpers/pytorch.js";

const dir = mkdtempSync(join(tmpdir(), "moco-half-"));
after(() => rmSync(dir, { recursive: true, force: true }));

type Half = "bfloat16" | "float16";
const HALVES: readonly Half[] = ["bfloat16", "float16"];
const PY: Record<Half, string> = { bfloat16: "torch.bfloat16", float16: "torch.float16" };

/** The elements' bit patterns as int16, for exact comparison with Python's `t.view(torch.int16)`. */
const bits = (t: Tensor): Tensor => fromBytes(t.contiguous().toBytes(), "int16", t.shape);

/** Values that exercise rounding (ties to even, double rounding through float32), range and specials. */
const VALUES = [
  0,
  -0,
  1,
  -1.5,
  1 / 3,
  0.1,
  3.14159,
  1 + 2 ** -8,
  1 + 3 * 2 ** -9,
  1 + 2 ** -24 + 2 ** -9,
  65504,
  65520,
  1e5,
  -3e38,
  1e-5,
  6e-8,
  1e-40,
  NaN,
  Infinity,
  -Infinity,
];

/** The values as Python reads them exactly: float(repr) (JSON would lose -0, NaN and the infinities). */
const asPython = (values: readonly number[]): string[] => values.map((v) => (Object.is(v, -0) ? "-0.0" : String(v)));

crossCheck(
  "half dtypes: creation and casts give PyTorch's bits",
  HALVES.flatMap((d) => [
    op({
      name: `${d}: tensor(values)`,
      expr: `torch.tensor(values, dtype=${PY[d]}).view(torch.int16)`,
      inputs: { values: asPython(VALUES) },
      setup: "values = [float(v) for v in values]",
      ours: () => bits(tensor(VALUES, { dtype: d })),
    }),
    op({
      name: `${d}: float32 → ${d} → float32 / float64`,
      expr: `(lambda h: [h.view(torch.int16), h.float(), h.double()])(x.to(${PY[d]}))`,
      inputs: { x: randn([64]).mul(100) },
      ours: ({ x }) => {
        const h = x.to(d);
        return [bits(h), h.float(), h.double()];
      },
      tol: { rtol: 0, atol: 0 },
    }),
    op({
      name: `${d}: float64 → ${d} (no double rounding through float32 beyond PyTorch's)`,
      expr: `x.to(${PY[d]}).view(torch.int16)`,
      inputs: { x: tensor([1 + 2 ** -24 + 2 ** -9, 1 + 2 ** -8 + 2 ** -30, 2049.0000001, 0.1], { dtype: "float64" }) },
      ours: ({ x }) => bits(x.to(d)),
    }),
    op({
      name: `${d}: factories`,
      expr: `[t.view(torch.int16) for t in (torch.zeros(2, 3, dtype=${PY[d]}), torch.ones(4, dtype=${PY[d]}), torch.full((3,), 0.3, dtype=${PY[d]}), torch.arange(0, 300, 7, dtype=${PY[d]}))]`,
      ours: () => [
        bits(zeros([2, 3], { dtype: d })),
        bits(ones([4], { dtype: d })),
        bits(full([3], 0.3, { dtype: d })),
        bits(arange(0, 300, 7, { dtype: d })),
      ],
    }),
    op({
      name: `${d}: arithmetic stays in ${d}`,
      expr: `(lambda a, b: [(a + b).view(torch.int16), (a * b).view(torch.int16), (a / 3).view(torch.int16), (a + b).dtype, a.sum().float()])(x.to(${PY[d]}), y.to(${PY[d]}))`,
      inputs: { x: randn([16]), y: randn([16]) },
      ours: ({ x, y }) => {
        const a = x.to(d);
        const b = y.to(d);
        return [bits(a.add(b)), bits(a.mul(b)), bits(a.div(3)), a.add(b).dtype, a.sum().float()];
      },
    }),
  ]),
);

const PRINTED: Record<string, [number[], Half]> = {
  "bf16 fractions": [[0.5, -1.25, 3.140625, 1 / 3], "bfloat16"],
  "bf16 integral": [[1, 2, 300, -7], "bfloat16"],
  "bf16 scientific": [[1e-5, 1, 1234.5], "bfloat16"],
  "bf16 huge": [[3e38, -1, 1e10], "bfloat16"],
  "bf16 specials": [[NaN, Infinity, -Infinity, 0.1], "bfloat16"],
  "fp16 fractions": [[0.5, -1.25, 3.140625, 1 / 3], "float16"],
  "fp16 extremes": [[65504, 6e-8, -0.000123], "float16"],
  "fp16 overflow to inf": [[1e5, 2], "float16"],
};

crossCheck("half dtypes: String(t) equals Python's str(t)", [
  ...Object.entries(PRINTED).map(([name, [values, d]]) =>
    op({
      name,
      expr: `str(torch.tensor([float(v) for v in values], dtype=${PY[d]}))`,
      inputs: { values: asPython(values) },
      ours: () => String(tensor(values, { dtype: d })),
    }),
  ),
  op({
    name: "bf16 2-d with requires_grad",
    expr: "str(x.to(torch.bfloat16).requires_grad_())",
    inputs: { x: randn([3, 4]) },
    ours: ({ x }) => String(x.to("bfloat16").requiresGrad_()),
  }),
  op({
    name: "bf16 summarized",
    expr: "str(x.to(torch.bfloat16))",
    inputs: { x: randn([40, 50]) },
    ours: ({ x }) => String(x.to("bfloat16")),
  }),
  op({
    name: "fp16 0-d and empty",
    expr: "[str(torch.tensor(2.5, dtype=torch.float16)), str(torch.zeros(0, dtype=torch.float16))]",
    ours: () => [String(tensor(2.5, { dtype: "float16" })), String(zeros([0], { dtype: "float16" }))],
  }),
]);

describe("half dtypes: toArray and checkpoints", () => {
  test("toArray gives the exact stored values as JS numbers", () => {
    scope(() => {
      const [python] = runPython([
        {
          name: "tolist",
          expr: "[torch.tensor([float(v) for v in values], dtype=d).tolist() for d in (torch.bfloat16, torch.float16)]",
          inputs: { values: asPython(VALUES.filter(Number.isFinite)) },
        },
      ]);
      assert.equal(python?.error, undefined, python?.error);
      const ours = HALVES.map((d) => tensor(VALUES.filter(Number.isFinite), { dtype: d }).toArray());
      assert.deepEqual(ours, python!.value);
      assert.deepEqual(tensor([1 / 3], { dtype: "bfloat16" }).toArray(), [0.333984375]);
      assert.deepEqual(tensor([1 / 3], { dtype: "float16" }).toArray(), [0.333251953125]);
      assert.equal(tensor(0.1, { dtype: "bfloat16" }).item(), 0.10009765625);
    });
  });

  test("saved by moco-ts, Python reads bfloat16/float16 with the same bits", () => {
    scope(() => {
      const path = join(dir, "ours.pt");
      const x = randn([3, 5]);
      save({ bf16: x.to("bfloat16"), fp16: x.to("float16"), strided: x.to("bfloat16").t() }, path);
      const [python] = runPython([
        {
          name: "load ours",
          expr: "[(str(v.dtype), list(v.shape), v.contiguous().view(torch.int16)) for v in (ckpt['bf16'], ckpt['fp16'], ckpt['strided'])]",
          setup: "ckpt = torch.load(path)",
          inputs: { path },
        },
      ]);
      assert.equal(python?.error, undefined, python?.error);
      const expected = [
        ["torch.bfloat16", [3, 5], bits(x.to("bfloat16"))],
        ["torch.float16", [3, 5], bits(x.to("float16"))],
        ["torch.bfloat16", [5, 3], bits(x.to("bfloat16").t())],
      ] as const;
      const got = python!.value as [string, number[], Tensor][];
      expected.forEach(([dtype, shape, b], i) => {
        assert.equal(got[i]![0], dtype);
        assert.deepEqual(got[i]![1], shape);
        assert.ok(got[i]![2].equal(b), `bits of entry ${i}`);
      });
    });
  });

  test("saved by Python, moco-ts loads bfloat16/float16 with the same bits", () => {
    scope(() => {
      const path = join(dir, "theirs.pt");
      const [python] = runPython([
        {
          name: "save",
          setup:
            "torch.manual_seed(0)\nx = torch.randn(4, 6)\ntorch.save({'bf16': x.bfloat16(), 'fp16': x.half(), 'sd': torch.nn.Linear(6, 2).bfloat16().state_dict()}, path)",
          expr: "[x.bfloat16().view(torch.int16), x.half().view(torch.int16)]",
          inputs: { path },
        },
      ]);
      assert.equal(python?.error, undefined, python?.error);
      const loaded = load(path) as { bf16: Tensor; fp16: Tensor; sd: Record<string, Tensor> };
      const [bfBits, fpBits] = python!.value as [Tensor, Tensor];
      const dtypes: DType[] = [loaded.bf16.dtype, loaded.fp16.dtype];
      assert.deepEqual(dtypes, ["bfloat16", "float16"]);
      assert.ok(bits(loaded.bf16).equal(bfBits));
      assert.ok(bits(loaded.fp16).equal(fpBits));
      assert.equal(loaded.sd.weight?.dtype, "bfloat16");
      for (const t of [loaded.bf16, loaded.fp16, ...Object.values(loaded.sd)]) t.dispose();
    });
  });
});
