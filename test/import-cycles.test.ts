// No import cycles in src/: a cycle works only as long as no module of it uses an imported value
// at load time, and breaks, with an undefined binding, the day one does (docs/architecture.md §1: the layers
// import one way). Type-only imports are erased by TypeScript and cannot break a load, but they
// are held to the same rule, with one stated exception.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { importCycles, importGraph, type ImportEdge } from "./helpers/import-graph.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const edges = importGraph(root, "src");

/**
 * The printer (format.ts) takes a Tensor, and Tensor's toString calls the printer: the type import
 * back is the printer's parameter type, erased at run time.
 */
const ALLOWED_TYPE_CYCLES = [["src/torch/format.ts", "src/torch/tensor.ts"]];

describe("import cycles", () => {
  test("the import graph is read (a broken parser would find no cycles in nothing)", () => {
    assert.ok(edges.length > 300, `only ${edges.length} imports found in src/`);
    const has = (from: string, to: string, typeOnly: boolean): boolean =>
      edges.some((e: ImportEdge) => e.from === from && e.to === to && e.typeOnly === typeOnly);
    assert.ok(has("src/torch/tensor.ts", "src/torch/format.ts", false));
    assert.ok(has("src/torch/format.ts", "src/torch/tensor.ts", true));
    assert.deepEqual(
      importCycles([
        { from: "a.ts", to: "b.ts", typeOnly: false },
        { from: "b.ts", to: "c.ts", typeOnly: false },
        { from: "c.ts", to: "a.ts", typeOnly: true },
        { from: "c.ts", to: "d.ts", typeOnly: false },
      ]),
      [["a.ts", "b.ts", "c.ts"]],
    );
  });

  test("no runtime import cycle in src/", () => {
    assert.deepEqual(importCycles(edges.filter((e) => !e.typeOnly)), []);
  });

  test("no import cycle in src/, type-only imports included, but the stated exception", () => {
    assert.deepEqual(importCycles(edges), ALLOWED_TYPE_CYCLES);
  });
});
