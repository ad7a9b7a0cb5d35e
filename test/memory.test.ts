// Native memory is invisible to V8: these tests prove that scopes and dispose free it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { Tensor, keep, liveTensors, randn, scope } from "../src/torch/index.js";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

test("1000 forward/backward iterations inside scopes keep tensor count and RSS flat", () => {
  const child = spawnSync(process.execPath, ["--import", "tsx", "test/helpers/memory-loop.ts", "1000"], {
    encoding: "utf8",
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: "131072" },
  });
  assert.equal(child.status, 0, child.stderr);
  const { baseline, samples } = JSON.parse(child.stdout) as {
    baseline: number;
    samples: { iteration: number; residentMiB: number; liveTensors: number }[];
  };
  for (const sample of samples) assert.equal(sample.liveTensors, baseline, `live tensors at ${sample.iteration}`);
  const at = (iteration: number) => samples.find((s) => s.iteration === iteration)?.residentMiB ?? NaN;
  const growth = (at(1000) - at(200)) / at(200);
  assert.ok(
    growth < 0.05,
    `RSS grew ${(growth * 100).toFixed(1)}% (${at(200).toFixed(0)} → ${at(1000).toFixed(0)} MiB)`,
  );
});

test("scope returns its result to the caller and frees the rest", () => {
  const before = liveTensors();
  const { a, list } = scope(() => {
    const tmp = randn([4]);
    return { a: tmp.add(1), list: [tmp.mul(2), tmp.mul(3)] };
  });
  assert.equal(liveTensors(), before + 3);
  a.dispose();
  for (const t of list) t.dispose();
  assert.equal(liveTensors(), before);
});

test("nested scopes hand returned tensors to the enclosing scope", () => {
  const before = liveTensors();
  scope(() => {
    const inner = scope(() => randn([3]).mul(2));
    assert.equal(inner.isDisposed, false);
    return undefined;
  });
  assert.equal(liveTensors(), before, "the inner result was freed by the outer scope");
});

test("keep exempts a tensor from every enclosing scope", () => {
  const before = liveTensors();
  let first: Tensor | undefined;
  const second = scope(() => {
    first = keep(randn([2]));
    return scope(() => keep(randn([2])));
  });
  assert.equal(liveTensors(), before + 2);
  first?.dispose();
  second.dispose();
  assert.equal(liveTensors(), before);
});

test("a throwing scope frees what it created and rethrows", () => {
  const before = liveTensors();
  assert.throws(
    () =>
      scope(() => {
        randn([3, 3]);
        return randn([2, 3]).matmul(randn([2, 3]));
      }),
    /matmul/,
  );
  assert.equal(liveTensors(), before);
});

test("a scope handed an async function throws instead of leaking", () => {
  const before = liveTensors();
  assert.throws(
    () =>
      scope(async () => {
        randn([2]);
      }),
    /Promise/,
  );
  assert.equal(liveTensors(), before);
});

test("dispose is idempotent and `using` frees at block exit", () => {
  const before = liveTensors();
  {
    using t = randn([5]);
    assert.equal(liveTensors(), before + 1);
    t.dispose();
    t.dispose();
  }
  {
    using u = randn([5]);
    assert.equal(u.shape[0], 5);
  }
  assert.equal(liveTensors(), before);
});

test("tensors never disposed: the GC safety net alone keeps native memory bounded, without explicit gc()", () => {
  // 3000 × 1 MiB dropped on the floor. V8 learns of the native memory only for tensors that reach
  // the safety net (not for scoped or disposed ones), and that is enough to make it collect.
  const child = spawnSync(process.execPath, ["--import", "tsx", "test/helpers/gc-only-loop.ts", "3000"], {
    encoding: "utf8",
  });
  assert.equal(child.status, 0, child.stderr);
  const { peakMiB } = JSON.parse(child.stdout) as { peakMiB: number };
  assert.ok(peakMiB < 1500, `peak RSS ${peakMiB.toFixed(0)} MiB for 3000 MiB of dropped tensors`);
});

test("unreferenced tensors are eventually freed by the GC backstop", async () => {
  const before = liveTensors();
  for (let i = 0; i < 100; i++) randn([1000]);
  for (let i = 0; i < 10 && liveTensors() > before; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(liveTensors(), before);
});
