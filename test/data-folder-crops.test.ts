// Training views of image folders, cut while decoding (issue #15): RandomResizedCrop's box drawn on
// each image's own size, exactly as torchvision 0.14's get_params draws it; crops decoded with sharp
// and resampled with libtorch's antialiased bilinear interpolation equal the official pipeline's PIL crops (Image.open().convert("RGB") + F.resized_crop, bilinear)
// of the same boxes on the same JPEGs; crops reach every edge of a non-square image; the loader
// draws in batch order, and a run resumed from the views' state draws the batches read ahead again.
// References: Debian's python3-torchvision and PIL (test/py/folder_crops.py).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import sharp from "sharp";

import {
  DataLoader,
  DatasetError,
  Random,
  TwoViewAugment,
  mocoV2Config,
  openImageFolder,
  sampleCropBox,
  type AugmentConfig,
  type CropBox,
  type ImageFolderDataset,
  type Range,
} from "../src/data/index.js";
import { liveTensors, scope, type Tensor } from "../src/torch/index.js";
import { resolveConfig, type PretrainConfig } from "../src/train/config.js";
import { MetricsLog, type StepRecord } from "../src/train/metrics.js";
import { loaderWorkers, pretrain } from "../src/train/pretrain.js";
import { formatHeader } from "../src/train/run-header.js";
import type { ProgressReporter } from "../src/train/progress.js";
import { imageSvg, writeJpegFolder } from "./helpers/jpeg-folder.js";
import { pythonScript } from "./helpers/python-script.js";

const reference = pythonScript("folder_crops.py");
let root: string;

/** Our generator, recording every draw sampleCropBox makes (unit value of a uniform; integer and its range). */
class RecordingRandom extends Random {
  events: ({ u: number } | { int: number; range: [number, number] })[] = [];
  override uniform(low: number, high: number): number {
    const u = this.random();
    this.events.push({ u });
    return low + (high - low) * u;
  }
  override int(low: number, high: number): number {
    const v = super.int(low, high);
    this.events.push({ int: v, range: [low, high] });
    return v;
  }
}

interface SamplerCase {
  height: number;
  width: number;
  scale: Range;
  ratio: Range;
  events: RecordingRandom["events"];
  box: CropBox;
}

const V2_SCALE: Range = [0.2, 1];

function imageSvgFor(seed: number, width = 100, height = 75): string {
  return imageSvg(new Random(seed), width, height);
}
const RATIO: Range = [3 / 4, 4 / 3];

before(async () => {
  root = mkdtempSync(join(tmpdir(), "moco-crops-"));
  // 500×375 JPEGs as the benchmark's, and one portrait.
  await writeJpegFolder(join(root, "jpegs"), { images: 4, classes: 2, width: 500, height: 375, seed: 7 });
  await writeJpegFolder(join(root, "portrait"), { images: 1, classes: 1, width: 240, height: 320, seed: 8 });
  await writeJpegFolder(join(root, "small"), { images: 16, classes: 2, width: 100, height: 75, seed: 9 });
  // A photo-sized JPEG, for crops that shrink 3× or more (decoded reduced).
  await writeJpegFolder(join(root, "large"), { images: 1, classes: 1, width: 1536, height: 1152, seed: 10 });
  // 500×375: the leftmost 20 columns pure red, the rightmost 20 pure blue, grey between. A crop of the
  // old pipeline (resize to 256, centre 256×256) never held a column of either.
  const stripes = Buffer.alloc(500 * 375 * 3, 128);
  for (let y = 0; y < 375; y++) {
    for (let x = 0; x < 500; x++) {
      const i = (y * 500 + x) * 3;
      if (x < 20) stripes.set([255, 0, 0], i);
      if (x >= 480) stripes.set([0, 0, 255], i);
    }
  }
  mkdirSync(join(root, "bad"));
  const good = await sharp(Buffer.from(imageSvgFor(9)))
    .jpeg()
    .toBuffer();
  writeFileSync(join(root, "bad", "a-good.jpg"), good);
  writeFileSync(join(root, "bad", "b-truncated.jpg"), good.subarray(0, Math.floor(good.length / 2)));
  writeFileSync(join(root, "bad", "c-good.jpg"), good);
  // 60×40 as stored, EXIF orientation 6 (to be shown rotated: 40×60).
  mkdirSync(join(root, "exif"));
  await sharp(Buffer.from(imageSvgFor(3, 60, 40)))
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toFile(join(root, "exif", "rotated.jpg"));
  mkdirSync(join(root, "stripes"));
  for (let i = 0; i < 8; i++) {
    await sharp(stripes, { raw: { width: 500, height: 375, channels: 3 } })
      .png()
      .toFile(join(root, "stripes", `stripes-${i}.png`));
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("RandomResizedCrop's box on the image's own size", () => {
  it("equals torchvision's get_params given the same draws (tries, ranges, centre-crop fallback)", () => {
    const rng = new RecordingRandom(2024);
    const cases: SamplerCase[] = [];
    const add = (height: number, width: number, scale: Range, ratio: Range, n: number) => {
      for (let i = 0; i < n; i++) {
        rng.events = [];
        const box = sampleCropBox(rng, height, width, scale, ratio);
        cases.push({ height, width, scale, ratio, events: rng.events, box });
      }
    };
    add(375, 500, V2_SCALE, RATIO, 600); // the benchmark's JPEGs (landscape)
    add(500, 375, V2_SCALE, RATIO, 200); // portrait
    add(375, 500, [0.08, 1], RATIO, 200); // torchvision's default scale
    add(28, 28, [0.5, 1], RATIO, 100); // small: rounding matters
    add(60, 1000, [0.9, 1], RATIO, 30); // too wide for most tries: the fallback clamps the ratio to 4/3
    add(1000, 60, [0.9, 1], RATIO, 30); // too tall: clamped to 3/4
    add(40, 50, [4, 4], RATIO, 5); // no try can fit: the whole image (its ratio is within bounds)
    add(50, 40, [0.3, 0.9], [1, 1], 50); // a degenerate ratio range
    const spec = join(root, "params.json");
    const out = join(root, "params-out.json");
    writeFileSync(spec, JSON.stringify({ cases }));
    reference("get_params", spec, out);
    const theirs = JSON.parse(readFileSync(out, "utf8")) as { box: number[]; draws: number }[];
    assert.equal(theirs.length, cases.length);
    let fallbacks = 0;
    cases.forEach((c, i) => {
      const { top, left, height, width } = c.box;
      assert.deepEqual(
        [top, left, height, width],
        theirs[i]?.box,
        `case ${i} (${c.height}×${c.width}, scale ${c.scale.join("–")}): ours ${JSON.stringify(c.box)}`,
      );
      // Ten failed tries (two uniforms each) and no offsets: the fallback.
      if (c.events.length === 20) fallbacks++;
    });
    assert.ok(fallbacks >= 40, `only ${fallbacks} cases reached the fallback`);
  });

  it("on 500×375: boxes reach every edge, the full width, every column; area and aspect ratio within bounds", () => {
    const rng = new Random(5);
    const covered = new Uint8Array(500);
    const edges = { top: false, left: false, bottom: false, right: false };
    let maxWidth = 0;
    for (let i = 0; i < 5000; i++) {
      const b = sampleCropBox(rng, 375, 500, V2_SCALE, RATIO);
      assert.ok(b.top >= 0 && b.left >= 0 && b.top + b.height <= 375 && b.left + b.width <= 500, JSON.stringify(b));
      const fraction = (b.height * b.width) / (375 * 500);
      assert.ok(fraction >= 0.2 - 0.003 && fraction <= 1, `area fraction ${fraction}`);
      const ratio = b.width / b.height;
      assert.ok(ratio >= 0.75 - 0.01 && ratio <= 4 / 3 + 0.01, `aspect ratio ${ratio}`);
      covered.fill(1, b.left, b.left + b.width);
      edges.top ||= b.top === 0;
      edges.left ||= b.left === 0;
      edges.bottom ||= b.top + b.height === 375;
      edges.right ||= b.left + b.width === 500;
      maxWidth = Math.max(maxWidth, b.width);
    }
    assert.deepEqual(edges, { top: true, left: true, bottom: true, right: true });
    assert.ok(
      covered.every((v) => v === 1),
      "some column of the image is never in a crop",
    );
    // 4/3 × 375 = 500: the widest box allowed is the whole image.
    assert.ok(maxWidth >= 490, `widest box ${maxWidth}`);
  });
});

/** Crops as decoded (float [B, C, h, w] in [0, 1]) → HWC bytes per image, rounded to levels as PIL's. */
function hwcImages(t: Tensor): Uint8Array[] {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  assert.equal(t.dtype, "float32");
  const bytes = scope(() => t.mul(255).round().clamp_(0, 255).to("uint8").permute(0, 2, 3, 1).contiguous().toBytes());
  return Array.from({ length: n }, (_, i) => bytes.subarray(i * h * w * c, (i + 1) * h * w * c));
}

interface PilCrop {
  path: string;
  box: CropBox;
  flip: boolean;
}

/** Each of `ours` (uint8 HWC) against PIL's crop of the same box, within `bound` levels (mean and max). */
function assertLikePil(
  crops: readonly PilCrop[],
  ours: readonly Uint8Array[],
  size: [number, number],
  bound: { mean: number; max: number },
): void {
  const spec = join(root, "crops.json");
  const out = join(root, "crops.bin");
  const boxes = crops.map(({ path, box, flip }) => ({ path, box: [box.top, box.left, box.height, box.width], flip }));
  writeFileSync(spec, JSON.stringify({ size, crops: boxes }));
  reference("resized_crops", spec, out);
  const theirs = readFileSync(out);
  const per = size[0] * size[1] * 3;
  assert.equal(theirs.length, crops.length * per);
  assert.equal(ours.length, crops.length);
  for (const [i, mine] of ours.entries()) {
    const pil = theirs.subarray(i * per, (i + 1) * per);
    let sum = 0;
    let max = 0;
    for (let k = 0; k < per; k++) {
      const d = Math.abs((mine[k] as number) - (pil[k] as number));
      sum += d;
      if (d > max) max = d;
    }
    const mean = sum / per;
    assert.ok(
      mean <= bound.mean && max <= bound.max,
      `crop ${i} ${JSON.stringify(boxes[i])}: mean ${mean.toFixed(3)}, max ${max}`,
    );
  }
}

describe("crops cut while decoding equal PIL's resized_crop", () => {
  it("JPEGs of 500×375 and 240×320: shrinking, enlarging and mixed boxes, edges, flips (mean ≤ 0.2, max ≤ 1 level; measured 0.15, 1)", async () => {
    const ds = await openImageFolder({ root: join(root, "jpegs") });
    const portrait = await openImageFolder({ root: join(root, "portrait") });
    try {
      const size: [number, number] = [224, 224];
      const boxes: CropBox[] = [
        { top: 0, left: 0, height: 375, width: 500 }, // the whole image, shrunk
        { top: 11, left: 37, height: 352, width: 401 }, // shrunk on both axes
        { top: 200, left: 300, height: 120, width: 150 }, // enlarged on both axes
        { top: 0, left: 0, height: 180, width: 400 }, // mixed, touching the top-left corner
        { top: 175, left: 330, height: 200, width: 170 }, // enlarged, touching the bottom-right corner
        { top: 50, left: 100, height: 224, width: 224 }, // exactly the output size: no resampling
        { top: 3, left: 480, height: 300, width: 20 }, // very thin: enlarged ×11 horizontally
      ];
      const rng = new Random(3);
      for (let i = 0; i < 9; i++) boxes.push(sampleCropBox(rng, 375, 500, V2_SCALE, RATIO));
      const flips = boxes.map((_, i) => i % 3 === 1);
      const files = boxes.map((_, i) => ds.files[i % ds.length] as string);
      const ours: Uint8Array[] = [];
      for (const [i, box] of boxes.entries()) {
        const [t] = await ds.decodeCrops([i % ds.length], [{ boxes: [box], flips: [flips[i] ? 1 : 0] }], size);
        ours.push(...hwcImages(t as Tensor));
        t?.dispose();
      }
      const portraitBoxes: CropBox[] = [
        { top: 0, left: 0, height: 320, width: 240 },
        { top: 100, left: 0, height: 220, width: 240 },
        ...Array.from({ length: 4 }, () => sampleCropBox(rng, 320, 240, V2_SCALE, RATIO)),
      ];
      const [pt] = await portrait.decodeCrops(
        portraitBoxes.map(() => 0),
        [{ boxes: portraitBoxes, flips: portraitBoxes.map((_, i) => i % 2) }],
        size,
      );
      ours.push(...hwcImages(pt as Tensor));
      pt?.dispose();

      const crops = [
        ...boxes.map((box, i) => ({ path: files[i] as string, box, flip: flips[i] === true })),
        ...portraitBoxes.map((box, i) => ({ path: portrait.files[0] as string, box, flip: i % 2 === 1 })),
      ];
      assertLikePil(crops, ours, size, { mean: 0.2, max: 1 });
    } finally {
      ds.dispose();
      portrait.dispose();
    }
  });

  it("a 1536×1152 JPEG whose crops all shrink 3× or more is decoded reduced: PIL's crops of the full image within 0.75 levels on average (measured ≤ 0.44)", async () => {
    const ds = await openImageFolder({ root: join(root, "large") });
    try {
      const size: [number, number] = [224, 224];
      const path = ds.files[0] as string;
      // Each entry: the crops decoded together (one decodeImageCrops call: the least reduced decides).
      const calls: { box: CropBox; flip: boolean }[][] = [
        [{ box: { top: 0, left: 0, height: 1152, width: 1536 }, flip: false }], // 5.1×: JPEG shrink 4
        [{ box: { top: 100, left: 200, height: 700, width: 900 }, flip: true }], // 3.1×: JPEG shrink 2
        [{ box: { top: 400, left: 736, height: 752, width: 800 }, flip: false }], // the bottom-right corner
        [
          { box: { top: 0, left: 0, height: 896, width: 1000 }, flip: false },
          { box: { top: 300, left: 500, height: 720, width: 700 }, flip: true }, // 3.1×: decides for both
        ],
        [
          { box: { top: 0, left: 0, height: 1152, width: 1536 }, flip: false },
          { box: { top: 500, left: 600, height: 600, width: 600 }, flip: false }, // 2.7×: full decode for both
        ],
      ];
      const rng = new Random(5);
      for (let i = 0; i < 4; i++)
        calls.push([{ box: sampleCropBox(rng, 1152, 1536, [0.3, 1], RATIO), flip: i % 2 === 0 }]);
      const ours: Uint8Array[] = [];
      for (const crops of calls) {
        const views = crops.map(({ box, flip }) => ({ boxes: [box], flips: [flip ? 1 : 0] }));
        const tensors = await ds.decodeCrops([0], views, size);
        for (const t of tensors) {
          ours.push(...hwcImages(t));
          t.dispose();
        }
      }
      assertLikePil(
        calls.flat().map(({ box, flip }) => ({ path, box, flip })),
        ours,
        size,
        // Measured: mean 0.08–0.44 levels per crop, at most 46 on a few pixels of hard edges (two
        // resamplings and each box edge rounded to the reduced image's pixels); the pair decoded in
        // full, at most 1 level, as the exact path above.
        { mean: 0.75, max: 80 },
      );
    } finally {
      ds.dispose();
    }
  });
});

describe("the loader cuts both views while decoding", () => {
  const cropFlip: AugmentConfig = {
    steps: [
      { op: "randomResizedCrop", size: 64, scale: [0.2, 1] },
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize: null,
  };

  it("a non-square image's crops cover its full width (its leftmost and rightmost columns appear)", async () => {
    const ds = await openImageFolder({ root: join(root, "stripes") });
    const views = new TwoViewAugment(cropFlip, { seed: 11 });
    const loader = new DataLoader(ds, { batchSize: 4, seed: 1, views });
    let red = 0;
    let blue = 0;
    let reachLeft = 0;
    let reachRight = 0;
    for (let epoch = 0; epoch < 6; epoch++) {
      for await (const batch of loader.batches(epoch)) {
        assert.ok(batch.views !== undefined);
        assert.deepEqual(batch.images.shape, [4, 3, 64, 64]);
        assert.equal(batch.images, batch.views.query);
        for (const p of [batch.views.params.query, batch.views.params.key]) {
          reachLeft += p.boxes.filter((b) => b.left < 20).length;
          reachRight += p.boxes.filter((b) => b.left + b.width > 480).length;
        }
        for (const t of [batch.views.query, batch.views.key]) {
          const px = hwcImages(t).flatMap((image) => [...image]);
          for (let k = 0; k < px.length; k += 3) {
            if ((px[k] as number) > 200 && (px[k + 2] as number) < 60) red++;
            if ((px[k + 2] as number) > 200 && (px[k] as number) < 60) blue++;
          }
        }
        const { query, key } = views.applyDecoded(batch.views);
        assert.deepEqual(query.shape, [4, 3, 64, 64]);
        assert.equal(query.dtype, "float32");
        query.dispose();
        key.dispose();
        batch.dispose();
      }
    }
    assert.ok(reachLeft > 0 && reachRight > 0, `boxes in the red columns ${reachLeft}, in the blue ${reachRight}`);
    assert.ok(red > 0 && blue > 0, `red pixels ${red}, blue pixels ${blue}`);
    ds.dispose();
  });

  it("views follow the seed, not the timing; the rest of the pipeline equals applyWith on the decoded crops", async () => {
    const ds = await openImageFolder({ root: join(root, "jpegs") });
    const config = mocoV2Config({ size: 32 });
    const run = async (prefetch: number) => {
      const views = new TwoViewAugment(config, { seed: 3 });
      const loader = new DataLoader(ds, { batchSize: 2, seed: 4, prefetch, views });
      const out: { q: number[]; boxes: CropBox[] }[] = [];
      for await (const batch of loader.batches(0)) {
        const v = batch.views!;
        const { query, key } = views.applyDecoded(v);
        const again = views.augment.applyWith(v.query, v.params.query.rest);
        assert.ok(again.equal(query));
        out.push({ q: query.toArray(), boxes: v.params.query.boxes });
        again.dispose();
        query.dispose();
        key.dispose();
        batch.dispose();
      }
      return out;
    };
    const before = liveTensors();
    const a = await run(1);
    const b = await run(3);
    assert.equal(a.length, 2);
    assert.deepEqual(a, b);
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("exact resume: the views' state is that of the batches trained on, not of those read ahead", async () => {
    const ds = (await openImageFolder({ root: join(root, "jpegs") })) as ImageFolderDataset;
    const config = mocoV2Config({ size: 32 });
    const views = new TwoViewAugment(config, { seed: 9 });
    const loader = new DataLoader(ds, { batchSize: 1, seed: 2, prefetch: 3, views });
    const seen: number[][] = [];
    let saved: ReturnType<TwoViewAugment["getState"]> | null = null;
    for await (const batch of loader.batches(0)) {
      const { query, key } = views.applyDecoded(batch.views!);
      seen.push(key.toArray());
      query.dispose();
      key.dispose();
      batch.dispose();
      if (batch.step === 1) saved = views.getState(); // two batches trained on, more drawn already
    }
    assert.notDeepEqual(saved, views.getState());
    // A run resumed after step 1 draws steps 2 and 3 as the uninterrupted one did.
    const resumed = new TwoViewAugment(config, { seed: 12345 });
    resumed.setState(saved!);
    const resumedLoader = new DataLoader(ds, { batchSize: 1, seed: 2, prefetch: 2, views: resumed });
    const again: number[][] = [];
    for await (const batch of resumedLoader.batches(0, { startStep: 2 })) {
      const { query, key } = resumed.applyDecoded(batch.views!);
      again.push(key.toArray());
      query.dispose();
      key.dispose();
      batch.dispose();
    }
    assert.deepEqual(again, seen.slice(2));
    ds.dispose();
  });

  for (const workers of [0, 2]) {
    it(`a bad image surfaces from the loader as the error naming it, nothing leaks, the loader starts again (${workers} workers)`, async () => {
      const ds = await openImageFolder({ root: join(root, "bad") });
      const views = new TwoViewAugment(cropFlip, { seed: 1 });
      const loader = new DataLoader(ds, { batchSize: 1, shuffle: false, prefetch: 3, views, workers });
      const before = liveTensors();
      let good = 0;
      await assert.rejects(
        (async () => {
          for await (const batch of loader.batches(0)) {
            good++;
            batch.dispose();
          }
        })(),
        (error: unknown) =>
          error instanceof DatasetError &&
          error.code === "CORRUPT" &&
          error.path.endsWith("b-truncated.jpg") &&
          error.message.includes("b-truncated.jpg"),
      );
      assert.equal(good, 1); // a-good.jpg, then the truncated one
      await loader.close();
      await new Promise((resolve) => setTimeout(resolve, 100)); // let the batches read ahead settle
      assert.equal(liveTensors(), before);
      // Closed, the loader (with new workers) reads the good image again.
      const first = await loader.batches(0).next();
      assert.ok(first.done !== true);
      assert.deepEqual(first.value.views?.query.shape, [1, 3, 64, 64]);
      first.value.dispose();
      await loader.close();
      ds.dispose();
    });
  }

  it("workers: the same views as in the training thread, the same stream state, any number of workers", async () => {
    const ds = await openImageFolder({ root: join(root, "jpegs") });
    const config = mocoV2Config({ size: 48 });
    const run = async (workers: number) => {
      const views = new TwoViewAugment(config, { seed: 21 });
      const loader = new DataLoader(ds, { batchSize: 2, seed: 5, views, workers });
      assert.equal(loader.workers, workers);
      const out: { q: Tensor; k: Tensor; state: ReturnType<TwoViewAugment["getState"]> }[] = [];
      for (let epoch = 0; epoch < 2; epoch++) {
        for await (const batch of loader.batches(epoch)) {
          assert.equal(batch.views?.applied, workers > 0 ? true : undefined);
          const { query, key } = views.applyDecoded(batch.views!);
          out.push({ q: query.clone(), k: key.clone(), state: views.getState() });
          query.dispose();
          key.dispose();
          batch.dispose();
        }
      }
      await loader.close();
      return out;
    };
    const before = liveTensors();
    const inThread = await run(0);
    for (const workers of [1, 3]) {
      const inWorkers = await run(workers);
      assert.equal(inWorkers.length, inThread.length);
      for (const [i, r] of inWorkers.entries()) {
        const ref = inThread[i]!;
        assert.deepEqual(r.q.shape, [2, 3, 48, 48]);
        // One libtorch thread in a worker, several here: sums (contrast's mean) may round differently.
        for (const [ours, theirs] of [
          [r.q, ref.q],
          [r.k, ref.k],
        ] as const)
          assert.ok(scope(() => ours.sub(theirs).abs().max().item()) <= 1e-5, `batch ${i}, ${workers} worker(s)`);
        assert.deepEqual(r.state, ref.state);
        r.q.dispose();
        r.k.dispose();
      }
    }
    for (const r of inThread) {
      r.q.dispose();
      r.k.dispose();
    }
    assert.equal(liveTensors(), before);
    ds.dispose();
  });

  it("workers: memory stays flat over many batches (the workers free their crops and views)", async () => {
    const ds = await openImageFolder({ root: join(root, "jpegs") });
    const views = new TwoViewAugment(mocoV2Config({ size: 224 }), { seed: 2 });
    const loader = new DataLoader(ds, { batchSize: 2, seed: 1, views, workers: 2 });
    const rssAfter: number[] = [];
    let steps = 0;
    for (let epoch = 0; steps < 60; epoch++) {
      for await (const batch of loader.batches(epoch)) {
        const { query, key } = views.applyDecoded(batch.views!);
        query.dispose();
        key.dispose();
        batch.dispose();
        if (++steps % 20 === 0) rssAfter.push(process.memoryUsage().rss / 2 ** 20);
      }
    }
    await loader.close();
    // A leak of one batch's crops or views per step would be 2.4 MB or more a step: 96 MB over 40.
    const [, at40 = 0, at60 = 0] = rssAfter;
    assert.ok(at60 - at40 < 40, `RSS ${rssAfter.map((r) => r.toFixed(0)).join(" → ")} MiB after steps 20, 40, 60`);
    ds.dispose();
  });

  it("EXIF orientation is not applied (as PIL's loader): sizes and crops are of the image as stored", async () => {
    const ds = await openImageFolder({ root: join(root, "exif") });
    assert.equal((await sharp(ds.files[0]).metadata()).orientation, 6);
    assert.deepEqual(await ds.imageSizes([0]), [[40, 60]]);
    const box = { top: 0, left: 0, height: 40, width: 60 };
    const [t] = await ds.decodeCrops([0], [{ boxes: [box], flips: [0] }], [40, 60]);
    assert.deepEqual(t?.shape, [1, 3, 40, 60]);
    t?.dispose();
    ds.dispose();
  });

  it("gray folders decode 1-channel views; in-memory datasets ignore `views` (the step applies them)", async () => {
    const ds = await openImageFolder({ root: join(root, "stripes"), channels: 1 });
    const views = new TwoViewAugment(cropFlip, { seed: 1 });
    const loader = new DataLoader(ds, { batchSize: 2, views });
    for await (const batch of loader.batches(0)) {
      assert.deepEqual(batch.views?.key.shape, [2, 1, 64, 64]);
      batch.dispose();
    }
    ds.dispose();
    const { TensorImageDataset } = await import("../src/data/index.js");
    const { randint } = await import("../src/torch/index.js");
    const memory = new TensorImageDataset({
      name: "memory",
      images: randint(0, 256, [4, 3, 20, 20], { dtype: "uint8" }),
      labels: null,
      classNames: [],
      stats: { mean: [0.5], std: [0.5] },
    });
    const memoryLoader = new DataLoader(memory, { batchSize: 2, views });
    assert.equal(memoryLoader.views, null);
    for await (const batch of memoryLoader.batches(0)) {
      assert.equal(batch.views, undefined);
      batch.dispose();
    }
    memory.dispose();
  });
});

describe("pretraining on a folder", () => {
  const config = (name: string): PretrainConfig =>
    resolveConfig("fashion-mnist", [
      {
        source: "test",
        values: {
          dataset: "folder",
          data: join(root, "small"),
          subset: null,
          imageSize: 32,
          width: 4,
          batchSize: 4,
          bnSplits: 1,
          mocoK: 16,
          mocoDim: 16,
          epochs: 2,
          knnEvery: 0,
          threads: 2,
          workers: 1,
          precision: "fp32",
          out: join(root, name),
        },
      },
    ]);
  const losses = (c: PretrainConfig) =>
    new MetricsLog(join(c.out, "metrics.jsonl"))
      .read()
      .filter((r): r is StepRecord => r.type === "step")
      .map((r) => r.loss);

  it("an interrupted and resumed run gives the same losses as an uninterrupted one (views read ahead)", async () => {
    const straight = config("straight");
    await pretrain(straight);
    const reference = losses(straight);
    assert.equal(reference.length, 8);

    const interrupted = config("interrupted");
    const controller = new AbortController();
    let steps = 0;
    const progress: ProgressReporter = {
      update() {
        if (++steps === 6) controller.abort(); // mid-epoch, with batches drawn ahead
      },
      log() {},
      done() {},
    };
    const first = await pretrain(interrupted, { signal: controller.signal, progress });
    assert.equal(first.steps, 6);
    const resumed = await pretrain(interrupted, { resume: first.checkpoint });
    assert.equal(resumed.steps, 8);
    assert.deepEqual(losses(interrupted), reference);
    // The batches came from the loader's worker, and the header says so.
    assert.equal(first.header.workers, 1);
    assert.match(formatHeader(first.header).join("\n"), /thread\(s\), \d+ loader worker thread\(s\) decoding/);
  });

  it("auto on the CPU is no workers; the losses are those of the run with a worker", async () => {
    assert.deepEqual(
      [loaderWorkers(2, "cpu"), loaderWorkers(64, "cpu"), loaderWorkers(1, "cuda"), loaderWorkers(4, "cuda:0")],
      [0, 0, 1, 3],
    );
    assert.equal(loaderWorkers(64, "cuda"), 8);
    const inThread = { ...config("in-thread"), workers: null };
    const result = await pretrain(inThread);
    assert.equal(result.header.workers, 0);
    assert.doesNotMatch(formatHeader(result.header).join("\n"), /loader worker/);
    const theirs = losses(config("straight"));
    const ours = losses(inThread);
    assert.equal(ours.length, theirs.length);
    // A worker computes with one libtorch thread, this run with two: sums may round differently.
    ours.forEach((loss, i) =>
      assert.ok(Math.abs(loss - (theirs[i] as number)) < 1e-4, `step ${i + 1}: ${loss} vs ${theirs[i]}`),
    );
  });
});
