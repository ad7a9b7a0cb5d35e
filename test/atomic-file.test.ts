// The one atomic writer (src/util/atomic-file.ts): the destination holds its previous content or
// the whole new content, never a part; no temporary file outlives a write, failed or not; errors
// name the caller and the file. And it is the only one: no other module in src/ renames files.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { AtomicFile, writeFileAtomic, writeJsonAtomic } from "../src/util/atomic-file.js";

const dir = mkdtempSync(join(tmpdir(), "moco-atomic-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Every entry of `dir` whose name starts with `prefix` (the file and any temporary beside it). */
const entries = (prefix: string): string[] => readdirSync(dir).filter((name) => name.startsWith(prefix));

describe("writeFileAtomic", () => {
  test("removes what a killed writer of the same path left, and only that", () => {
    const path = join(dir, "killed.pth.tar");
    // A finished child's pid names a process that no longer runs.
    const gone = spawnSync(process.execPath, ["-e", ""]).pid;
    writeFileSync(`${path}.tmp-${gone}-0`, "half a checkpoint");
    writeFileSync(`${path}.tmp-1-0`, "init's, alive"); // pid 1 always runs: it may be writing now
    writeFileAtomic(path, "whole", "test");
    assert.deepEqual(entries("killed.pth.tar"), ["killed.pth.tar", "killed.pth.tar.tmp-1-0"]);
    rmSync(`${path}.tmp-1-0`);
  });

  test("writes text and bytes, replaces the previous content, leaves no temporary file", () => {
    const path = join(dir, "a.json");
    writeJsonAtomic(path, { step: 1, loss: [0.5] }, "test");
    assert.equal(readFileSync(path, "utf8"), '{\n  "step": 1,\n  "loss": [\n    0.5\n  ]\n}\n');
    writeFileAtomic(path, "é\n", "test");
    assert.equal(readFileSync(path, "utf8"), "é\n");
    writeFileAtomic(path, Uint8Array.of(0, 255, 7), "test");
    assert.deepEqual([...readFileSync(path)], [0, 255, 7]);
    assert.deepEqual(entries("a.json"), ["a.json"]);
  });

  test("a failed rename leaves the destination as it was, removes the temporary, names the file", () => {
    // A non-empty directory at the destination: rename(2) fails after the data was written.
    const path = join(dir, "occupied");
    mkdirSync(path);
    writeFileSync(join(path, "inside"), "kept");
    assert.throws(
      () => writeFileAtomic(path, "new", "myOp"),
      (error: Error) => error.message.startsWith(`myOp: cannot write ${path}: `) && error.cause !== undefined,
    );
    assert.equal(readFileSync(join(path, "inside"), "utf8"), "kept");
    assert.deepEqual(entries("occupied"), ["occupied"]);
  });

  test("a missing folder is an error naming the file; nothing is created", () => {
    const path = join(dir, "no-such-folder", "x.json");
    assert.throws(
      () => writeJsonAtomic(path, {}, "myOp"),
      /^Error: myOp: cannot write .*no-such-folder\/x\.json: ENOENT/,
    );
    assert.deepEqual(entries("no-such-folder"), []);
  });
});

describe("AtomicFile", () => {
  test("streams, patches earlier bytes, and appears only at commit", () => {
    const path = join(dir, "stream.bin");
    writeFileSync(path, "old");
    const file = AtomicFile.create(path, "test");
    file.write(Uint8Array.of(0, 0));
    file.write(Uint8Array.of(3, 4, 5));
    file.writeAt(Uint8Array.of(1, 2), 0); // a header known only at the end
    assert.equal(readFileSync(path, "utf8"), "old", "the destination is untouched before commit");
    assert.equal(entries("stream.bin").length, 2, "the temporary sits beside the destination");
    file.commit();
    assert.deepEqual([...readFileSync(path)], [1, 2, 3, 4, 5]);
    assert.deepEqual(entries("stream.bin"), ["stream.bin"]);
    assert.equal(file.isOpen, false);
    assert.throws(() => file.write(Uint8Array.of(1)), /test: .*stream\.bin is already closed/);
  });

  test("abort after a partial write keeps the previous file and removes the temporary; it is idempotent", () => {
    const path = join(dir, "aborted.bin");
    writeFileSync(path, "previous");
    const file = AtomicFile.create(path, "test");
    file.write(new TextEncoder().encode("half of the new"));
    file.abort();
    file.abort();
    assert.equal(readFileSync(path, "utf8"), "previous");
    assert.deepEqual(entries("aborted.bin"), ["aborted.bin"]);
    assert.throws(() => file.commit(), /already closed/);
  });

  test("two writers of one path in one process do not share a temporary file", () => {
    const path = join(dir, "twice.bin");
    const first = AtomicFile.create(path, "test");
    const second = AtomicFile.create(path, "test");
    first.write(Uint8Array.of(1));
    second.write(Uint8Array.of(2, 2));
    first.commit();
    assert.deepEqual([...readFileSync(path)], [1]);
    second.commit();
    assert.deepEqual([...readFileSync(path)], [2, 2]);
    assert.deepEqual(entries("twice.bin"), ["twice.bin"]);
  });
});

describe("one atomic writer", () => {
  test("no module of src/ but src/util/atomic-file.ts renames files", () => {
    const root = join(dirname(fileURLToPath(import.meta.url)), "..");
    const offenders: string[] = [];
    const walk = (folder: string): void => {
      for (const entry of readdirSync(folder, { withFileTypes: true })) {
        const path = join(folder, entry.name);
        if (entry.isDirectory()) walk(path);
        else if (entry.name.endsWith(".ts") && /\brenameSync\b|\brename\(/.test(readFileSync(path, "utf8")))
          offenders.push(relative(root, path));
      }
    };
    walk(join(root, "src"));
    // onnx/graph.ts has a local helper named `rename` for value names, not files.
    assert.deepEqual(
      offenders.filter((f) => f !== "src/util/atomic-file.ts" && f !== "src/export/onnx/graph.ts"),
      [],
    );
  });
});
