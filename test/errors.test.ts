// Bad input never aborts the process: each case is a catchable Error naming the op and the reason.
import assert from "node:assert/strict";
import { test } from "node:test";

import { F, Tensor, cat, fromBytes, ones, randn, setNumThreads, tensor, zeros } from "../src/torch/index.js";

function expectError(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof Error, "an Error instance");
    assert.match(error.message, pattern);
    return true;
  });
}

test("shape mismatches carry libtorch's reason and the op name", () => {
  expectError(
    () => randn([2, 3]).matmul(randn([2, 3])),
    /^matmul: mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/,
  );
  expectError(() => randn([2, 3]).add(randn([4])), /^add: The size of tensor a \(3\) must match/);
  expectError(() => randn([6]).view(4), /^view: shape '\[4\]' is invalid for input of size 6/);
  expectError(() => cat([randn([2, 3]), randn([2, 4])]), /^cat: Sizes of tensors must match/);
  expectError(
    () => F.conv2d(randn([1, 3, 8, 8]), randn([4, 2, 3, 3])),
    /^conv2d: Given groups=1, weight of size \[4, 2, 3, 3\], expected input\[1, 3, 8, 8\] to have 2 channels/,
  );
  expectError(() => randn([2, 3]).indexSelect(0, tensor([0, 5])), /^indexSelect: .*(out of range|index)/i);
  expectError(
    () =>
      randn([2, 3]).gather(
        1,
        tensor([
          [0, 7],
          [1, 1],
        ]),
      ),
    /^gather: index 7 is out of bounds/,
  );
});

test("dtype errors are reported, not crashed on", () => {
  expectError(() => randn([2, 2]).mm(ones([2, 2], { dtype: "int64" })), /^mm: expected .*(scalar type|dtype)/i);
  expectError(() => F.crossEntropy(randn([4, 3]), tensor([0.5, 1, 2, 0])), /^crossEntropy: /);
  expectError(
    () => randn([3]).indexSelect(0, tensor([0.5])),
    /^indexSelect: index_select\(\): Expected dtype int32 or int64 for index/,
  );
  expectError(() => zeros([2], { dtype: "complex64" as never }), /zeros: dtype must be one of/);
});

test("a disposed tensor is an error in every op", () => {
  const t = randn([3]);
  t.dispose();
  expectError(() => t.add(1), /^add: argument 0: tensor has been disposed/);
  expectError(() => randn([3]).add(t), /^add: argument 1: tensor has been disposed/);
  expectError(() => t.shape, /tensor has been disposed/);
  expectError(() => cat([randn([1]), t]), /^cat: argument 0: tensor has been disposed/);
  assert.equal(String(t), "tensor(<disposed>)");
});

test("arguments are validated before they reach libtorch", () => {
  expectError(() => randn([2, 3]).transpose(0.5, 1), /^transpose: dim0 must be an integer, got 0.5/);
  expectError(() => randn([2, 3]).view([2, "3" as never]), /^view: shape must be an array of integers/);
  expectError(() => randn([2]).add("1" as never), /^add: operand must be a Tensor or a number, got string/);
  expectError(() => zeros([-1]), /^zeros: sizes must be non-negative/);
  expectError(() => fromBytes(new Uint8Array(7), "float32", [2]), /^fromBytes: expected 8 bytes for shape \[2\]/);
  expectError(() => randn([2]).clamp(), /^clamp: at least one of min and max/);
  expectError(() => setNumThreads(0), /setNumThreads: expected an integer >= 1/);
  expectError(
    () => F.interpolate(randn([1, 1, 4, 4]), { size: 8, scaleFactor: 2 }),
    /exactly one of size and scaleFactor/,
  );
  expectError(
    () => F.interpolate(randn([1, 1, 4, 4]), { size: 2, mode: "nearest", antialias: true }),
    /^interpolate: antialias only applies to bilinear mode/,
  );
  expectError(() => tensor([[1, 2], [3]]), /^tensor: ragged nested array/);
});

test("impossible allocations and bad devices are errors", () => {
  expectError(() => zeros([1e7, 1e7]), /^zeros: .*(allocate|memory)/i);
  expectError(() => randn([2]).toDevice("cuda:0"), /^toDevice: /);
  expectError(() => randn([2]).toDevice("tpu"), /^toDevice: /);
});

test("the process continues after errors and the error carries op and code", () => {
  try {
    randn([2, 3]).mm(randn([4, 5]));
    assert.fail("mm should throw");
  } catch (error) {
    const e = error as Error & { op?: string; code?: string };
    assert.equal(e.op, "mm");
    assert.equal(e.code, "ERR_TORCH");
  }
  assert.ok(randn([2]).add(1) instanceof Tensor);
});
