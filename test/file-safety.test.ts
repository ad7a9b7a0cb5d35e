// Hostile files (issue #11): every walk over a loaded value is linear and refuses cycles, every
// decompression stops at the size its format declares, and the reader refuses what torch.load
// refuses (checked against Python's torch.load by this test itself). docs/file-safety.md states
// the rule these tests hold.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { deflateRawSync, gzipSync } from "node:zlib";

import { openImageFolder } from "../src/data/image-folder.js";
import { readIdx } from "../src/data/idx.js";
import { DatasetError } from "../src/data/dataset.js";
import { collectTensors, CyclicValueError, readEncoderStateDict } from "../src/encoder/sources.js";
import { load, loadFromBuffer, ones, liveTensors, type Saveable } from "../src/torch/index.js";
import { crc32 } from "../src/torch/serialize/crc32.js";
import { MAX_PICKLE_CONTAINERS } from "../src/torch/serialize/unpickler.js";
import { MemorySink, ZipReader, ZipWriter, bufferSource } from "../src/torch/serialize/zip.js";
import { pythonScript } from "./helpers/python-script.js";

const python = pythonScript("file_safety.py");
const dir = mkdtempSync(join(tmpdir(), "moco-file-safety-"));
after(() => rmSync(dir, { recursive: true, force: true }));
/** Files Python wrote: the fuzz seeds, ones.pt (torch.ones(3)), dup.pt. */
const seeds = join(dir, "seeds");
mkdirSync(seeds);
python("prepare", seeds);

/** Files whose torch.load verdict a test needs: written at load, judged by one Python run. */
const judged = new Map<string, { ok: boolean; error?: string }>();
function torchLoad(path: string): { ok: boolean; error?: string } {
  if (judged.size === 0) {
    const paths = [...fixtures.values()];
    const lines = python("verdict", ...paths)
      .trim()
      .split("\n");
    paths.forEach((p, i) => judged.set(p, JSON.parse(lines[i]!) as { ok: boolean; error?: string }));
  }
  const verdict = judged.get(path);
  assert.ok(verdict !== undefined, `no torch.load verdict for ${path}`);
  return verdict;
}

// --- pickle and archive builders ---------------------------------------------------------------

const bytes = (...parts: (string | Uint8Array | number[])[]): Uint8Array =>
  Buffer.concat(
    parts.map((p) => (typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p as Uint8Array | number[]))),
  );

/** A torch.save archive whose data.pkl is `pickle` (plus `records`), written by our zip writer. */
function checkpointWith(pickle: Uint8Array, records: [string, Uint8Array][] = []): Uint8Array {
  const sink = new MemorySink();
  const writer = new ZipWriter(sink);
  writer.add("archive/data.pkl", pickle);
  for (const [name, data] of records) writer.add(`archive/${name}`, data);
  writer.add("archive/version", bytes("3\n"));
  writer.finish();
  return sink.bytes();
}

/** A one-record zip whose record is deflated and whose directory declares `declared` bytes. */
function deflatedZip(name: string, data: Uint8Array, declared: number): Uint8Array {
  const compressed = deflateRawSync(data);
  const nameBytes = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(20, 4);
  local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc32(data), 14);
  local.writeUInt32LE(compressed.length, 18);
  local.writeUInt32LE(declared, 22);
  local.writeUInt16LE(nameBytes.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4);
  central.writeUInt16LE(20, 6);
  central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc32(data), 16);
  central.writeUInt32LE(compressed.length, 20);
  central.writeUInt32LE(declared, 24);
  central.writeUInt16LE(nameBytes.length, 28);
  const centralOffset = local.length + nameBytes.length + compressed.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + nameBytes.length, 12);
  end.writeUInt32LE(centralOffset, 16);
  return Buffer.concat([local, nameBytes, compressed, central, nameBytes, end]);
}

function writeFile(name: string, data: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

const u64 = (n: number): Uint8Array => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
};
const u32 = (n: number): Uint8Array => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const binunicode = (text: string): Uint8Array => bytes("X", u32(Buffer.byteLength(text)), Buffer.from(text));

/**
 * "Billion laughs": level i is a list holding level i-1 twice, through the memo. 60 levels: 2^60
 * paths to the innermost list, 61 lists in all.
 */
function laughs(levels: number): Uint8Array {
  const parts: Uint8Array[] = [bytes("\x80\x02}", binunicode("laughs"), "]q\x00")];
  for (let i = 1; i <= levels; i++) parts.push(bytes("0](h", [i - 1], "h", [i - 1], "eq", [i]));
  parts.push(bytes("s."));
  return bytes(...parts);
}

/** A tensor of size (3,): the data.pkl and storage of a file Python wrote. */
const ones3 = ZipReader.open(bufferSource(readFileSync(join(seeds, "ones.pt"))), "ones.pt");
const onesPickle = ones3.read("ones/data.pkl");
const onesRecords: [string, Uint8Array][] = [["data/0", ones3.read("ones/data/0")]];

/** ones.pt with its size tuple (3,) pickled as (3.0,). */
function floatSizePickle(): Uint8Array {
  const pickle = Buffer.from(onesPickle);
  const at = pickle.indexOf(Buffer.from("K\x03\x85", "latin1"));
  assert.ok(at > 0);
  const float3 = Buffer.alloc(9);
  float3.write("G", 0, "latin1");
  float3.writeDoubleBE(3, 1);
  return Buffer.concat([pickle.subarray(0, at), float3, pickle.subarray(at + 2)]);
}

const fixtures = new Map<string, string>([
  ["laughs", writeFile("laughs.pt", checkpointWith(laughs(60)))],
  ["dup", join(seeds, "dup.pt")],
  ["cycle", writeFile("cycle.pt", checkpointWith(bytes("\x80\x02]q\x00h\x00a.")))],
  ["utf8", writeFile("utf8.pt", checkpointWith(bytes("\x80\x02X", u32(2), [0xff, 0xfe], ".")))],
  ["bom", writeFile("bom.pt", checkpointWith(bytes("\x80\x02", binunicode("\ufeffé"), ".")))],
  ["frame", writeFile("frame.pt", checkpointWith(bytes("\x80\x04\x95", u64(64), "K\x01.")))],
  ["float-size", writeFile("float-size.pt", checkpointWith(floatSizePickle(), onesRecords))],
]);
const fixture = (name: string): string => fixtures.get(name)!;

// --- 1. walks over loaded values ---------------------------------------------------------------

describe("walks over a loaded value: linear, cycles refused with the file named", () => {
  it("a 60-level billion-laughs checkpoint is read and refused as no network within seconds", () => {
    const path = fixture("laughs");
    // In a child process with a time limit: before the fix this walk never ended.
    const script = [
      `import { readEncoderStateDict } from ${JSON.stringify(new URL("../src/encoder/sources.ts", import.meta.url).pathname)};`,
      `try { readEncoderStateDict(${JSON.stringify(path)}); console.log("read"); }`,
      `catch (e) { console.log(e.name + ": " + e.message); }`,
    ].join("\n");
    const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.signal, null, `the walk did not end within 60 s: ${run.stderr}`);
    assert.match(run.stdout, /CheckpointFormatError: .*laughs\.pt: no ResNet weights found/);
    assert.equal(torchLoad(path).ok, true); // torch.load reads it (Python shares the lists too)
  });

  it("collectTensors visits a shared list once and refuses a value that holds itself, naming the file", () => {
    const before = liveTensors();
    const t = ones([2]);
    let level: Saveable[] = [t];
    for (let i = 0; i < 64; i++) level = [level, level];
    assert.deepEqual(collectTensors(level, "shared.pt"), [t]);
    const cyclic: Saveable[] = [ones([1])];
    cyclic.push(cyclic);
    assert.throws(
      () => collectTensors({ a: cyclic }, "cyclic.pt"),
      (e: unknown) => e instanceof CyclicValueError && e.code === "ERR_CYCLIC_VALUE" && /cyclic\.pt/.test(e.message),
    );
    t.dispose();
    assert.equal(liveTensors(), before); // the cycle's tensors were freed
  });

  it("a pickle whose list holds itself loads as torch.load loads it; the walk refuses it, naming the file", () => {
    const path = fixture("cycle");
    assert.equal(torchLoad(path).ok, true);
    const value = load(path) as Saveable[];
    assert.equal(value[0], value);
    assert.throws(
      () => readEncoderStateDict(path),
      (e: unknown) => e instanceof CyclicValueError && /cycle\.pt: the loaded value holds itself/.test(e.message),
    );
  });

  it("containers nested 100 000 deep are refused with a message, not a stack overflow", () => {
    const n = 100_000;
    const path = writeFile("deep.pt", checkpointWith(bytes("\x80\x02", "]".repeat(n), "a".repeat(n - 1), ".")));
    assert.throws(() => load(path), /deep\.pt: containers nested deeper than 1000 levels/);
  });

  it("a pickle of millions of tiny lists is refused at the container limit, in bounded memory", () => {
    const n = MAX_PICKLE_CONTAINERS + 10;
    const pickle = bytes("\x80\x02]", "]a".repeat(n), ".");
    const path = writeFile("lists.pt", checkpointWith(pickle));
    assert.throws(() => load(path), /lists\.pt: the pickle creates more than 500000 lists/);
  });
});

// --- 2. decompression bounded by the declared size ---------------------------------------------

describe("decompression stops at the size the format declares", () => {
  it("a deflated record declaring 48 bytes that inflates to 64 MB is refused without inflating it", () => {
    const data = new Uint8Array(64 << 20);
    const zip = deflatedZip("archive/data.pkl", data, 48);
    const before = process.memoryUsage().arrayBuffers;
    assert.throws(
      () => loadFromBuffer(zip, "bomb.pt"),
      /bomb\.pt: record 'archive\/data\.pkl' inflates to more than the 48 bytes it declares/,
    );
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 << 20);
  });

  it("a record declaring more than deflate can produce from its size is refused before inflating", () => {
    const zip = deflatedZip("archive/data.pkl", new Uint8Array(100), 4_000_000_000);
    assert.throws(
      () => loadFromBuffer(zip, "claim.pt"),
      /claim\.pt: record 'archive\/data\.pkl' declares 4000000000 bytes/,
    );
  });

  it("a deflated checkpoint written by Python's zipfile still loads", () => {
    const value = load(join(seeds, "deflated.pt")) as Record<string, Saveable>;
    assert.equal(value["arch"], "resnet18");
    for (const t of collectTensors(value)) t.dispose();
  });

  it("a gzipped IDX file whose header says 200×28×28 but which inflates to 64 MB is refused at the header's size", () => {
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x803, 0);
    header.writeUInt32BE(200, 4);
    header.writeUInt32BE(28, 8);
    header.writeUInt32BE(28, 12);
    const path = writeFile("bomb-idx3-ubyte.gz", gzipSync(Buffer.concat([header, Buffer.alloc(64 << 20)])));
    assert.throws(
      () => readIdx(path),
      (e: unknown) =>
        e instanceof DatasetError &&
        e.code === "CORRUPT" &&
        /200×28×28 = 156800 bytes, the gzip data inflates to more/.test(e.message),
    );
  });

  it("a gzipped IDX header that claims more than its compressed size can hold is refused before inflating", () => {
    const header = Buffer.alloc(16);
    header.writeUInt32BE(0x803, 0);
    header.writeUInt32BE(4_000_000, 4);
    header.writeUInt32BE(28, 8);
    header.writeUInt32BE(28, 12);
    const path = writeFile("claim-idx3-ubyte.gz", gzipSync(Buffer.concat([header, Buffer.alloc(1000)])));
    assert.throws(
      () => readIdx(path),
      (e: unknown) => e instanceof DatasetError && e.code === "TRUNCATED" && /gzip data can hold/.test(e.message),
    );
  });
});

// --- 4. no parser differential with torch.load -------------------------------------------------

describe("refused as torch.load refuses", () => {
  it("an archive with two data.pkl records (torch.load reads the first; we refuse both readings)", () => {
    const path = fixture("dup");
    assert.equal(torchLoad(path).ok, true);
    assert.throws(() => load(path), /dup\.pt: corrupt archive \(two records named 'ones\/data\.pkl'\)/);
  });

  it("invalid UTF-8 in a pickle string (no U+FFFD)", () => {
    const path = fixture("utf8");
    assert.match(torchLoad(path).error ?? "", /UnicodeDecodeError/);
    assert.throws(() => load(path), /utf8\.pt: corrupt pickle at byte \d+: a string is not valid UTF-8/);
    // Valid UTF-8, a BOM included, still reads as Python reads it.
    const good = fixture("bom");
    assert.equal(torchLoad(good).ok, true);
    assert.equal(load(good), "\ufeffé");
  });

  it("a FRAME that reaches past the end of the data", () => {
    const path = fixture("frame");
    assert.match(torchLoad(path).error ?? "", /UnpicklingError/);
    assert.throws(() => load(path), /frame\.pt: truncated pickle \(a frame reaches past the end of the data\)/);
    const whole = writeFile("frame-ok.pt", checkpointWith(bytes("\x80\x04\x95", u64(3), "K\x01.")));
    assert.equal(load(whole), 1);
  });

  it("a tensor size of 3.0", () => {
    const path = fixture("float-size");
    assert.equal(torchLoad(path).ok, false);
    assert.throws(() => load(path), /float-size\.pt: _rebuild_tensor_v2: size must be a tuple of non-negative ints/);
    // The unpatched pickle loads, and floats elsewhere stay numbers.
    const t = load(writeFile("ones3.pt", checkpointWith(onesPickle, onesRecords)));
    assert.deepEqual((t as { shape: number[] }).shape, [3]);
    (t as { dispose(): void }).dispose();
    assert.equal(loadFromBuffer(checkpointWith(bytes("\x80\x02G", [0x40, 0x08, 0, 0, 0, 0, 0, 0], "."))), 3);
  });
});

// --- 6. smaller items --------------------------------------------------------------------------

describe("a class folder whose name is not UTF-8", () => {
  it("is named in a layout error, not reported as a missing folder", async () => {
    const root = join(dir, "folder");
    mkdirSync(join(root, "good"), { recursive: true });
    mkdirSync(Buffer.concat([Buffer.from(`${root}/bad-`), Buffer.from([0xe9])]));
    await assert.rejects(
      openImageFolder({ root, size: 8 }),
      (e: unknown) =>
        e instanceof DatasetError && e.code === "LAYOUT" && /"bad-\\xe9" .* not valid UTF-8/.test(e.message),
    );
  });
});
