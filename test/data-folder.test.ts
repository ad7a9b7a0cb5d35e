// Image folders decoded with sharp: images generated here with sharp (JPEG, PNG, WebP) in a temp
// folder; class sub-folders → labels, a flat folder → unlabeled; the working size (shorter side
// resized, centre square kept); bad images, empty and missing folders give errors naming them;
// skipBadImages leaves bad images out and reports them; the loader prefetches folder batches.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import sharp, { type Sharp } from "sharp";

import { DataLoader, DatasetError, IMAGENET_STATS, openDataset, openImageFolder } from "../src/data/index.js";
import { liveTensors, scope, type Tensor } from "../src/torch/index.js";

let root: string;

function solid(width: number, height: number, rgb: [number, number, number]): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });
}

/** Raw RGB bytes: a deterministic pattern. */
function pattern(width: number, height: number, channels = 3): Buffer {
  const data = Buffer.alloc(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + (i >> 5) * 11) & 0xff;
  return data;
}

async function write(path: string, image: Sharp): Promise<void> {
  mkdirSync(join(path, ".."), { recursive: true });
  await image.toFile(path);
}

async function expectDatasetError(promise: Promise<unknown>, code: string, path: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof DatasetError, `expected a DatasetError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    assert.ok(error.message.includes(path), `message ${JSON.stringify(error.message)} does not name ${path}`);
    return true;
  });
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), "moco-folder-"));
  const labeled = join(root, "labeled");
  await write(join(labeled, "cat", "a.jpg"), solid(40, 30, [200, 30, 30]).jpeg({ quality: 95 }));
  await write(
    join(labeled, "cat", "b.png"),
    sharp(pattern(32, 32), { raw: { width: 32, height: 32, channels: 3 } }).png(),
  );
  await write(join(labeled, "cat", "deeper", "c.webp"), solid(50, 64, [10, 200, 10]).webp({ lossless: true }));
  await write(
    join(labeled, "dog", "d.PNG"),
    sharp(pattern(20, 20, 1), { raw: { width: 20, height: 20, channels: 1 } }).png(),
  );
  await write(join(labeled, "dog", "e.webp"), solid(33, 33, [1, 2, 250]).webp({ quality: 90 }));
  writeFileSync(join(labeled, "dog", "notes.txt"), "not an image");
  await write(join(labeled, ".hidden", "x.png"), solid(8, 8, [0, 0, 0]).png());

  const flat = join(root, "flat");
  // 60×30: left third red, middle green, right third blue; the centre 30×30 keeps columns 15..44.
  const stripes = Buffer.alloc(60 * 30 * 3);
  for (let y = 0; y < 30; y++) {
    for (let x = 0; x < 60; x++) stripes[(y * 60 + x) * 3 + Math.floor(x / 20)] = 255;
  }
  await write(join(flat, "stripes.png"), sharp(stripes, { raw: { width: 60, height: 30, channels: 3 } }).png());
  await write(join(flat, "y.jpg"), solid(30, 30, [128, 128, 128]).jpeg());
  await write(join(flat, "z.webp"), solid(45, 30, [90, 60, 30]).webp());

  // A folder with two bad images among good ones.
  const bad = join(root, "bad", "things");
  await write(join(bad, "good1.png"), solid(16, 16, [10, 20, 30]).png());
  await write(join(bad, "good2.jpg"), solid(16, 16, [40, 50, 60]).jpeg());
  const jpeg = await solid(64, 64, [1, 2, 3]).jpeg().toBuffer();
  writeFileSync(join(bad, "truncated.jpg"), jpeg.subarray(0, Math.floor(jpeg.length / 2)));
  writeFileSync(join(bad, "garbage.png"), Buffer.from("this is not a PNG at all".repeat(20)));

  mkdirSync(join(root, "empty"));
  mkdirSync(join(root, "empty-class", "a"), { recursive: true });
  mkdirSync(join(root, "empty-class", "b"), { recursive: true });
  await write(join(root, "empty-class", "a", "one.png"), solid(8, 8, [0, 0, 0]).png());
  await write(join(root, "mixed", "top.png"), solid(8, 8, [0, 0, 0]).png());
  await write(join(root, "mixed", "cls", "inner.png"), solid(8, 8, [0, 0, 0]).png());

  for (const [split, n] of [
    ["train", 3],
    ["val", 2],
  ] as const) {
    for (let i = 0; i < n; i++)
      await write(join(root, "splits", split, i % 2 ? "b" : "a", `${i}.png`), solid(12, 12, [i, i, i]).png());
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

function pixel(t: Tensor, b: number, y: number, x: number): number[] {
  return scope(() => t.select(0, b).select(1, y).select(1, x).toArray());
}

describe("image folders (sharp)", () => {
  it("class sub-folders give labels (sorted class names, nested files, any extension case; other files and hidden folders ignored)", async () => {
    const ds = await openImageFolder({ root: join(root, "labeled"), size: 32 });
    assert.deepEqual(ds.classNames, ["cat", "dog"]);
    assert.equal(ds.numClasses, 2);
    assert.deepEqual(
      ds.files.map((f) => f.slice(join(root, "labeled").length + 1)),
      ["cat/a.jpg", "cat/b.png", "cat/deeper/c.webp", "dog/d.PNG", "dog/e.webp"],
    );
    assert.deepEqual(ds.labels!.toArray(), [0, 0, 0, 1, 1]);
    assert.equal(ds.inMemory, false);
    assert.deepEqual(ds.stats, IMAGENET_STATS);
    const batch = await ds.batch([0, 1, 2, 3, 4]);
    assert.deepEqual(batch.shape, [5, 3, 32, 32]);
    assert.equal(batch.dtype, "uint8");
    // JPEG: close to the solid colour; lossless PNG at the working size: the exact bytes (HWC → CHW).
    const [r, g, b] = pixel(batch, 0, 10, 10) as [number, number, number];
    assert.ok(Math.abs(r - 200) <= 3 && Math.abs(g - 30) <= 3 && Math.abs(b - 30) <= 3, `${r} ${g} ${b}`);
    const png = scope(() => batch.select(0, 1).permute(1, 2, 0).contiguous().toBytes());
    assert.deepEqual(Buffer.from(png), pattern(32, 32));
    assert.deepEqual(pixel(batch, 2, 5, 5), [10, 200, 10]); // lossless WebP
    // A gray PNG comes out as three equal channels.
    const [gr, gg, gb] = pixel(batch, 3, 7, 3) as [number, number, number];
    assert.ok(gr === gg && gg === gb);
    batch.dispose();
    ds.dispose();
  });

  it("a flat folder is unlabeled; the working size keeps the centre square of the resized image", async () => {
    const ds = await openImageFolder({ root: join(root, "flat"), size: 30 });
    assert.equal(ds.labels, null);
    assert.equal(ds.numClasses, 0);
    assert.equal(ds.length, 3);
    const batch = await ds.batch([0]);
    // Columns 15..44 of the 60-wide stripes: red 15..19, green 20..39, blue 40..44.
    assert.deepEqual(pixel(batch, 0, 15, 0), [255, 0, 0]);
    assert.deepEqual(pixel(batch, 0, 15, 4), [255, 0, 0]);
    assert.deepEqual(pixel(batch, 0, 15, 5), [0, 255, 0]);
    assert.deepEqual(pixel(batch, 0, 15, 24), [0, 255, 0]);
    assert.deepEqual(pixel(batch, 0, 15, 25), [0, 0, 255]);
    assert.deepEqual(pixel(batch, 0, 15, 29), [0, 0, 255]);
    batch.dispose();
    const small = await ds.subset(2).batch([0, 1]);
    assert.deepEqual(small.shape, [2, 3, 30, 30]);
    small.dispose();
    assert.throws(() => ds.subset(4), /subset/);
    ds.dispose();
  });

  it("channels: 1 decodes to gray [B, 1, S, S]", async () => {
    const ds = await openImageFolder({ root: join(root, "flat"), size: 16, channels: 1 });
    const batch = await ds.batch([1]);
    assert.deepEqual(batch.shape, [1, 1, 16, 16]);
    const v = scope(() => batch.float().mean().item());
    assert.ok(Math.abs(v - 128) <= 2, `gray ${v}`);
    assert.deepEqual(ds.stats.mean.length, 1);
    batch.dispose();
    ds.dispose();
  });

  it("train and test splits: ROOT/train and ROOT/val", async () => {
    const train = await openDataset({
      kind: "folder",
      root: join(root, "splits"),
      split: "train",
      folder: { size: 12 },
    });
    const test = await openImageFolder({ root: join(root, "splits"), split: "test", size: 12 });
    assert.equal(train.length, 3);
    assert.equal(test.length, 2);
    assert.deepEqual(test.classNames, ["a", "b"]);
    train.dispose();
    test.dispose();
    await expectDatasetError(
      openImageFolder({ root: join(root, "flat"), split: "train" }),
      "NOT_FOUND",
      join(root, "flat", "train"),
    );
  });

  it("a corrupt or truncated image makes the batch fail with an error naming the file", async () => {
    const ds = await openImageFolder({ root: join(root, "bad"), size: 16 });
    assert.equal(ds.length, 4);
    const garbage = ds.files.findIndex((f) => f.endsWith("garbage.png"));
    const truncated = ds.files.findIndex((f) => f.endsWith("truncated.jpg"));
    const before = liveTensors();
    await expectDatasetError(ds.batch([garbage]), "CORRUPT", join(root, "bad", "things", "garbage.png"));
    await expectDatasetError(ds.batch([truncated]), "CORRUPT", join(root, "bad", "things", "truncated.jpg"));
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("skipBadImages leaves the bad images out and reports them", async () => {
    const seen: string[] = [];
    const ds = await openImageFolder({
      root: join(root, "bad"),
      size: 16,
      skipBadImages: true,
      onSkip: (path) => seen.push(path),
    });
    assert.equal(ds.length, 2);
    assert.equal(ds.skipped.length, 2);
    assert.deepEqual(
      ds.skipped.map((s) => s.path),
      [join(root, "bad", "things", "garbage.png"), join(root, "bad", "things", "truncated.jpg")],
    );
    assert.deepEqual(
      seen,
      ds.skipped.map((s) => s.path),
    );
    assert.ok(ds.skipped.every((s) => s.reason.length > 0));
    assert.deepEqual(ds.labels!.toArray(), [0, 0]);
    const batch = await ds.batch([0, 1]);
    assert.deepEqual(batch.shape, [2, 3, 16, 16]);
    batch.dispose();
    ds.dispose();
  });

  it("an empty folder, an empty class folder, a missing folder, mixed layouts: errors name the folder", async () => {
    await expectDatasetError(openImageFolder({ root: join(root, "empty") }), "EMPTY", join(root, "empty"));
    await expectDatasetError(
      openImageFolder({ root: join(root, "empty-class") }),
      "EMPTY",
      join(root, "empty-class", "b"),
    );
    await expectDatasetError(openImageFolder({ root: join(root, "missing") }), "NOT_FOUND", join(root, "missing"));
    await expectDatasetError(openImageFolder({ root: join(root, "mixed") }), "LAYOUT", join(root, "mixed"));
    const file = join(root, "labeled", "dog", "notes.txt");
    await expectDatasetError(openImageFolder({ root: file }), "LAYOUT", file);
    assert.ok(readFileSync(file, "utf8").length > 0);
  });

  it("the loader reads folder batches ahead (prefetch) in a seeded order", async () => {
    const ds = await openImageFolder({ root: join(root, "labeled"), size: 24 });
    const loader = new DataLoader(ds, { batchSize: 2, seed: 3, prefetch: 2 });
    assert.equal(loader.batchesPerEpoch, 2);
    const before = liveTensors();
    const seen: number[] = [];
    for await (const batch of loader.batches(0)) {
      assert.deepEqual(batch.images.shape, [2, 3, 24, 24]);
      const expected = await ds.batch(batch.indices);
      assert.ok(expected.equal(batch.images));
      expected.dispose();
      assert.deepEqual(
        batch.labels!.toArray(),
        batch.indices.toArray().map((i) => (i < 3 ? 0 : 1)),
      );
      seen.push(...batch.indices.toArray());
      batch.dispose();
    }
    assert.deepEqual(seen, Array.from(loader.order(0).subarray(0, 4)));
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("a bad image surfaces from the loader as the error naming it, and nothing leaks", async () => {
    const ds = await openImageFolder({ root: join(root, "bad"), size: 16 });
    const loader = new DataLoader(ds, { batchSize: 1, shuffle: false, prefetch: 3 });
    const before = liveTensors();
    let good = 0;
    await assert.rejects(
      (async () => {
        for await (const batch of loader.batches(0)) {
          good++;
          batch.dispose();
        }
      })(),
      (error: unknown) => error instanceof DatasetError && error.message.includes("garbage.png"),
    );
    assert.equal(good, 0); // garbage.png sorts first
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the batches read ahead settle
    assert.equal(liveTensors(), before);
    ds.dispose();
  });
});
