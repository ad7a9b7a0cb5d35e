// In-memory datasets: IDX (the real Fashion-MNIST from Debian's dataset-fashion-mnist), CIFAR-10/100
// binary files (synthetic files written here in the format and read back exactly), and their
// errors (truncated, corrupt, missing files name the file).
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gunzipSync, gzipSync } from "node:zlib";

import {
  CIFAR100_CLASSES,
  CIFAR10_CLASSES,
  DatasetError,
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  loadMnistLayout,
  openCifar10,
  openCifar100,
  openDataset,
  openFashionMnist,
  openMnist,
  readIdx,
  type TensorImageDataset,
} from "../src/data/index.js";
import { bincount, liveTensors, scope } from "../src/torch/index.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "moco-data-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Asserts a DatasetError with this code whose message names `path`. */
function assertDatasetError(fn: () => unknown, code: string, path: string, pattern?: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(path), `message ${JSON.stringify(error.message)} does not name ${path}`);
    if (pattern !== undefined) assert.match(error.message, pattern);
    return true;
  });
}

describe("Fashion-MNIST (Debian's dataset-fashion-mnist)", () => {
  let train: TensorImageDataset;
  let test: TensorImageDataset;
  before(() => {
    train = openFashionMnist({ split: "train" });
    test = openFashionMnist({ split: "test" });
  });
  after(() => {
    train.dispose();
    test.dispose();
  });

  it("train: 60 000 uint8 images [N, 1, 28, 28], labels 0..9, 6 000 per class", () => {
    assert.equal(train.length, 60000);
    assert.deepEqual(train.images.shape, [60000, 1, 28, 28]);
    assert.equal(train.images.dtype, "uint8");
    assert.equal(train.channels, 1);
    assert.equal(train.numClasses, 10);
    assert.deepEqual(train.classNames, FASHION_MNIST_CLASSES);
    const labels = train.labels;
    assert.ok(labels !== null && labels.dtype === "int64");
    scope(() => {
      assert.deepEqual(bincount(labels).toArray(), new Array(10).fill(6000));
      // Real images: not blank, the full 0..255 range, mean pixel about 0.286 (the stats we ship).
      const mean = train.images.float().mean().item() / 255;
      assert.ok(Math.abs(mean - train.stats.mean[0]!) < 0.001, `mean ${mean}`);
      assert.equal(train.images.max().item(), 255);
    });
  });

  it("test: 10 000 images, labels 0..9", () => {
    assert.equal(test.length, 10000);
    assert.deepEqual(test.images.shape, [10000, 1, 28, 28]);
    scope(() => {
      assert.deepEqual(bincount(test.labels!).toArray(), new Array(10).fill(1000));
    });
  });

  it("batch and batchLabels gather by index; subset(n) is the first n images", () => {
    scope(() => {
      const b = train.batch([5, 0, 59999]);
      assert.deepEqual(b.shape, [3, 1, 28, 28]);
      assert.ok(b.select(0, 1).equal(train.images.select(0, 0)));
      assert.ok(b.select(0, 2).equal(train.images.select(0, 59999)));
      assert.deepEqual(train.batchLabels([5, 0])!.toArray(), [
        train.labels!.select(0, 5).item(),
        train.labels!.select(0, 0).item(),
      ]);
      const sub = train.subset(1000);
      assert.equal(sub.length, 1000);
      assert.ok(sub.images.equal(train.images.narrow(0, 0, 1000)));
      assert.throws(() => train.batch([60000]), /out of range/);
      assert.throws(() => train.subset(0), /subset/);
      sub.dispose();
    });
  });

  it("loadMnistLayout still returns [N, 28, 28] images and int64 labels", () => {
    const before = liveTensors();
    const { images, labels } = loadMnistLayout(FASHION_MNIST_DIR, "test");
    assert.deepEqual(images.shape, [10000, 28, 28]);
    assert.equal(labels.dtype, "int64");
    images.dispose();
    labels.dispose();
    assert.equal(liveTensors(), before);
  });
});

describe("IDX files: raw or gzipped, errors name the file", () => {
  it("reads an un-gzipped copy (MNIST layout, openMnist) the same as the .gz", () => {
    const raw = join(dir, "raw-mnist");
    mkdirSync(raw);
    for (const stem of ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]) {
      writeFileSync(join(raw, stem), gunzipSync(readFileSync(join(FASHION_MNIST_DIR, `${stem}.gz`))));
    }
    const a = openMnist({ dir: raw, split: "test" });
    const b = openFashionMnist({ split: "test" });
    assert.ok(a.images.equal(b.images) && a.labels!.equal(b.labels!));
    assert.equal(a.name, "mnist test");
    a.dispose();
    b.dispose();
  });

  it("a truncated gzip, a truncated raw file, trailing data, a bad magic number, a missing file", () => {
    const gz = readFileSync(join(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"));
    const truncatedGz = join(dir, "truncated.gz");
    writeFileSync(truncatedGz, gz.subarray(0, gz.length - 100));
    assertDatasetError(() => readIdx(truncatedGz), "TRUNCATED", truncatedGz, /gzip/);

    const labels = gunzipSync(gz);
    const truncatedRaw = join(dir, "truncated-labels");
    writeFileSync(truncatedRaw, labels.subarray(0, labels.length - 1));
    assertDatasetError(() => readIdx(truncatedRaw), "TRUNCATED", truncatedRaw, /10000 bytes, the file has 9999/);
    const header = join(dir, "short-header");
    writeFileSync(header, labels.subarray(0, 6));
    assertDatasetError(() => readIdx(header), "TRUNCATED", header, /header/);

    const trailing = join(dir, "trailing.gz");
    writeFileSync(trailing, gzipSync(Buffer.concat([labels, Buffer.from([1, 2])])));
    assertDatasetError(() => readIdx(trailing), "CORRUPT", trailing, /trailing data/);

    const magic = join(dir, "not-idx");
    writeFileSync(magic, Buffer.from("hello world, not an IDX file"));
    assertDatasetError(() => readIdx(magic), "CORRUPT", magic, /magic/);

    const missing = join(dir, "nope", "t10k-images-idx3-ubyte");
    assertDatasetError(() => readIdx(missing), "NOT_FOUND", missing);
    assertDatasetError(
      () => openMnist({ dir: join(dir, "nope"), split: "test" }),
      "NOT_FOUND",
      join(dir, "nope", "t10k-images-idx3-ubyte"),
    );
  });

  it("a truncated images file in a dataset folder: the error names that file", () => {
    const folder = join(dir, "broken-mnist");
    mkdirSync(folder);
    copyFileSync(join(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"), join(folder, "t10k-labels-idx1-ubyte.gz"));
    const images = gunzipSync(readFileSync(join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")));
    const path = join(folder, "t10k-images-idx3-ubyte");
    writeFileSync(path, images.subarray(0, 16 + 784 * 100));
    const before = liveTensors();
    assertDatasetError(() => openMnist({ dir: folder, split: "test" }), "TRUNCATED", path, /truncated/);
    assert.equal(liveTensors(), before);
  });
});

/** A CIFAR binary file: records of label bytes + 3072 pixel bytes, with known contents. */
function cifarRecords(
  n: number,
  labelBytes: number,
  seed: number,
  numClasses: number,
): { data: Buffer; pixels: Buffer; labels: number[] } {
  const record = labelBytes + 3072;
  const data = Buffer.alloc(n * record);
  const pixels = Buffer.alloc(n * 3072);
  const labels: number[] = [];
  let state = seed;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  for (let i = 0; i < n; i++) {
    const coarse = next() % 20;
    const label = (i * 7 + seed) % numClasses;
    labels.push(label);
    if (labelBytes === 2) data[i * record] = coarse;
    data[i * record + labelBytes - 1] = label;
    for (let k = 0; k < 3072; k++) {
      const v = next();
      data[i * record + labelBytes + k] = v;
      pixels[i * 3072 + k] = v;
    }
  }
  return { data, pixels, labels };
}

describe("CIFAR binary files (synthetic, written here in the format)", () => {
  it("CIFAR-10: data_batch_1..5 (train) and test_batch (test) read back exactly, from the folder or its parent", () => {
    const root = join(dir, "c10");
    const folder = join(root, "cifar-10-batches-bin");
    mkdirSync(folder, { recursive: true });
    const train = [1, 2, 3, 4, 5].map((i) => cifarRecords(3 + i, 1, i, 10));
    train.forEach((r, i) => writeFileSync(join(folder, `data_batch_${i + 1}.bin`), r.data));
    const test = cifarRecords(4, 1, 99, 10);
    writeFileSync(join(folder, "test_batch.bin"), test.data);
    writeFileSync(join(folder, "batches.meta.txt"), CIFAR10_CLASSES.join("\n") + "\n\n");

    for (const where of [root, folder]) {
      const ds = openCifar10({ dir: where, split: "train" });
      assert.equal(ds.length, 4 + 5 + 6 + 7 + 8);
      assert.deepEqual(ds.images.shape, [30, 3, 32, 32]);
      assert.deepEqual(Buffer.from(ds.images.toBytes()), Buffer.concat(train.map((r) => r.pixels)));
      assert.deepEqual(
        ds.labels!.toArray(),
        train.flatMap((r) => r.labels),
      );
      assert.deepEqual(ds.classNames, CIFAR10_CLASSES);
      assert.equal(ds.numClasses, 10);
      ds.dispose();
    }
    const t = openCifar10({ dir: root, split: "test" });
    assert.deepEqual(Buffer.from(t.images.toBytes()), test.pixels);
    assert.deepEqual(t.labels!.toArray(), test.labels);
    // Plane layout: channel 0 of image 0 is the first 1024 pixel bytes, row-major.
    scope(() => assert.equal(t.images.select(0, 0).select(0, 0).select(0, 1).select(0, 2).item(), test.pixels[32 + 2]));
    t.dispose();
  });

  it("CIFAR-100: train.bin / test.bin with coarse + fine labels; the fine label is used", async () => {
    const folder = join(dir, "cifar-100-binary");
    mkdirSync(folder);
    const train = cifarRecords(9, 2, 5, 100);
    const test = cifarRecords(3, 2, 6, 100);
    writeFileSync(join(folder, "train.bin"), train.data);
    writeFileSync(join(folder, "test.bin"), test.data);
    const ds = await openDataset({ kind: "cifar100", root: dir, split: "train" });
    assert.equal(ds.length, 9);
    assert.deepEqual(ds.labels!.toArray(), train.labels);
    assert.equal(ds.numClasses, 100);
    assert.equal(CIFAR100_CLASSES.length, 100);
    assert.equal(new Set(CIFAR100_CLASSES).size, 100);
    assert.deepEqual(Buffer.from((ds as TensorImageDataset).images.toBytes()), train.pixels);
    ds.dispose();
    const t = openCifar100({ dir: folder, split: "test" });
    assert.deepEqual(t.labels!.toArray(), test.labels);
    t.dispose();
  });

  it("a truncated file, an impossible label, a missing batch file: errors name the file", () => {
    const folder = join(dir, "c10-broken");
    mkdirSync(folder);
    const good = cifarRecords(2, 1, 1, 10).data;
    for (let i = 1; i <= 5; i++) writeFileSync(join(folder, `data_batch_${i}.bin`), good);
    const truncated = join(folder, "data_batch_3.bin");
    writeFileSync(truncated, good.subarray(0, good.length - 10));
    assertDatasetError(() => openCifar10({ dir: folder }), "TRUNCATED", truncated, /3073-byte record/);

    writeFileSync(truncated, good);
    const badLabel = Buffer.from(good);
    badLabel[3073] = 10;
    const labelPath = join(folder, "data_batch_5.bin");
    writeFileSync(labelPath, badLabel);
    assertDatasetError(() => openCifar10({ dir: folder }), "CORRUPT", labelPath, /record 1 has label 10/);

    assertDatasetError(() => openCifar10({ dir: folder, split: "test" }), "NOT_FOUND", join(folder, "test_batch.bin"));
    assertDatasetError(() => openCifar10({ dir: join(dir, "absent") }), "NOT_FOUND", join(dir, "absent"));
    const empty = join(folder, "test_batch.bin");
    writeFileSync(empty, Buffer.alloc(0));
    assertDatasetError(() => openCifar10({ dir: folder, split: "test" }), "TRUNCATED", empty);
  });
});
