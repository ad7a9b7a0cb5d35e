// The fuzz targets: each reader of files from outside, fed mutations of real files that Python
// wrote (test/py/file_safety.py seeds). A target returns normally or throws an error that names the
// file; anything else is a finding (see outcome() in worker.ts).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { openCifar10 } from "../../src/data/cifar.js";
import { readIdx } from "../../src/data/idx.js";
import { collectTensors } from "../../src/encoder/sources.js";
import { readNpy, readSafetensors } from "../../src/io/index.js";
import { loadFromBuffer } from "../../src/torch/index.js";
import { MemorySink, ZipReader, ZipWriter, bufferSource } from "../../src/torch/serialize/zip.js";

export interface FuzzTarget {
  readonly name: string;
  /** Seed files (names in the seeds folder). */
  readonly seeds: readonly string[];
  /** What of a seed file is mutated (default: all of it). */
  derive?(file: Uint8Array): Uint8Array;
  /** Reads `input`; `work` is a private scratch folder. Returns the label errors must name. */
  run(input: Uint8Array, work: string): string;
}

const writeInput = (work: string, name: string, input: Uint8Array): string => {
  const path = join(work, name);
  writeFileSync(path, input);
  return path;
};

/** The storage records of zip.pt, which the "pickle" target puts beside each mutated data.pkl. */
let zipRecords: [string, Uint8Array][] = [];

export const TARGETS: readonly FuzzTarget[] = [
  {
    // The pickle itself: inside a zip its CRC-32 stops almost every mutation before the unpickler.
    name: "pickle",
    seeds: ["zip.pt"],
    derive(file) {
      const zip = ZipReader.open(bufferSource(file), "zip.pt");
      zipRecords = [...zip.entries.keys()]
        .filter((name) => name !== "zip/data.pkl")
        .map((name) => [name.slice("zip/".length), zip.read(name)]);
      return zip.read("zip/data.pkl");
    },
    run(input) {
      const label = "fuzz-input.pt";
      const sink = new MemorySink();
      const writer = new ZipWriter(sink);
      writer.add("archive/data.pkl", input);
      for (const [name, data] of zipRecords) writer.add(`archive/${name}`, data);
      writer.finish();
      const value = loadFromBuffer(sink.bytes(), label);
      for (const tensor of collectTensors(value, label)) tensor.dispose();
      return label;
    },
  },
  {
    name: "checkpoint",
    seeds: ["zip.pt", "deflated.pt", "legacy.pt"],
    run(input) {
      const label = "fuzz-input.pt";
      const value = loadFromBuffer(input, label);
      for (const tensor of collectTensors(value, label)) tensor.dispose();
      return label;
    },
  },
  {
    name: "safetensors",
    seeds: ["tensors.safetensors"],
    run(input, work) {
      const path = writeInput(work, "input.safetensors", input);
      for (const tensor of readSafetensors(path).tensors.values()) tensor.dispose();
      return path;
    },
  },
  {
    name: "npy",
    seeds: ["array.npy", "fortran.npy"],
    run(input, work) {
      const path = writeInput(work, "input.npy", input);
      readNpy(path).dispose();
      return path;
    },
  },
  {
    name: "idx",
    seeds: ["images-idx3-ubyte.gz", "labels-idx1-ubyte"],
    run(input, work) {
      const path = writeInput(work, "input-idx-ubyte", input);
      readIdx(path);
      return path;
    },
  },
  {
    name: "cifar",
    seeds: ["test_batch.bin"],
    run(input, work) {
      const folder = join(work, "cifar-10-batches-bin");
      mkdirSync(folder, { recursive: true });
      const path = writeInput(folder, "test_batch.bin", input);
      openCifar10({ dir: work, split: "test" }).dispose();
      return path;
    },
  },
];
