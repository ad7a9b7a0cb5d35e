// Checkpoints in torch.save's zip format, proven against Python's own torch.save/torch.load (run by
// the tests through helpers/python.ts's PYTHON, which has torch 1.13): both directions, exact values, shared
// storages, state dicts that load into torch modules, and inputs that must fail safely.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import * as zlib from "node:zlib";

import { Tensor, arange, fromTypedArray, liveTensors, ones, randn, scope, tensor } from "../src/torch/index.js";
import { crc32Portable } from "../src/torch/serialize/crc32.js";
import { load, loadFromBuffer, save, saveToBuffer, type Saveable } from "../src/torch/serialize/index.js";
import { encodeLong, pickle, unpickle } from "../src/torch/serialize/pickle.js";
import { MemorySink, ZipReader, ZipWriter, bufferSource } from "../src/torch/serialize/zip.js";
import { assertMatches, disposeAll, toNeutral, type Neutral } from "./helpers/neutral.js";
import { pythonScript } from "./helpers/python-script.js";

const dir = mkdtempSync(join(tmpdir(), "moco-serialize-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const python = pythonScript("serialize_check.py");

const file = (name: string): string => join(dir, name);

// ---------------------------------------------------------------------------------------------
// What we write for Python to check: the same kinds of things Python wrote for us.

/** Built in a scope, so that intermediate tensors are freed and only the structure's remain. */
function ourStructure(): { [key: string]: Saveable } {
  return scope(buildOurStructure);
}

function buildOurStructure(): { [key: string]: Saveable } {
  const base = arange(12).to("float32").reshape([3, 4]);
  const x = randn([3, 5]);
  return {
    nested: {
      a: { b: { c: 1, d: [1, 2, { e: "deep" }] } },
      list: [1, 2.5, "x", null, true, false],
      empty_list: [],
      empty_dict: {},
    },
    tensors: {
      int64: fromTypedArray(new BigInt64Array([1n, -2n, 2n ** 40n, 2n ** 62n, -(2n ** 63n), 0n]), [2, 3]),
      float32: randn([2, 3]),
      float64: randn([4]).to("float64"),
      float16: tensor([0.5, -1.25, 3], { dtype: "float16" }),
      bfloat16: tensor([0.5, -1.25, 3], { dtype: "bfloat16" }),
      int32: tensor([1, -1, 2 ** 31 - 1], { dtype: "int32" }),
      int16: tensor([-(2 ** 15), 7], { dtype: "int16" }),
      int8: tensor([-128, 127], { dtype: "int8" }),
      uint8: tensor([0, 1, 255], { dtype: "uint8" }),
      bool: tensor([1, 0, 1], { dtype: "bool" }),
      scalar: tensor(3.5),
      empty: tensor([]).reshape([0, 3]),
      special: tensor([NaN, Infinity, -Infinity, -0]),
      transposed: x.t(),
      strided: x.slice(1, null, null, 2),
      requires_grad: ones([2]).requiresGrad_(),
    },
    views: [base, base.select(0, 1), base.narrow(1, 1, 2), base.t()],
    // Loaded by Python into nn.Linear(4, 3) and torch.optim.SGD.
    linear: { weight: randn([3, 4]), bias: randn([3]) },
    optimizer: {
      state: new Map<number, Saveable>([
        [0, { momentum_buffer: randn([3, 4]) }],
        [1, { momentum_buffer: randn([3]) }],
      ]),
      param_groups: [{ lr: 0.1, momentum: 0.9, dampening: 0, weight_decay: 0.0001, nesterov: false, params: [0, 1] }],
    },
    numbers: {
      int: 7,
      negative: -123456789,
      int32_edge: 2 ** 31,
      safe_max: Number.MAX_SAFE_INTEGER,
      big: 2n ** 64n + 1n,
      negative_big: -(2n ** 70n),
      small_bigint: 5n,
      float: 0.1,
      unsafe_whole: 2 ** 60,
      nan: NaN,
      inf: Infinity,
      negative_inf: -Infinity,
    },
    strings: ["", "hello", "ünïcödé ✓ 𝄞", "line\nbreak"],
    bytes: new Uint8Array([0, 1, 254, 255]),
    empty_bytes: new Uint8Array(0),
    bools: [true, false],
    none: null,
    int_keys: new Map<number, Saveable>([
      [1, "a"],
      [2, "b"],
    ]),
    mixed_keys: new Map<string | number, Saveable>([
      ["a", 1],
      [3, 2],
    ]),
    epoch: 42,
  };
}

// ---------------------------------------------------------------------------------------------

describe("checkpoints written by Python's torch.save", () => {
  for (const protocol of ["2", "4", "5"]) {
    test(`load exactly (pickle protocol ${protocol})`, () => {
      const baseline = liveTensors();
      const ckpt = file(`reference-p${protocol}.pt`);
      const expectedPath = file(`reference-p${protocol}.json`);
      python("reference", ckpt, expectedPath, protocol);
      const expected = JSON.parse(readFileSync(expectedPath, "utf8")) as Neutral;
      const loaded = load(ckpt);
      try {
        assertMatches(loaded, expected, "value", new Map());
        const value = loaded as Record<string, Saveable>;
        // Spot checks of the JS shapes the brief promises.
        const optimizer = value.optimizer as Record<string, Saveable>;
        assert.ok(optimizer.state instanceof Map);
        assert.deepEqual([...optimizer.state.keys()], [0, 1]);
        const views = value.views as Tensor[];
        assert.equal(new Set(views.map((v) => v.storageId)).size, 1, "views share one storage");
        assert.deepEqual(views[3]!.toArray(), [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
        const stateDict = value.state_dict as Record<string, Tensor>;
        assert.deepEqual(Object.keys(stateDict), [
          "0.weight",
          "0.bias",
          "1.weight",
          "1.bias",
          "1.running_mean",
          "1.running_var",
          "1.num_batches_tracked",
        ]);
        assert.equal(stateDict["1.num_batches_tracked"]!.dtype, "int64");
        assert.equal((value.numbers as Record<string, Saveable>).big, 2n ** 64n + 1n);
        assert.deepEqual(value.set, [1, 2, 3]);
        assert.equal(value.device, "cpu");
        assert.match(value.torch_version as string, /^\d+\.\d+\.\d+/); // the reference Python's (1.13 on Debian, 2.x on a GPU image)
        const parameter = (value.tensors as Record<string, Tensor>).parameter!;
        assert.equal(parameter.requiresGrad, true);
      } finally {
        disposeAll(loaded);
      }
      assert.equal(liveTensors(), baseline, "every loaded tensor was disposed; nothing else is left");
    });
  }

  test("tensors saved from a GPU load onto the CPU", () => {
    const path = file("cuda.pt");
    python("cuda-location", path);
    const loaded = load(path) as Record<string, Tensor>;
    assert.equal(loaded.w!.device, "cpu");
    assert.deepEqual(loaded.w!.toArray(), [0, 1, 2, 3, 4, 5]);
    disposeAll(loaded);
  });

  test("load deflated records and ZIP64 extra fields written by Python's zipfile", () => {
    const ckpt = file("reference-p2.pt");
    if (!existsSync(ckpt)) python("reference", ckpt, file("reference-p2.json"));
    const expected = JSON.parse(readFileSync(file("reference-p2.json"), "utf8")) as Neutral;
    for (const variant of ["deflate", "zip64"]) {
      const rewritten = file(`reference-${variant}.pt`);
      python(variant, ckpt, rewritten);
      const loaded = load(rewritten);
      try {
        assertMatches(loaded, expected, variant, new Map());
      } finally {
        disposeAll(loaded);
      }
    }
  });
});

describe("checkpoints we write", () => {
  test("load in Python's torch.load with the right types, values, sharing, and state-dict use", () => {
    const value = ourStructure();
    const ckpt = file("ours.pt");
    const expectedPath = file("ours.json");
    save(value, ckpt);
    writeFileSync(expectedPath, JSON.stringify(toNeutral(value)));
    const report = JSON.parse(python("check", ckpt, expectedPath)) as {
      ok: boolean;
      errors: string[];
      facts: Record<string, unknown>;
    };
    assert.deepEqual(report.errors, []);
    assert.ok(report.ok);
    assert.equal(report.facts.optimizer_step_ok, true);
    assert.deepEqual(report.facts.optimizer_state_keys, ["int", "int"], "optimizer state keys are Python ints");
    assert.equal(report.facts.optimizer_lr, 0.1);
    const linear = value.linear as Record<string, Tensor>;
    const weightSum = linear.weight!.toArray().reduce((a, b) => a + b, 0);
    assert.ok(Math.abs((report.facts.linear_weight_sum as number) - weightSum) < 1e-5);
    assert.equal(report.facts.views_share_storage, true);
    assert.equal(report.facts.zip_ok, true);
    assert.equal(report.facts.aligned, true, "record data is 64-byte aligned");
    assert.deepEqual((report.facts.records as string[]).slice(0, 2), ["ours/data.pkl", "ours/byteorder"]);
    assert.ok((report.facts.records as string[]).includes("ours/version"));
    disposeAll(value);
  });

  test("ZIP64 archives load in Python and here", () => {
    const value = ourStructure();
    const bytes = saveToBuffer(value, { archiveName: "big", zip64: "always" });
    const ckpt = file("zip64.pt");
    writeFileSync(ckpt, bytes);
    writeFileSync(file("zip64.json"), JSON.stringify(toNeutral(value)));
    const report = JSON.parse(python("check", ckpt, file("zip64.json"))) as { errors: string[] };
    assert.deepEqual(report.errors, []);
    const loaded = loadFromBuffer(bytes);
    disposeAll(loaded);
    disposeAll(value);
  });

  test("round trip here keeps values, strides, offsets within the storage span, and sharing", () => {
    const baseline = liveTensors();
    const value = ourStructure();
    const loaded = loadFromBuffer(saveToBuffer(value));
    try {
      const expected = toNeutral(value);
      // Offsets are relative to the span we write, which starts at the first element any view reaches.
      const withoutOffsets = JSON.parse(JSON.stringify(expected), (k, v: unknown) => (k === "offset" ? undefined : v));
      const actualNeutral = JSON.parse(JSON.stringify(toNeutral(loaded)), (k, v: unknown) =>
        k === "offset" ? undefined : v,
      );
      assert.deepEqual(actualNeutral, withoutOffsets);
      const views = (loaded as Record<string, Tensor[]>).views!;
      assert.equal(new Set(views.map((v) => v.storageId)).size, 1);
      // A write through one view shows in the others, as in Python.
      views[0]!.mul_(2);
      assert.deepEqual(views[1]!.toArray(), [8, 10, 12, 14]);
    } finally {
      disposeAll(loaded);
      disposeAll(value);
    }
    assert.equal(liveTensors(), baseline);
  });

  test("a slice of a big tensor writes only the span it reaches", () => {
    const big = arange(1000).to("float32");
    const slice = big.narrow(0, 500, 3);
    const bytes = saveToBuffer({ slice });
    assert.ok(bytes.length < 2000, `${bytes.length} bytes`);
    const loaded = loadFromBuffer(bytes) as Record<string, Tensor>;
    assert.deepEqual(loaded.slice!.toArray(), [500, 501, 502]);
    disposeAll(loaded);
    big.dispose();
    slice.dispose();
  });

  test("save is atomic: no temporary file is left, and a failed save leaves the old file alone", () => {
    const path = file("atomic.pt");
    save({ step: 1 }, path);
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith("atomic.pt.tmp")),
      [],
    );
    assert.throws(
      () => save({ step: 2, when: new Date() } as unknown as Saveable, path),
      (error: Error) => error instanceof TypeError && /cannot save a Date at value\.when/.test(error.message),
    );
    assert.deepEqual(load(path), { step: 1 });
    assert.deepEqual(
      readdirSync(dir).filter((name) => name.startsWith("atomic.pt.tmp")),
      [],
    );
  });

  test("unsupported values are refused with the path to them", () => {
    const cases: [unknown, RegExp][] = [
      [{ f: () => 1 }, /cannot save a function at value\.f/],
      [{ s: new Set([1]) }, /cannot save a Set at value\.s/],
      [[1, { x: Symbol("s") }], /cannot save a symbol at value\[1\]\.x/],
      [new Map([[true, 1]]), /cannot save a Map key of type boolean at value: Map keys must be strings or numbers/],
      [{ a: new Float32Array(2) }, /cannot save a Float32Array at value\.a/],
    ];
    for (const [value, pattern] of cases) assert.throws(() => saveToBuffer(value as Saveable), pattern);
    const disposed = ones([2]);
    disposed.dispose();
    assert.throws(() => saveToBuffer({ w: disposed }), /tensor at value\.w has been disposed/);
  });

  test("undefined is saved as None and cyclic containers survive", () => {
    const cyclic: { [key: string]: Saveable } = { name: "loop" };
    cyclic.self = cyclic;
    const loaded = loadFromBuffer(saveToBuffer({ a: undefined, cyclic } as unknown as Saveable)) as Record<
      string,
      Saveable
    >;
    assert.equal(loaded.a, null);
    const back = loaded.cyclic as Record<string, Saveable>;
    assert.equal(back.self, back);
  });
});

describe("bad input fails with a clear, catchable error", () => {
  const baseline = (): number => liveTensors();

  test("missing file", () => {
    assert.throws(() => load(file("does-not-exist.pt")), /load: cannot open .*does-not-exist\.pt: no such file/);
  });

  test("not a zip file", () => {
    const path = file("text.pt");
    writeFileSync(path, "this is not a checkpoint, just some text that is long enough\n");
    assert.throws(() => load(path), /load: .*text\.pt: not a zip archive/);
    writeFileSync(path, "");
    assert.throws(() => load(path), /text\.pt: not a zip archive/);
  });

  test("truncated file", () => {
    const start = baseline();
    const weights = randn([64, 64]);
    const full = saveToBuffer({ w: weights, meta: "x" });
    weights.dispose();
    for (const length of [10, full.length >> 1, full.length - 1]) {
      const path = file(`truncated-${length}.pt`);
      writeFileSync(path, full.subarray(0, length));
      assert.throws(() => load(path), new RegExp(`truncated-${length}\\.pt: truncated`), `cut at ${length}`);
    }
    assert.equal(liveTensors(), start);
  });

  test("a corrupted tensor record fails its CRC check", () => {
    const bytes = Uint8Array.from(saveToBuffer({ w: ones([256]) }, { archiveName: "c" }));
    const zip = ZipReader.open(bufferSource(bytes), "x");
    const entry = zip.entries.get("c/data/0")!;
    const dataStart = bytes.indexOf(0x3f, entry.localHeaderOffset + 30); // 1.0f is 00 00 80 3f
    bytes[dataStart] = 0x40;
    assert.throws(() => loadFromBuffer(bytes, "corrupt.pt"), /corrupt\.pt: record 'c\/data\/0' is corrupt \(CRC-32/);
  });

  test("a zip without data.pkl", () => {
    const path = file("no-data.pt");
    python("no-data-pkl", path);
    assert.throws(() => load(path), /no-data\.pt: the zip archive has no data\.pkl record/);
  });

  test("a missing storage record, without leaking the tensors loaded before it", () => {
    const start = baseline();
    const source = file("two-tensors.pt");
    const path = file("missing-record.pt");
    const saved = { a: ones([3]), b: ones([4]) };
    save(saved, source);
    disposeAll(saved);
    python("drop-record", source, path, "data/1");
    assert.throws(() => load(path), /missing-record\.pt: storage record 'two-tensors\/data\/1' is missing/);
    assert.equal(liveTensors(), start);
  });

  test("a storage of an unsupported dtype", () => {
    const path = file("complex.pt");
    python("complex", path);
    assert.throws(() => load(path), /complex\.pt: tensor storage '0' has unsupported dtype torch\.ComplexFloatStorage/);
  });

  test("an integer tensor marked requires_grad (torch.load refuses it too) is an error naming the file", () => {
    const start = baseline();
    const path = file("int-requires-grad.pt");
    python("int-requires-grad", path);
    assert.throws(
      () => load(path),
      /int-requires-grad\.pt: a torch\.int64 tensor marked requires_grad \(only floating-point tensors can be\)/,
    );
    assert.equal(liveTensors(), start, "the tensors made before the error are freed");
  });

  test("a pickle that calls os.system is refused and nothing runs", () => {
    const start = baseline();
    const path = file("malicious.pt");
    const marker = file("pwned");
    python("malicious", path, marker);
    assert.throws(
      () => load(path),
      (error: Error) =>
        /malicious\.pt: refusing to load '(os|posix)\.system': only tensors and plain containers are allowed/.test(
          error.message,
        ),
    );
    assert.equal(existsSync(marker), false, "the payload did not run");
    assert.equal(liveTensors(), start, "the tensor loaded before the refusal was freed");
  });
});

describe("pickle and zip internals", () => {
  const noTensors = {
    rebuildTensor: (): never => assert.fail("no tensors expected"),
    setRequiresGrad: (): never => assert.fail("no tensors expected"),
  };
  const roundTrip = (value: unknown): unknown =>
    unpickle(pickle(value, { tensorRecord: () => undefined }), noTensors, "test");

  test("integers of every width round-trip, like Python's encode_long", () => {
    const values = [
      0,
      1,
      255,
      256,
      65535,
      65536,
      -1,
      -128,
      -129,
      2 ** 31 - 1,
      2 ** 31,
      -(2 ** 31),
      -(2 ** 31) - 1,
      2 ** 53 - 1,
    ];
    for (const v of values) assert.equal(roundTrip(v), v);
    for (const v of [2n ** 63n, -(2n ** 63n), 2n ** 64n, -(2n ** 64n) + 1n, 10n ** 700n, -(10n ** 700n)]) {
      assert.equal(roundTrip(v), v);
    }
    assert.deepEqual([...encodeLong(255n)], [0xff, 0x00]);
    assert.deepEqual([...encodeLong(-256n)], [0x00, 0xff]);
    assert.deepEqual([...encodeLong(-128n)], [0x80]);
    assert.deepEqual([...encodeLong(127n)], [0x7f]);
  });

  test("containers keep order and key types; long lists are batched", () => {
    const long = Array.from({ length: 2500 }, (_, i) => i);
    const value = {
      z: 1,
      a: [long, JSON.parse('{"__proto__": 2}') as Saveable],
      m: new Map<string | number, Saveable>([
        [2, "x"],
        [0.5, "y"],
      ]),
    };
    const back = roundTrip(value) as Record<string, Saveable>;
    assert.deepEqual(Object.keys(back), ["z", "a", "m"]);
    assert.deepEqual((back.a as Saveable[])[0], long);
    const protoKey = (back.a as Saveable[])[1] as Record<string, Saveable>;
    assert.equal(Object.getPrototypeOf(protoKey), Object.prototype, "a '__proto__' key is data");
    assert.equal(Object.getOwnPropertyDescriptor(protoKey, "__proto__")?.value, 2);
    assert.deepEqual(
      [...(back.m as Map<number, Saveable>).entries()],
      [
        [2, "x"],
        [0.5, "y"],
      ],
    );
  });

  test("the unpickler refuses unknown globals and opcodes and truncation", () => {
    const globalPickle = Buffer.from("\x80\x02cos\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.", "latin1");
    assert.throws(() => unpickle(globalPickle, noTensors, "evil.pkl"), /evil\.pkl: refusing to load 'os\.system'/);
    const stackGlobal = Buffer.from("\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", "latin1");
    assert.throws(() => unpickle(stackGlobal, noTensors, "p4.pkl"), /refusing to load 'builtins\.eval'/);
    assert.throws(
      () => unpickle(Buffer.from("\x80\x02i__main__\nX\n.", "latin1"), noTensors, "t"),
      /unsupported opcode 0x69/,
    );
    assert.throws(
      () => unpickle(Buffer.from("\x80\x02X\xff\x00\x00\x00ab", "latin1"), noTensors, "t"),
      /truncated pickle/,
    );
    assert.throws(() => unpickle(Buffer.from("\x80\x02", "latin1"), noTensors, "t"), /truncated pickle/);
    assert.throws(() => unpickle(Buffer.from("\x80\x02a.", "latin1"), noTensors, "t"), /stack underflow/);
  });

  test(
    "the portable CRC-32 agrees with zlib's",
    { skip: typeof zlib.crc32 !== "function" && "zlib.crc32 needs Node >= 20.15" },
    () => {
      for (const length of [0, 1, 7, 8, 9, 1000, 65537]) {
        const data = Uint8Array.from({ length }, (_, i) => (i * 7919 + length) & 0xff);
        assert.equal(crc32Portable(data), zlib.crc32(data) >>> 0, `length ${length}`);
        assert.equal(
          crc32Portable(data.subarray(length >> 1), crc32Portable(data.subarray(0, length >> 1))),
          zlib.crc32(data) >>> 0,
        );
      }
    },
  );

  test("the zip writer aligns data and the reader finds every record", () => {
    const sink = new MemorySink();
    const writer = new ZipWriter(sink);
    const records = new Map([
      ["r/a", Uint8Array.from([1, 2, 3])],
      ["r/bb", new Uint8Array(0)],
      ["r/ccc", Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff)],
    ]);
    for (const [name, data] of records) writer.add(name, data);
    writer.finish();
    const zip = ZipReader.open(bufferSource(sink.bytes()), "mem");
    for (const [name, data] of records) {
      assert.deepEqual(zip.read(name), data);
      const entry = zip.entries.get(name)!;
      const bytes = sink.bytes();
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      const start =
        entry.localHeaderOffset +
        30 +
        view.getUint16(entry.localHeaderOffset + 26, true) +
        view.getUint16(entry.localHeaderOffset + 28, true);
      assert.equal(start % 64, 0, `${name} data at ${start}`);
    }
    assert.throws(() => writer.add("late", new Uint8Array(1)), /after finish/);
  });
});
