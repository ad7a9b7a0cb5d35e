// safetensors files: round trips here, files Python parses by hand (Debian has no Python
// safetensors) and compares with torch's values, files Python writes by hand that we read, the
// streaming row writer, and malformed files refused with errors that name them.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { SafetensorsRowWriter, readSafetensors, writeSafetensors } from "../src/io/index.js";
import { Tensor, arange, fromTypedArray, liveTensors, ones, randn, scope, tensor, zeros } from "../src/torch/index.js";
import { load, save } from "../src/torch/serialize/index.js";
import { hex } from "./helpers/neutral.js";
import { pythonScript } from "./helpers/python-script.js";

const dir = mkdtempSync(join(tmpdir(), "moco-safetensors-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const python = pythonScript("io_check.py");

const file = (name: string): string => join(dir, name);

/** Every dtype, 0-d, empty, non-contiguous, and names that are awkward in JS or JSON. */
function sampleTensors(): Map<string, Tensor> {
  return scope(() => {
    const base = randn([4, 5]);
    return new Map<string, Tensor>([
      ["conv1.weight", randn([4, 3, 3, 3])],
      ["bn1.num_batches_tracked", tensor(7, { dtype: "int64" })],
      ["fc.bias", randn([5]).to("float64")],
      ["half", tensor([0.5, -1.25, 3], { dtype: "float16" })],
      ["bf16", tensor([0.5, -1.25, 3], { dtype: "bfloat16" })],
      ["ints", tensor([1, -1, 2 ** 31 - 1], { dtype: "int32" })],
      ["longs", fromTypedArray(new BigInt64Array([2n ** 62n, -(2n ** 63n), 0n]))],
      ["bytes", tensor([0, 1, 255], { dtype: "uint8" })],
      ["chars", tensor([-128, 127], { dtype: "int8" })],
      ["shorts", tensor([-(2 ** 15), 7], { dtype: "int16" })],
      ["mask", tensor([1, 0, 1], { dtype: "bool" })],
      ["empty", zeros([0, 3])],
      ["special", tensor([NaN, Infinity, -Infinity, -0])],
      ["transposed", base.t()],
      ["requires_grad", ones([2]).requiresGrad_()],
      ["ünïcödé ✓", ones([2])],
      ["__proto__", arange(3).to("float32")],
      ["0", tensor([1, 2])],
    ]);
  });
}

function disposeAll(tensors: Iterable<Tensor>): void {
  for (const t of tensors) t.dispose();
}

function assertSameTensors(actual: Map<string, Tensor>, expected: Map<string, Tensor>, where: string): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), `${where}: names`);
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, `${where}: ${name} dtype`);
    assert.deepEqual([...a.shape], [...e.shape], `${where}: ${name} shape`);
    assert.equal(hex(a.toBytes()), hex(e.toBytes()), `${where}: ${name} values`);
  }
}

/** The file's JSON header, parsed here by hand. */
function headerOf(path: string): { length: number; json: Record<string, unknown>; raw: string } {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  const raw = bytes.subarray(8, 8 + length).toString("utf8");
  return { length, json: JSON.parse(raw) as Record<string, unknown>, raw };
}

describe("safetensors round trip", () => {
  test("names, dtypes, shapes, values and metadata come back; tensors are fresh and contiguous", () => {
    const baseline = liveTensors();
    const tensors = sampleTensors();
    const path = file("round-trip.safetensors");
    writeSafetensors(path, tensors, { format: "pt", ünï: "✓" });
    const back = readSafetensors(path);
    try {
      assertSameTensors(back.tensors, tensors, "round trip");
      assert.deepEqual(back.metadata, { format: "pt", ünï: "✓" });
      assert.deepEqual([...back.tensors.keys()].slice(0, 3), ["0", "__proto__", "bf16"], "sorted by name");
      const transposed = back.tensors.get("transposed")!;
      assert.equal(transposed.isContiguous, true);
      assert.equal(back.tensors.get("requires_grad")!.requiresGrad, false);
      assert.equal(back.tensors.get("__proto__")!.shape[0], 3);
    } finally {
      disposeAll(back.tensors.values());
      disposeAll(tensors.values());
    }
    assert.equal(liveTensors(), baseline);
  });

  test("an iterable of pairs works like a Map; no metadata reads back as {}", () => {
    const t = arange(4).to("float32");
    const path = file("pairs.safetensors");
    writeSafetensors(path, [["x", t]]);
    const back = readSafetensors(path);
    assert.deepEqual(back.metadata, {});
    assert.deepEqual(back.tensors.get("x")!.toArray(), [0, 1, 2, 3]);
    assert.equal("__metadata__" in headerOf(path).json, false);
    back.tensors.get("x")!.dispose();
    t.dispose();
  });

  test("the header is laid out as the reference implementation writes it", () => {
    const tensors = sampleTensors();
    const path = file("layout.safetensors");
    writeSafetensors(path, tensors, { format: "pt" });
    disposeAll(tensors.values());
    const { length, json, raw } = headerOf(path);
    assert.equal(length % 8, 0, "the header is padded to 8 bytes");
    const text = raw.trimEnd();
    assert.ok(raw.length - text.length < 8 && /^[ ]*$/.test(raw.slice(text.length)), "JSON, then padding spaces");
    assert.doesNotMatch(text.replace(/"[^"]*"/g, '""'), /\s/, "compact JSON");
    assert.ok(raw.startsWith('{"__metadata__":{"format":"pt"},'), "metadata first");
    // Data order: larger dtypes first (I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL), then name.
    const entries = Object.entries(json)
      .filter(([name]) => name !== "__metadata__")
      .map(([name, info]) => ({ name, ...(info as { dtype: string; data_offsets: [number, number] }) }))
      .sort((a, b) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
    const dtypes = [...new Set(entries.map((e) => e.dtype))];
    assert.deepEqual(dtypes, ["I64", "F64", "F32", "I32", "BF16", "F16", "I16", "I8", "U8", "BOOL"]);
    const f32 = entries.filter((e) => e.dtype === "F32").map((e) => e.name);
    assert.deepEqual(f32, [...f32].sort());
  });
});

describe("safetensors with Python (parsed and written by hand, compared with torch)", () => {
  test("Python reads our files, whole and streamed, with torch's values and the reference layout", () => {
    const tensors = sampleTensors();
    const rows = scope(() => randn([10, 6]));
    const whole = file("ours.safetensors");
    const streamed = file("streamed.safetensors");
    writeSafetensors(whole, tensors, { format: "pt" });
    const writer = new SafetensorsRowWriter(streamed, { name: "embeddings", rows: 10, cols: 6, metadata: { k: "v" } });
    for (const start of [0, 4, 8]) {
      const batch = rows.narrow(0, start, Math.min(4, 10 - start));
      writer.append(batch);
      batch.dispose();
    }
    writer.close();
    save(Object.fromEntries(tensors), file("ours.pt"));
    save({ embeddings: rows }, file("streamed.pt"));
    const report = JSON.parse(
      python("safetensors-check", whole, file("ours.pt"), streamed, file("streamed.pt")),
    ) as Record<string, { errors: string[]; names: string[]; metadata: Record<string, string> | null }>;
    disposeAll(tensors.values());
    rows.dispose();
    assert.deepEqual(report[whole]!.errors, []);
    assert.deepEqual(report[streamed]!.errors, []);
    assert.equal(report[whole]!.names.length, 18);
    assert.deepEqual(report[whole]!.metadata, { format: "pt" });
    assert.deepEqual(report[streamed]!.names, ["embeddings"]);
    assert.deepEqual(report[streamed]!.metadata, { k: "v" });
  });

  test("we read files Python wrote by hand, in the reference layout and in any other", () => {
    const baseline = liveTensors();
    python("safetensors-write", dir);
    const expected = load(file("python.pt")) as Record<string, Tensor>;
    const expectedMap = new Map(Object.entries(expected));
    try {
      for (const name of ["python.safetensors", "pretty.safetensors"]) {
        const { tensors, metadata } = readSafetensors(file(name));
        try {
          assertSameTensors(tensors, expectedMap, name);
        } finally {
          disposeAll(tensors.values());
        }
        assert.deepEqual(metadata, name === "python.safetensors" ? { format: "pt", note: "by hand" } : {});
      }
    } finally {
      disposeAll(expectedMap.values());
    }
    assert.equal(liveTensors(), baseline);
  });
});

describe("SafetensorsRowWriter", () => {
  test("writes each batch straight to the file and puts it in place on close", () => {
    const path = file("rows.safetensors");
    const writer = new SafetensorsRowWriter(path, { name: "e", rows: 6, cols: 1000 });
    const temporary = (): string[] => readdirSync(dir).filter((n) => n.startsWith("rows.safetensors.tmp"));
    const batch = ones([3, 1000]);
    writer.append(batch);
    assert.equal(temporary().length, 1);
    const afterOne = statSync(file(temporary()[0]!)).size;
    assert.ok(afterOne >= 3 * 1000 * 4, `the first batch is on disk (${afterOne} bytes)`);
    writer.append(batch);
    assert.equal(writer.rowsWritten, 6);
    assert.equal(existsSync(path), false, "nothing at the path before close");
    writer.close();
    assert.deepEqual(temporary(), []);
    const { tensors } = readSafetensors(path);
    const e = tensors.get("e")!;
    assert.deepEqual([...e.shape], [6, 1000]);
    assert.equal(e.sum().item(), 6000);
    e.dispose();
    batch.dispose();
  });

  test("checks shapes, dtypes and counts; a failed close or an abort leaves the old file alone", () => {
    const path = file("checked.safetensors");
    writeFileSync(path, "old");
    const writer = new SafetensorsRowWriter(path, { name: "e", rows: 4, cols: 3, dtype: "F64" });
    const wrongCols = zeros([2, 4], { dtype: "float64" });
    const wrongDtype = zeros([2, 3]);
    const oneD = zeros([3], { dtype: "float64" });
    const good = zeros([3, 3], { dtype: "float64" });
    assert.throws(
      () => writer.append(wrongCols),
      /append \(.*checked\.safetensors\): rows must have shape \[n, 3\], got \[2, 4\]/,
    );
    assert.throws(() => writer.append(wrongDtype), /rows must be float64, got float32/);
    assert.throws(() => writer.append(oneD), /rows must have shape \[n, 3\], got \[3\]/);
    writer.append(good);
    assert.throws(() => writer.append(good), /3 \+ 3 rows exceed the 4 declared for 'e'/);
    assert.throws(() => writer.close(), /only 3 of the 4 declared rows were written; the file was discarded/);
    assert.throws(() => writer.append(good), /already closed or aborted/);
    assert.equal(readFileSync(path, "utf8"), "old");
    const aborted = new SafetensorsRowWriter(path, { name: "e", rows: 1, cols: 3, dtype: "F64" });
    aborted.abort();
    aborted.abort();
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith("checked.safetensors.tmp")),
      [],
    );
    for (const t of [wrongCols, wrongDtype, oneD, good]) t.dispose();
    assert.throws(
      () => new SafetensorsRowWriter(path, { name: "e", rows: -1, cols: 3 }),
      /rows must be a non-negative integer, got -1/,
    );
    assert.throws(
      () => new SafetensorsRowWriter(path, { name: "e", rows: 1, cols: 3, dtype: "F8" as "F32" }),
      /unknown dtype F8/,
    );
  });

  test("leaving a using block without close discards the file", () => {
    const path = file("using.safetensors");
    {
      using writer = new SafetensorsRowWriter(path, { name: "e", rows: 1, cols: 1 });
      assert.equal(writer.rowsWritten, 0);
    }
    assert.equal(existsSync(path), false);
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith("using.safetensors")),
      [],
    );
  });
});

describe("bad input fails with a clear error", () => {
  /** A valid file's bytes with the header replaced by `header` (data kept). */
  function withHeader(header: string, data: Uint8Array = new Uint8Array(12)): Buffer {
    const json = Buffer.from(header, "utf8");
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([length, json, data]);
  }
  const f32 = (offsets: [number, number], shape = [3]): string =>
    JSON.stringify({ dtype: "F32", shape, data_offsets: offsets });

  const malformed: [string, () => Uint8Array, RegExp][] = [
    ["empty", () => new Uint8Array(0), /truncated: the header length needs 8 bytes at offset 0, but the file has 0/],
    ["huge-header", () => withHeader("{}").fill(0xff, 0, 8), /the header length \d+ is over the limit/],
    [
      "short-header",
      () => withHeader('{"a":' + f32([0, 12]) + "}").subarray(0, 20),
      /truncated: the header needs \d+ bytes/,
    ],
    ["bad-json", () => withHeader('{"a": {'), /the header is not valid JSON/],
    ["not-object", () => withHeader("[1, 2]"), /the header is not a JSON object/],
    [
      "past-end",
      () => withHeader(`{"a":${f32([0, 16], [4])}}`),
      /truncated: the tensors need 16 bytes of data, but the file holds 12/,
    ],
    [
      "overlap",
      () => withHeader(`{"a":${f32([0, 12])},"b":${f32([8, 20])}}`, new Uint8Array(20)),
      /tensor 'b' \(bytes 8\.\.20\) overlaps/,
    ],
    [
      "gap",
      () => withHeader(`{"a":${f32([4, 16])}}`, new Uint8Array(16)),
      /bytes 0\.\.4 of the data belong to no tensor/,
    ],
    [
      "trailing",
      () => withHeader(`{"a":${f32([0, 12])}}`, new Uint8Array(14)),
      /bytes 12\.\.14 of the data belong to no tensor/,
    ],
    [
      "shape-mismatch",
      () => withHeader(`{"a":${f32([0, 12], [2, 2])}}`),
      /tensor 'a': shape \[2, 2\] of F32 needs 16 bytes, but data_offsets span 12/,
    ],
    [
      "bad-offsets",
      () => withHeader(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[12,0]}}`),
      /data_offsets must be \[begin, end\]/,
    ],
    [
      "bad-shape",
      () => withHeader(`{"a":{"dtype":"F32","shape":[-3],"data_offsets":[0,12]}}`),
      /shape must be a list of non-negative integers/,
    ],
    [
      "unknown-dtype",
      () => withHeader(`{"a":{"dtype":"F33","shape":[3],"data_offsets":[0,12]}}`),
      /unknown dtype "F33"/,
    ],
    [
      "unsupported-dtype",
      () => withHeader(`{"a":{"dtype":"U16","shape":[6],"data_offsets":[0,12]}}`),
      /dtype U16 is not supported/,
    ],
    [
      "bad-metadata",
      () => withHeader(`{"__metadata__":{"n":1},"a":${f32([0, 12])}}`),
      /"__metadata__" entry 'n' is not a string/,
    ],
  ];
  for (const [name, bytes, pattern] of malformed) {
    test(`malformed file: ${name}`, () => {
      const baseline = liveTensors();
      const path = file(`${name}.safetensors`);
      writeFileSync(path, bytes());
      assert.throws(
        () => readSafetensors(path),
        (error: Error) => error.message.startsWith(`readSafetensors: ${path}: `) && pattern.test(error.message),
      );
      assert.equal(liveTensors(), baseline);
    });
  }

  test("a truncated data section, and a missing file", () => {
    const t = randn([64]);
    const path = file("cut.safetensors");
    writeSafetensors(path, [["w", t]]);
    t.dispose();
    writeFileSync(path, readFileSync(path).subarray(0, -1));
    assert.throws(
      () => readSafetensors(path),
      /cut\.safetensors: truncated: the tensors need 256 bytes of data, but the file holds 255/,
    );
    assert.throws(
      () => readSafetensors(file("missing.safetensors")),
      /readSafetensors: cannot open .*missing\.safetensors: no such file/,
    );
  });

  test("writeSafetensors refuses bad tensors and metadata, and leaves the old file alone", () => {
    const path = file("refused.safetensors");
    writeFileSync(path, "old");
    const t = ones([2]);
    const disposed = ones([2]);
    disposed.dispose();
    assert.throws(
      () =>
        writeSafetensors(path, [
          ["a", t],
          ["a", t],
        ]),
      /two tensors are named 'a'/,
    );
    assert.throws(() => writeSafetensors(path, [["__metadata__", t]]), /"__metadata__" is reserved/);
    assert.throws(() => writeSafetensors(path, [["a", disposed]]), /tensor 'a' has been disposed/);
    assert.throws(
      () => writeSafetensors(path, [["a", [1, 2] as unknown as Tensor]]),
      /tensor 'a' must be a Tensor, got an array/,
    );
    assert.throws(
      () => writeSafetensors(path, [["a", t]], { n: 1 as unknown as string }),
      /metadata 'n' must be a string, got 1/,
    );
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith("refused.safetensors.tmp")),
      [],
    );
    t.dispose();
  });
});
