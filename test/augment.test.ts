// The random side of the augmentation: sampled parameters follow their ranges and probabilities
// over many draws, a seed makes the stream reproducible, and the pipelines handle shapes, gray
// images, validation and memory. (Parity of the ops with torchvision: augment-parity.test.ts.)
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  Augment,
  JITTER_OPS,
  TwoViewAugment,
  cifarDemoConfig,
  evalTransform,
  mocoV1Config,
  mocoV2Config,
  sampleCropBox,
  sliceParams,
  type AugmentParams,
  type StepParams,
} from "../src/data/augment.js";
import { Random } from "../src/data/random.js";
import { liveTensors, manualSeed, randint, scope, tensor } from "../src/torch/index.js";

function stepOf<K extends StepParams["op"]>(params: AugmentParams, op: K): Extract<StepParams, { op: K }> {
  const step = params.steps.find((s) => s.op === op);
  assert.ok(step !== undefined, `no ${op} step`);
  return step as Extract<StepParams, { op: K }>;
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  return sum / values.length;
}

/** A binomial proportion within 5 standard errors of p (false-failure odds ~ 1e-6). */
function assertProportion(count: number, n: number, p: number, what: string): void {
  const se = Math.sqrt((p * (1 - p)) / n);
  assert.ok(
    Math.abs(count / n - p) < 5 * se,
    `${what}: ${count}/${n} = ${(count / n).toFixed(4)}, expected ${p} ± ${(5 * se).toFixed(4)}`,
  );
}

describe("Random (xoshiro128**)", () => {
  it("is reproducible from a seed, differs across seeds and streams, and resumes from its state", () => {
    const a = new Random(42);
    const b = new Random(42);
    const xs = Array.from({ length: 100 }, () => a.nextUint32());
    assert.deepEqual(
      Array.from({ length: 100 }, () => b.nextUint32()),
      xs,
    );
    assert.notDeepEqual(
      Array.from({ length: 100 }, () => new Random(43).nextUint32()),
      xs,
    );
    assert.notEqual(new Random(42, 1).nextUint32(), new Random(42, 2).nextUint32());
    const state = a.getState();
    const next = Array.from({ length: 10 }, () => a.random());
    assert.deepEqual(Array.from({ length: 10 }, () => Random.fromState(state).random()).slice(0, 1), next.slice(0, 1));
    const c = Random.fromState(state);
    assert.deepEqual(
      Array.from({ length: 10 }, () => c.random()),
      next,
    );
  });

  it("draws uniforms in [0, 1), unbiased integers and permutations", () => {
    const r = new Random(7);
    const n = 40000;
    const u = Float64Array.from({ length: n }, () => r.random());
    assert.ok(u.every((v) => v >= 0 && v < 1));
    assert.ok(Math.abs(mean(u) - 0.5) < 0.01);
    const counts = new Array<number>(6).fill(0);
    for (let i = 0; i < n; i++) counts[r.int(0, 6)]! += 1;
    for (const c of counts) assertProportion(c, n, 1 / 6, "int(0, 6)");
    const p = r.permutation(1000);
    assert.deepEqual(
      Array.from(p).sort((x, y) => x - y),
      Array.from({ length: 1000 }, (_, i) => i),
    );
    assert.throws(() => new Random(-1), /seed/);
    assert.throws(() => r.setState([0, 0, 0, 0]), /all-zero/);
  });
});

describe("sampled parameters follow their ranges and probabilities", () => {
  const n = 20000;

  it("RandomResizedCrop: area fraction within scale, log-ratio within log(ratio), boxes inside, offsets uniform", () => {
    const r = new Random(1);
    // A large image, where rounding w and h to integers hardly moves area and ratio.
    const H = 1000;
    const W = 1200;
    const scale = [0.2, 1] as const;
    const ratio = [3 / 4, 4 / 3] as const;
    const fractions: number[] = [];
    const relTop: number[] = [];
    for (let i = 0; i < n; i++) {
      const box = sampleCropBox(r, H, W, scale, ratio);
      assert.ok(
        box.top >= 0 && box.left >= 0 && box.top + box.height <= H && box.left + box.width <= W,
        JSON.stringify(box),
      );
      const fraction = (box.height * box.width) / (H * W);
      fractions.push(fraction);
      assert.ok(fraction >= 0.2 - 0.002 && fraction <= 1 + 1e-9, `area fraction ${fraction}`);
      const logRatio = Math.log(box.width / box.height);
      assert.ok(logRatio >= Math.log(3 / 4) - 0.005 && logRatio <= Math.log(4 / 3) + 0.005, `log ratio ${logRatio}`);
      if (box.height < H) relTop.push(box.top / (H - box.height));
    }
    // Uniform in [0.2, 1] except that large crops with extreme ratios may not fit and are redrawn.
    const m = mean(fractions);
    assert.ok(m > 0.5 && m < 0.62, `mean area fraction ${m}`);
    assert.ok(Math.min(...fractions) < 0.21 && Math.max(...fractions) > 0.97);
    assert.ok(Math.abs(mean(relTop) - 0.5) < 0.02, `mean relative top ${mean(relTop)}`);
  });

  it("RandomResizedCrop on 28×28 stays inside the image and covers the scale range", () => {
    const r = new Random(2);
    let fallback = 0;
    for (let i = 0; i < n; i++) {
      const b = sampleCropBox(r, 28, 28, [0.2, 1], [3 / 4, 4 / 3]);
      assert.ok(
        b.top >= 0 && b.left >= 0 && b.top + b.height <= 28 && b.left + b.width <= 28 && b.height >= 1 && b.width >= 1,
      );
      const fraction = (b.height * b.width) / 784;
      assert.ok(fraction > 0.15 && fraction <= 1, `fraction ${fraction}`);
      if (b.top === 0 && b.left === 0 && b.height === 28 && b.width === 28) fallback++;
    }
    assert.ok(fallback < n * 0.05, `whole-image crops ${fallback}`);
  });

  it("v2: jitter applied with p 0.8, factors in [0.6, 1.4] and hue in [−0.1, 0.1], every order of the four ops, grayscale 0.2, blur 0.5 with σ in range, flip 0.5", () => {
    const augment = new Augment(mocoV2Config({ size: 28, blurSigma: [0.1, 2] }));
    const params = augment.sample(new Random(3), n, 28, 28);
    const jitter = stepOf(params, "colorJitter");
    const applied = countOnes(jitter.applied);
    assertProportion(applied, n, 0.8, "jitter applied");
    const perms = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      if (!jitter.applied[i]) {
        for (const name of ["brightness", "contrast", "saturation", "hue"] as const)
          assert.ok(Number.isNaN(jitter[name][i]));
        continue;
      }
      for (const name of ["brightness", "contrast", "saturation"] as const) {
        const f = jitter[name][i] as number;
        assert.ok(f >= 0.6 && f <= 1.4, `${name} ${f}`);
      }
      const h = jitter.hue[i] as number;
      assert.ok(h >= -0.1 && h <= 0.1, `hue ${h}`);
      const key = Array.from(jitter.order.subarray(4 * i, 4 * i + 4)).join("");
      perms.set(key, (perms.get(key) ?? 0) + 1);
    }
    assert.equal(perms.size, 24, "all 24 orders of brightness, contrast, saturation, hue");
    for (const [key, count] of perms) {
      assert.deepEqual([...key].map(Number).sort(), [0, 1, 2, 3]);
      assertProportion(count, applied, 1 / 24, `order ${[...key].map((k) => JITTER_OPS[Number(k)]).join(",")}`);
    }
    const appliedIdx = Array.from({ length: n }, (_, i) => i).filter((i) => jitter.applied[i]);
    const b = appliedIdx.map((i) => jitter.brightness[i] as number);
    assert.ok(Math.abs(mean(b) - 1) < 0.01, `mean brightness ${mean(b)}`);
    assert.ok(Math.min(...b) < 0.61 && Math.max(...b) > 1.39);
    const hues = appliedIdx.map((i) => jitter.hue[i] as number);
    assert.ok(Math.abs(mean(hues)) < 0.003 && Math.min(...hues) < -0.099 && Math.max(...hues) > 0.099);
    assertProportion(countOnes(stepOf(params, "randomGrayscale").applied), n, 0.2, "grayscale");
    const sigma = stepOf(params, "gaussianBlur").sigma;
    const blurred = Array.from(sigma).filter((s) => s > 0);
    assertProportion(blurred.length, n, 0.5, "blur");
    assert.ok(blurred.every((s) => s >= 0.1 && s <= 2));
    assert.ok(Math.abs(mean(blurred) - 1.05) < 0.02);
    assertProportion(countOnes(stepOf(params, "horizontalFlip").applied), n, 0.5, "flip");
  });

  it("v1: jitter always applied with factors in [0.6, 1.4] and hue in [−0.4, 0.4]; no blur", () => {
    const params = new Augment(mocoV1Config({ size: 28 })).sample(new Random(4), n, 28, 28);
    const jitter = stepOf(params, "colorJitter");
    assert.equal(countOnes(jitter.applied), n);
    assert.ok(jitter.hue.every((h) => h >= -0.4 && h <= 0.4));
    assert.ok(Math.min(...jitter.hue) < -0.39 && Math.max(...jitter.hue) > 0.39);
    assert.ok(jitter.contrast.every((f) => f >= 0.6 && f <= 1.4));
    assert.equal(
      params.steps.map((s) => s.op).join(","),
      "randomResizedCrop,randomGrayscale,colorJitter,horizontalFlip",
    );
    assertProportion(countOnes(stepOf(params, "randomGrayscale").applied), n, 0.2, "grayscale");
  });

  it("a disabled jitter factor (0) is not drawn, as torchvision's None", () => {
    const augment = new Augment({
      steps: [
        { op: "randomResizedCrop", size: 8 },
        { op: "colorJitter", brightness: 0.5, contrast: 0, saturation: 1.5, hue: 0 },
      ],
      normalize: null,
    });
    const jitter = stepOf(augment.sample(new Random(5), 2000, 8, 8), "colorJitter");
    assert.ok(jitter.contrast.every(Number.isNaN) && jitter.hue.every(Number.isNaN));
    assert.ok(jitter.saturation.every((f) => f >= 0 && f <= 2.5));
    assert.ok(Math.min(...jitter.saturation) < 0.01, "saturation range clipped at 0");
  });
});

function countOnes(flags: ArrayLike<number>): number {
  let k = 0;
  for (let i = 0; i < flags.length; i++) if (flags[i]) k++;
  return k;
}

describe("reproducibility", () => {
  manualSeed(1);
  const batch = scope(() => randint(0, 256, [32, 3, 24, 24], { dtype: "uint8" }));

  it("the same seed gives identical two-view batches; another seed different ones; query ≠ key", () => {
    const config = mocoV2Config({ size: 20 });
    const run = (seed: number) => new TwoViewAugment(config, { seed }).apply(batch);
    scope(() => {
      const a = run(123);
      const b = run(123);
      const c = run(124);
      assert.ok(a.query.equal(b.query) && a.key.equal(b.key), "same seed, same views");
      assert.ok(!a.query.equal(c.query) && !a.key.equal(c.key), "another seed, other views");
      assert.ok(!a.query.equal(a.key), "two independent draws");
      // The global libtorch generator plays no part.
      manualSeed(999);
      const d = run(123);
      assert.ok(a.query.equal(d.query));
    });
  });

  it("the stream continues across batches and resumes from a saved state", () => {
    scope(() => {
      const views = new TwoViewAugment(mocoV1Config({ size: 16 }), { seed: 5 });
      views.apply(batch);
      const state = views.getState();
      const second = views.apply(batch);
      const resumed = new TwoViewAugment(mocoV1Config({ size: 16 }), { seed: 77 });
      resumed.setState(state);
      const again = resumed.apply(batch);
      assert.ok(second.query.equal(again.query) && second.key.equal(again.key));
    });
  });
});

describe("pipelines", () => {
  manualSeed(2);
  const rgb = scope(() => randint(0, 256, [16, 3, 32, 32], { dtype: "uint8" }));
  const gray = scope(() => randint(0, 256, [16, 1, 28, 28], { dtype: "uint8" }));

  it("uint8 [B, C, H, W] in, normalised float [B, C, size, size] out, for v1, v2 and the CIFAR demo", () => {
    scope(() => {
      for (const config of [mocoV1Config({ size: 24 }), mocoV2Config({ size: 24 }), cifarDemoConfig({ size: 24 })]) {
        const out = new Augment(config).apply(rgb, new Random(0));
        assert.equal(out.dtype, "float32");
        assert.deepEqual(out.shape, [16, 3, 24, 24]);
        assert.ok(out.isfinite().all().item() === 1);
      }
      const unnormalised = new Augment({ ...mocoV2Config({ size: 20 }), normalize: null }).apply(rgb, new Random(0));
      assert.ok(unnormalised.min().item() >= 0 && unnormalised.max().item() <= 1);
    });
  });

  it("gray images: 1 channel out with 1-channel stats, 3 channels with ImageNet's", () => {
    scope(() => {
      const one = new Augment(mocoV2Config({ size: 28, stats: { mean: [0.286], std: [0.353] } })).apply(
        gray,
        new Random(1),
      );
      assert.deepEqual(one.shape, [16, 1, 28, 28]);
      const three = new Augment(mocoV2Config({ size: 28 })).apply(gray, new Random(1));
      assert.deepEqual(three.shape, [16, 3, 28, 28]);
      // The three channels are the same gray image, normalised with each channel's constants.
      const back = three
        .mul(tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        .add(tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1));
      assert.ok(back.select(1, 0).allclose(back.select(1, 2), 1e-5, 1e-5));
    });
  });

  it("saturation and hue leave gray images alone; grayscale is a no-op on them", () => {
    scope(() => {
      const onlyColour = new Augment({
        steps: [
          { op: "randomResizedCrop", size: 28, scale: [1, 1], ratio: [1, 1] },
          { op: "colorJitter", saturation: 0.9, hue: 0.5 },
          { op: "randomGrayscale", p: 1 },
        ],
        normalize: null,
      });
      const out = onlyColour.apply(gray, new Random(3));
      assert.ok(out.allclose(gray.float().div(255), 0, 1e-5));
    });
  });

  it("large outputs go through in groups of images with the same result (sliceParams)", () => {
    scope(() => {
      // 3×128×128 outputs: groups of floor(2M / 49152) = 42 images, so 50 images make two groups.
      const big = randint(0, 256, [50, 3, 130, 130], { dtype: "uint8" });
      const augment = new Augment(mocoV2Config({ size: 128 }));
      const params = augment.sample(new Random(8), 50, 130, 130);
      const whole = augment.applyWith(big, params);
      const halves = [
        augment.applyWith(big.narrow(0, 0, 25), sliceParams(params, 0, 25)),
        augment.applyWith(big.narrow(0, 25, 25), sliceParams(params, 25, 50)),
      ];
      assert.ok(whole.narrow(0, 0, 25).allclose(halves[0]!, 0, 1e-5));
      assert.ok(whole.narrow(0, 25, 25).allclose(halves[1]!, 0, 1e-5));
    });
  });

  it("evalTransform centre-crops (as CenterCrop), scales to [0, 1] and normalises", () => {
    scope(() => {
      const out = evalTransform(rgb, { size: 24, stats: null });
      assert.deepEqual(out.shape, [16, 3, 24, 24]);
      assert.ok(out.equal(rgb.narrow(2, 4, 24).narrow(3, 4, 24).float().div(255)));
      const up = evalTransform(gray, { size: 32, stats: { mean: [0.5], std: [0.5] } });
      assert.deepEqual(up.shape, [16, 1, 32, 32]);
    });
  });

  it("rejects bad configurations with messages naming the setting", () => {
    assert.throws(
      () => new Augment({ steps: [{ op: "horizontalFlip" }], normalize: null }),
      /first step must be randomResizedCrop/,
    );
    assert.throws(
      () => new Augment({ steps: [{ op: "randomResizedCrop", size: 8, scale: [0.9, 0.2] }], normalize: null }),
      /randomResizedCrop.scale/,
    );
    assert.throws(
      () =>
        new Augment({
          steps: [
            { op: "randomResizedCrop", size: 8 },
            { op: "colorJitter", hue: 0.7 },
          ],
          normalize: null,
        }),
      /colorJitter.hue/,
    );
    assert.throws(
      () =>
        new Augment({
          steps: [
            { op: "randomResizedCrop", size: 8 },
            { op: "randomGrayscale", p: 1.5 },
          ],
          normalize: null,
        }),
      /randomGrayscale.p/,
    );
    assert.throws(
      () => new Augment({ steps: [{ op: "randomResizedCrop", size: 8 }, { op: "blur" } as never], normalize: null }),
      /unknown op "blur"/,
    );
    assert.throws(
      () => new Augment({ steps: [{ op: "randomResizedCrop", size: 0 }], normalize: null }),
      /size must be a positive integer/,
    );
    const augment = new Augment(mocoV2Config({ size: 8 }));
    const params = augment.sample(new Random(0), 4, 32, 32);
    assert.throws(() => augment.applyWith(rgb, params), /drawn for 4 images of 32×32, got 16/);
  });

  it("frees every intermediate tensor", () => {
    const views = new TwoViewAugment(mocoV2Config({ size: 28 }), { seed: 1 });
    scope(() => views.apply(rgb)); // warm-up
    const before = liveTensors();
    for (let i = 0; i < 3; i++) {
      const { query, key } = views.apply(rgb);
      query.dispose();
      key.dispose();
    }
    assert.equal(liveTensors(), before);
  });
});
