// The budget of a file (docs/file-safety.md): reading a checkpoint or a dataset takes memory in
// proportion to the tensors and images it really holds, plus a stated constant, whatever the file
// claims. Measured as the peak resident memory (VmHWM) of a fresh process that reads one file.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";
import { deflateRawSync, gzipSync } from "node:zlib";

import { save, zeros } from "../src/torch/index.js";
import { crc32 } from "../src/torch/serialize/crc32.js";
import { MAX_PICKLE_CONTAINERS } from "../src/torch/serialize/unpickler.js";
import { MemorySink, ZipWriter } from "../src/torch/serialize/zip.js";

const PROBE = fileURLToPath(new URL("./helpers/budget-probe.ts", import.meta.url));
const MB = 2 ** 20;
/** The constant of the rule: what reading any file may take beyond its tensors' and images' bytes. */
const CONSTANT_MB = 192;

const dir = mkdtempSync(join(tmpdir(), "moco-budget-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function probe(kind: "checkpoint" | "idx", path: string): { peakMB: number; ms: number; error: string | null } {
  const run = spawnSync(process.execPath, ["--import", "tsx", PROBE, kind, path], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout.trim().split("\n").pop()!) as { peakMB: number; ms: number; error: string | null };
}

function checkpointWith(pickle: Uint8Array): Uint8Array {
  const sink = new MemorySink();
  const writer = new ZipWriter(sink);
  writer.add("archive/data.pkl", pickle);
  writer.add("archive/version", Buffer.from("3\n"));
  writer.finish();
  return sink.bytes();
}

function idxHeader(...shape: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header.writeUInt32BE(0x800 + shape.length, 0);
  shape.forEach((n, i) => header.writeUInt32BE(n, 4 + 4 * i));
  return header;
}

describe("what a file can cost", () => {
  it("a checkpoint of 64 MB of tensors: at most twice its tensors' bytes (file record + tensor)", () => {
    const path = join(dir, "t64.pt");
    const t = zeros([16, 1024, 1024]);
    save({ w: t }, path);
    t.dispose();
    const { peakMB, error } = probe("checkpoint", path);
    assert.equal(error, null);
    assert.ok(peakMB <= 2 * 64 + 32, `peak ${peakMB} MB`);
  });

  it("a pickle at the container limit (no tensors): within the constant", () => {
    const path = join(dir, "lists.pt");
    const n = MAX_PICKLE_CONTAINERS - 10;
    writeFileSync(path, checkpointWith(Buffer.from(`\x80\x02]${"]a".repeat(n)}.`, "latin1")));
    const { peakMB, error } = probe("checkpoint", path);
    assert.equal(error, null);
    assert.ok(peakMB <= CONSTANT_MB, `peak ${peakMB} MB`);
  });

  it("a 60-level billion-laughs pickle: within the constant, linear time", () => {
    const parts = ["\x80\x02}X\x01\x00\x00\x00a]q\x00"];
    for (let i = 1; i <= 60; i++)
      parts.push(`0](h${String.fromCharCode(i - 1)}h${String.fromCharCode(i - 1)}eq${String.fromCharCode(i)}`);
    parts.push("s.");
    const path = join(dir, "laughs.pt");
    writeFileSync(path, checkpointWith(Buffer.from(parts.join(""), "latin1")));
    const { peakMB, ms, error } = probe("checkpoint", path);
    assert.equal(error, null);
    assert.ok(peakMB <= 16 && ms < 5000, `peak ${peakMB} MB, ${ms} ms`);
  });

  it("a zip bomb (a 48-byte record that inflates to 256 MB): within the constant", () => {
    const data = new Uint8Array(256 * MB);
    const compressed = deflateRawSync(data);
    const name = Buffer.from("archive/data.pkl");
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(8, 8);
    local.writeUInt32LE(crc32(data), 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(48, 22);
    local.writeUInt16LE(name.length, 26);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(8, 10);
    central.writeUInt32LE(crc32(data), 16);
    central.writeUInt32LE(compressed.length, 20);
    central.writeUInt32LE(48, 24);
    central.writeUInt16LE(name.length, 28);
    const end = Buffer.alloc(22);
    end.writeUInt32LE(0x06054b50, 0);
    end.writeUInt16LE(1, 8);
    end.writeUInt16LE(1, 10);
    end.writeUInt32LE(central.length + name.length, 12);
    end.writeUInt32LE(local.length + name.length + compressed.length, 16);
    const path = join(dir, "bomb.pt");
    writeFileSync(path, Buffer.concat([local, name, compressed, central, name, end]));
    const { peakMB, error } = probe("checkpoint", path);
    assert.match(error ?? "", /inflates to more than the 48 bytes it declares/);
    assert.ok(peakMB <= 16, `peak ${peakMB} MB`);
  });

  it("a gzip bomb of IDX images (header 200×28×28, 256 MB inflated): the header's bytes at most", () => {
    const path = join(dir, "bomb-idx3-ubyte.gz");
    writeFileSync(path, gzipSync(Buffer.concat([idxHeader(200, 28, 28), Buffer.alloc(256 * MB)])));
    const { peakMB, error } = probe("idx", path);
    assert.match(error ?? "", /inflates to more/);
    assert.ok(peakMB <= 16, `peak ${peakMB} MB`);
  });

  it("a real gzipped IDX file: its images' bytes and the constant", () => {
    const path = join(dir, "real-idx3-ubyte.gz");
    writeFileSync(path, gzipSync(Buffer.concat([idxHeader(2000, 28, 28), Buffer.alloc(2000 * 784, 7)])));
    const { peakMB, error } = probe("idx", path);
    assert.equal(error, null);
    assert.ok(peakMB <= (2000 * 784) / MB + 16, `peak ${peakMB} MB`);
  });
});
