// NumPy .npy files: numpy (run by the test through helpers/python.ts's PYTHON) loads what we write with
// identical values and byte for byte as np.save writes it, we read what numpy writes (versions
// 1.0, 2.0, 3.0), the streaming row writer, and files we refuse with errors that name them.
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { NpyRowWriter, readNpy, writeNpy } from "../src/io/index.js";
import { Tensor, arange, fromTypedArray, liveTensors, ones, randn, scope, tensor, zeros } from "../src/torch/index.js";
import { load, save } from "../src/torch/serialize/index.js";
import { hex } from "./helpers/neutral.js";
import { pythonScript } from "./helpers/python-script.js";

const dir = mkdtempSync(join(tmpdir(), "moco-npy-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const python = pythonScript("io_check.py");

const file = (name: string): string => join(dir, name);

/** Every dtype numpy shares with us, 0-d to 3-d, empty, special values, non-contiguous. */
function sampleArrays(): Record<string, Tensor> {
  return scope(() => ({
    float32: randn([3, 4]),
    float64: randn([5]).to("float64"),
    int64: fromTypedArray(new BigInt64Array([1n, -2n, 2n ** 62n, -(2n ** 63n)]), [2, 2]),
    int32: tensor([1, -1, 2 ** 31 - 1], { dtype: "int32" }),
    uint8: tensor([0, 1, 254, 255], { dtype: "uint8" }).reshape([2, 2]),
    int16: tensor([-(2 ** 15), 7], { dtype: "int16" }),
    int8: tensor([-128, 127], { dtype: "int8" }),
    float16: tensor([0.5, -1.25, 65504], { dtype: "float16" }),
    bool: tensor([1, 0, 1], { dtype: "bool" }),
    scalar: tensor(3.5),
    cube: arange(24).to("float32").reshape([2, 3, 4]),
    empty: zeros([0, 3]),
    special: tensor([NaN, Infinity, -Infinity, -0]),
    transposed: randn([4, 3]).t(),
    big_first_dim: ones([1234567, 1], { dtype: "uint8" }),
  }));
}

function assertSame(actual: Tensor, expected: Tensor, where: string): void {
  assert.equal(actual.dtype, expected.dtype, `${where}: dtype`);
  assert.deepEqual([...actual.shape], [...expected.shape], `${where}: shape`);
  assert.equal(hex(actual.toBytes()), hex(expected.toBytes()), `${where}: values`);
}

type NpyReport = Record<string, { errors: string[]; same_bytes_as_np_save: boolean }>;

describe(".npy with numpy", () => {
  test("numpy loads what we write with identical values, byte for byte as np.save writes it", () => {
    const baseline = liveTensors();
    const arrays = sampleArrays();
    const out = file("ours");
    mkdirSync(out);
    for (const [name, array] of Object.entries(arrays)) writeNpy(join(out, `${name}.npy`), array);
    // The streamed array, with batches of several sizes and an empty one.
    const streamed = scope(() => randn([7, 5]));
    const writer = new NpyRowWriter(join(out, "streamed.npy"), { cols: 5 });
    for (const [start, length] of [
      [0, 3],
      [3, 0],
      [3, 4],
    ] as const) {
      const batch = streamed.narrow(0, start, length);
      writer.append(batch);
      batch.dispose();
    }
    assert.equal(writer.rowsWritten, 7);
    writer.close();
    const noRows = new NpyRowWriter(join(out, "no_rows.npy"), { cols: 2, dtype: "int64" });
    noRows.close();
    const expected = { ...arrays, streamed, no_rows: zeros([0, 2], { dtype: "int64" }) };
    save(expected, join(out, "refs.pt"));
    for (const t of Object.values(expected)) t.dispose();
    assert.equal(liveTensors(), baseline);

    const report = JSON.parse(python("npy-check", out)) as NpyReport;
    assert.deepEqual(Object.keys(report).sort(), Object.keys(expected).sort());
    for (const [name, { errors, same_bytes_as_np_save: same }] of Object.entries(report)) {
      assert.deepEqual(errors, [], name);
      assert.ok(same, `${name}: np.save writes other bytes`);
    }
  });

  test("we read what numpy writes: every shared dtype, versions 1.0, 2.0 and 3.0", () => {
    const baseline = liveTensors();
    const from = file("numpy");
    mkdirSync(from);
    python("npy-write", from);
    const refs = load(join(from, "refs.pt")) as Record<string, Tensor>;
    try {
      assert.ok(Object.keys(refs).length >= 15);
      for (const [name, expected] of Object.entries(refs)) {
        const actual = readNpy(join(from, `${name}.npy`));
        assertSame(actual, expected, name);
        actual.dispose();
      }
    } finally {
      for (const t of Object.values(refs)) t.dispose();
    }
    assert.equal(liveTensors(), baseline);
  });

  const refused: [string, RegExp][] = [
    ["fortran", /Fortran-ordered arrays are not supported/],
    ["big-endian", /big-endian data \('>f4'\) is not supported/],
    ["structured", /structured arrays \(a list 'descr'\) are not supported/],
    ["uint16", /dtype '<u2' is not supported \(supported: float16, float32/],
    ["complex", /dtype '<c8' is not supported/],
    ["object", /dtype '\|O' is not supported/],
  ];
  for (const [name, pattern] of refused) {
    test(`numpy's ${name} array is refused`, () => {
      const path = join(file("numpy"), `${name}.npy`);
      if (!existsSync(path)) python("npy-write", file("numpy"));
      assert.throws(
        () => readNpy(path),
        (error: Error) => error.message.startsWith(`readNpy: ${path}: `) && pattern.test(error.message),
      );
    });
  }
});

describe(".npy here", () => {
  test("round trip keeps dtype, shape and values; the result is contiguous", () => {
    const baseline = liveTensors();
    const arrays = sampleArrays();
    for (const [name, array] of Object.entries(arrays)) {
      const path = file(`${name}.npy`);
      writeNpy(path, array);
      const back = readNpy(path);
      assertSame(back, array, name);
      assert.equal(back.isContiguous, true);
      back.dispose();
      array.dispose();
    }
    assert.equal(liveTensors(), baseline);
  });

  test("the header is padded so that the data starts at a multiple of 64 bytes", () => {
    const t = ones([3, 4]);
    writeNpy(file("aligned.npy"), t);
    t.dispose();
    const bytes = readFileSync(file("aligned.npy"));
    const headerEnd = 10 + bytes.readUInt16LE(8);
    assert.equal(headerEnd % 64, 0);
    assert.equal(bytes[headerEnd - 1], 0x0a, "the header ends with a newline");
    assert.equal(bytes.length - headerEnd, 48);
  });

  test("NpyRowWriter checks batches, and abort or using leaves the old file alone", () => {
    const path = file("rows.npy");
    writeFileSync(path, "old");
    const writer = new NpyRowWriter(path, { cols: 3 });
    const wrongCols = zeros([2, 4]);
    const wrongDtype = zeros([2, 3], { dtype: "float64" });
    assert.throws(
      () => writer.append(wrongCols),
      /NpyRowWriter\.append \(.*rows\.npy\): rows must have shape \[n, 3\]/,
    );
    assert.throws(() => writer.append(wrongDtype), /rows must be float32, got float64/);
    writer.abort();
    assert.throws(() => writer.close(), /already closed or aborted/);
    const row = zeros([1, 3]);
    {
      using scoped = new NpyRowWriter(path, { cols: 3 });
      scoped.append(row);
    }
    row.dispose();
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith("rows.npy.tmp")),
      [],
    );
    wrongCols.dispose();
    wrongDtype.dispose();
    assert.throws(() => new NpyRowWriter(path, { cols: 3, dtype: "bfloat16" }), /numpy has no bfloat16 type/);
    assert.throws(() => new NpyRowWriter(path, { cols: 1.5 }), /cols must be a non-negative integer, got 1\.5/);
  });

  test("bfloat16 and disposed tensors are refused when writing", () => {
    const b = ones([2], { dtype: "bfloat16" });
    assert.throws(() => writeNpy(file("b.npy"), b), /writeNpy: numpy has no bfloat16 type .*; convert first/);
    b.dispose();
    assert.throws(() => writeNpy(file("b.npy"), b), /writeNpy: tensor has been disposed/);
    assert.equal(existsSync(file("b.npy")), false);
  });

  test("malformed files fail with clear errors naming the file", () => {
    const t = arange(6).to("float32").reshape([2, 3]);
    writeNpy(file("good.npy"), t);
    t.dispose();
    const good = readFileSync(file("good.npy"));
    const header = good.subarray(10, 128).toString("latin1");
    const withHeader = (text: string): Buffer => {
      const padded = text.padEnd(118, " ");
      return Buffer.concat([good.subarray(0, 10), Buffer.from(padded, "latin1"), good.subarray(128)]);
    };
    const cases: [string, Uint8Array, RegExp][] = [
      ["empty", new Uint8Array(0), /truncated: the \.npy preamble needs 8 bytes at offset 0, but the file has 0/],
      ["magic", Buffer.from("PK\x03\x04 not numpy at all"), /not a \.npy file \(no \\x93NUMPY magic\)/],
      [
        "version",
        Buffer.concat([good.subarray(0, 6), Buffer.from([4, 0]), good.subarray(8)]),
        /unsupported \.npy format version 4\.0/,
      ],
      ["cut-header", good.subarray(0, 60), /truncated: the header needs 118 bytes at offset 10/],
      [
        "cut-data",
        good.subarray(0, good.length - 1),
        /truncated: the data of shape \[2, 3\] needs 24 bytes at offset 128, but the file has 151/,
      ],
      [
        "trailing",
        Buffer.concat([good, new Uint8Array(4)]),
        /4 bytes follow the array; readNpy reads files of one array/,
      ],
      ["not-a-dict", withHeader("[1, 2]\n"), /malformed header dict at character 0: expected '\{'/],
      [
        "no-shape",
        withHeader("{'descr': '<f4', 'fortran_order': False, }\n"),
        /the header has no 'shape' tuple of integers/,
      ],
      [
        "code",
        withHeader("{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os'), }\n"),
        /malformed header dict at character \d+: expected a plain string/,
      ],
      ["negative", withHeader(header.replace("(2, 3)", "(-2, 3)")), /malformed header dict/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = file(`bad-${name}.npy`);
      writeFileSync(path, bytes);
      assert.throws(
        () => readNpy(path),
        (error: Error) => error.message.startsWith(`readNpy: ${path}: `) && pattern.test(error.message),
        name,
      );
    }
    assert.throws(() => readNpy(file("missing.npy")), /readNpy: cannot open .*missing\.npy: no such file/);
  });
});
