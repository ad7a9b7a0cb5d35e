// Random augmentation pipelines applied to whole batches, with parameters drawn per image as
// torchvision's transforms draw them, from our own seeded generator (random.ts), and the
// MoCo v1/v2 pipelines (design.md §3; the official main_moco.py) plus the official CIFAR demo's.
//
// A pipeline is a list of steps, torchvision's Compose: it starts with RandomResizedCrop (the only
// geometric step), then colour steps in the listed order, then Normalize. Horizontal flips commute
// with every other step here (pixel-wise colour operations, a contrast mean, a symmetric blur
// kernel with reflect padding), so they are folded into the crop's sampling grid: the same result
// as flipping at the end, for free.
//
// Drawing order, per image and per step (the images of a batch one after another, as
// torchvision's Compose would process them one by one):
//   RandomResizedCrop: get_params's up to 10 tries (area fraction uniform in scale, log-ratio
//     uniform in log(ratio), then top and left) and its centre-crop fallback;
//   ColorJitter: [a coin when p < 1, applied when coin <= p (RandomApply)], then if applied a
//     random order of the four operations and brightness, contrast, saturation, hue factors;
//   RandomGrayscale: a coin, applied when coin < p;
//   GaussianBlur: [a coin when p < 1, applied when coin <= p], then σ uniform in the range;
//   RandomHorizontalFlip: a coin, applied when coin < p.
//
// Gaussian blur: the official v2 code blurs PIL images with ImageFilter.GaussianBlur(radius=σ);
// on tensors we use torchvision's tensor gaussian_blur with σ drawn the same way and the kernel
// size 2·ceil(3σ) + 1 (±3σ), reflect padding (augment-ops.ts).
//
// Performance: a batch goes through a few dozen tensor ops whatever its size; per-image values
// become [B, 1, 1, 1] tensors. Native memory is invisible to V8 except through external-memory
// accounting, which triggers full GCs when it grows fast, so intermediates are freed as soon as
// the next one exists, and large outputs go through in groups of images (GROUP_VALUES).
import { cat, fromTypedArray, scope, type Tensor } from "../torch/index.js";
import {
  adjustHue,
  gaussianBlur,
  grayscale,
  normalize,
  onDeviceOf,
  resizedCrop,
  rgbToGrayscale,
  roundHalfEven,
  toFloatImages,
  type CropBox,
} from "./augment-ops.js";
import { IMAGENET_STATS, type ChannelStats } from "./dataset.js";
import { Random, type RandomState } from "./random.js";

/** Images per group: at most this many output values (8 MB of float32) per intermediate tensor. */
const GROUP_VALUES = 2 * 2 ** 20;
/** uint8 → float conversion for the crop: at most this many input values at once. */
const CROP_CHUNK_VALUES = 4 * 2 ** 20;

export type Range = readonly [number, number];

export interface RandomResizedCropStep {
  op: "randomResizedCrop";
  /** Output size: a number for square outputs, or [height, width]. */
  size: number | Range;
  /** Range of the crop's area as a fraction of the image's. Default [0.08, 1] (torchvision's). */
  scale?: Range;
  /** Range of the crop's aspect ratio w/h, sampled uniformly in log space. Default [3/4, 4/3]. */
  ratio?: Range;
}

export interface ColorJitterStep {
  op: "colorJitter";
  /** Factors are drawn in [max(0, 1 − x), 1 + x] for brightness, contrast and saturation, in [−hue, hue] for hue; 0 disables one. */
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
  /** Probability of applying the jitter at all (RandomApply). Default 1. */
  p?: number;
}

export interface RandomGrayscaleStep {
  op: "randomGrayscale";
  p: number;
}

export interface GaussianBlurStep {
  op: "gaussianBlur";
  /** σ range in pixels of the output image; the kernel size is 2·ceil(3σ) + 1. */
  sigma: Range;
  /** Probability of blurring (RandomApply). Default 1. */
  p?: number;
}

export interface HorizontalFlipStep {
  op: "horizontalFlip";
  /** Default 0.5. */
  p?: number;
}

export type AugmentStep =
  RandomResizedCropStep | ColorJitterStep | RandomGrayscaleStep | GaussianBlurStep | HorizontalFlipStep;

export interface AugmentConfig {
  steps: readonly AugmentStep[];
  /** Normalize's constants, or null for images in [0, 1]. */
  normalize: ChannelStats | null;
}

// ---- sampled parameters ------------------------------------------------------------------------

/** Index of each colour-jitter operation in `order`. */
export const JITTER_OPS = ["brightness", "contrast", "saturation", "hue"] as const;

export interface CropParams {
  op: "randomResizedCrop";
  boxes: CropBox[];
}
export interface JitterParams {
  op: "colorJitter";
  applied: Uint8Array;
  /** n × 4: for image i, order[4i..4i+3] is a permutation of 0..3 (indices into JITTER_OPS). */
  order: Uint8Array;
  /** Per image; NaN where the operation is disabled or the jitter not applied. */
  brightness: Float64Array;
  contrast: Float64Array;
  saturation: Float64Array;
  hue: Float64Array;
}
export interface GrayscaleParams {
  op: "randomGrayscale";
  applied: Uint8Array;
}
export interface BlurParams {
  op: "gaussianBlur";
  /** Per image σ; 0 where not blurred. */
  sigma: Float64Array;
}
export interface FlipParams {
  op: "horizontalFlip";
  applied: Uint8Array;
}
export type StepParams = CropParams | JitterParams | GrayscaleParams | BlurParams | FlipParams;

/** Everything random about one application of a pipeline to a batch. */
export interface AugmentParams {
  n: number;
  height: number;
  width: number;
  steps: StepParams[];
}

// ---- validation ------------------------------------------------------------------------------------

function checkProbability(p: unknown, what: string): number {
  if (typeof p !== "number" || !(p >= 0 && p <= 1))
    throw new RangeError(`Augment: ${what} must be a probability in [0, 1], got ${String(p)}`);
  return p;
}

function checkRange(range: unknown, what: string, positive: boolean): Range {
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new TypeError(`Augment: ${what} must be a pair of numbers [low, high], got ${JSON.stringify(range)}`);
  }
  const [lo, hi] = range as [number, number];
  if (lo > hi || (positive && !(lo > 0))) {
    throw new RangeError(`Augment: ${what} must satisfy ${positive ? "0 < " : ""}low <= high, got [${lo}, ${hi}]`);
  }
  return [lo, hi];
}

function checkNonNegative(v: unknown, what: string): number {
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v))
    throw new RangeError(`Augment: ${what} must be a non-negative number, got ${String(v)}`);
  return v;
}

interface ResolvedJitter {
  brightness: Range | null;
  contrast: Range | null;
  saturation: Range | null;
  hue: Range | null;
  p: number;
}

/** torchvision's ColorJitter._check_input: [max(0, 1 − x), 1 + x], hue [−h, h]; 0 → disabled. */
function resolveJitter(step: ColorJitterStep): ResolvedJitter {
  const factor = (v: number | undefined, what: string): Range | null => {
    const x = checkNonNegative(v ?? 0, `colorJitter.${what}`);
    return x === 0 ? null : [Math.max(0, 1 - x), 1 + x];
  };
  const hue = checkNonNegative(step.hue ?? 0, "colorJitter.hue");
  if (hue > 0.5) throw new RangeError(`Augment: colorJitter.hue must be in [0, 0.5], got ${hue}`);
  return {
    brightness: factor(step.brightness, "brightness"),
    contrast: factor(step.contrast, "contrast"),
    saturation: factor(step.saturation, "saturation"),
    hue: hue === 0 ? null : [-hue, hue],
    p: checkProbability(step.p ?? 1, "colorJitter.p"),
  };
}

function resolveSize(size: unknown): [number, number] {
  const pair = typeof size === "number" ? [size, size] : size;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => Number.isSafeInteger(v) && v >= 1)) {
    throw new RangeError(
      `Augment: randomResizedCrop.size must be a positive integer or [height, width], got ${JSON.stringify(size)}`,
    );
  }
  return pair as [number, number];
}

// ---- RandomResizedCrop.get_params ------------------------------------------------------------

/** torchvision's RandomResizedCrop.get_params for an H×W image, drawing from `rng`. */
export function sampleCropBox(rng: Random, height: number, width: number, scale: Range, ratio: Range): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(0, height - h + 1);
      const left = rng.int(0, width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  return centerFallbackBox(height, width, ratio);
}

/** get_params's fallback: the centred crop of the whole image, its ratio clamped into `ratio`. */
export function centerFallbackBox(height: number, width: number, ratio: Range): CropBox {
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(...ratio)) {
    w = width;
    h = roundHalfEven(w / Math.min(...ratio));
  } else if (inRatio > Math.max(...ratio)) {
    h = height;
    w = roundHalfEven(h * Math.max(...ratio));
  } else {
    w = width;
    h = height;
  }
  return { top: Math.floor((height - h) / 2), left: Math.floor((width - w) / 2), height: h, width: w };
}

// ---- the pipeline ----------------------------------------------------------------------------------

type Resolved =
  | { op: "randomResizedCrop"; size: [number, number]; scale: Range; ratio: Range }
  | ({ op: "colorJitter" } & ResolvedJitter)
  | { op: "randomGrayscale"; p: number }
  | { op: "gaussianBlur"; sigma: Range; p: number }
  | { op: "horizontalFlip"; p: number };

function resolveStep(step: AugmentStep, index: number): Resolved {
  if (typeof step !== "object" || step === null) throw new TypeError(`Augment: step ${index} must be an object`);
  switch (step.op) {
    case "randomResizedCrop":
      return {
        op: step.op,
        size: resolveSize(step.size),
        scale: checkRange(step.scale ?? [0.08, 1], "randomResizedCrop.scale", true),
        ratio: checkRange(step.ratio ?? [3 / 4, 4 / 3], "randomResizedCrop.ratio", true),
      };
    case "colorJitter":
      return { op: step.op, ...resolveJitter(step) };
    case "randomGrayscale":
      return { op: step.op, p: checkProbability(step.p, "randomGrayscale.p") };
    case "gaussianBlur":
      return {
        op: step.op,
        sigma: checkRange(step.sigma, "gaussianBlur.sigma", true),
        p: checkProbability(step.p ?? 1, "gaussianBlur.p"),
      };
    case "horizontalFlip":
      return { op: step.op, p: checkProbability(step.p ?? 0.5, "horizontalFlip.p") };
    default:
      throw new TypeError(
        `Augment: step ${index} has unknown op ${JSON.stringify((step as { op?: unknown }).op)} ` +
          "(expected randomResizedCrop, colorJitter, randomGrayscale, gaussianBlur or horizontalFlip)",
      );
  }
}

function countWhere(flags: ArrayLike<number>): number {
  let k = 0;
  for (let i = 0; i < flags.length; i++) if (flags[i]) k++;
  return k;
}

/** A random augmentation pipeline over batches: uint8 or float [B, C, H, W] → float [B, C', h, w]. */
export class Augment {
  readonly config: AugmentConfig;
  /** [height, width] of the output. */
  readonly outputSize: readonly [number, number];
  readonly #steps: readonly Resolved[];

  constructor(config: AugmentConfig) {
    if (typeof config !== "object" || config === null || !Array.isArray(config.steps)) {
      throw new TypeError("Augment: config must be { steps: [...], normalize }");
    }
    const steps = config.steps.map(resolveStep);
    const first = steps[0];
    if (first === undefined || first.op !== "randomResizedCrop") {
      throw new RangeError("Augment: the first step must be randomResizedCrop (it sets the output size)");
    }
    if (steps.slice(1).some((s) => s.op === "randomResizedCrop"))
      throw new RangeError("Augment: only one randomResizedCrop step is supported");
    if (config.normalize !== null && config.normalize !== undefined) {
      const { mean, std } = config.normalize;
      if (
        !Array.isArray(mean) ||
        !Array.isArray(std) ||
        mean.length !== std.length ||
        (mean.length !== 1 && mean.length !== 3)
      ) {
        throw new RangeError("Augment: normalize.mean and normalize.std must both have 1 or 3 entries");
      }
      if (std.some((s) => !(s > 0)))
        throw new RangeError(`Augment: normalize.std must be positive, got [${std.join(", ")}]`);
    }
    this.config = config;
    this.#steps = steps;
    this.outputSize = first.size;
  }

  /** Draws the parameters for a batch of n images of size height × width. */
  sample(rng: Random, n: number, height: number, width: number): AugmentParams {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new RangeError(`Augment.sample: n must be a non-negative integer, got ${n}`);
    const params: StepParams[] = this.#steps.map((s): StepParams => {
      switch (s.op) {
        case "randomResizedCrop":
          return { op: s.op, boxes: [] };
        case "colorJitter":
          return {
            op: s.op,
            applied: new Uint8Array(n),
            order: new Uint8Array(4 * n),
            brightness: new Float64Array(n).fill(NaN),
            contrast: new Float64Array(n).fill(NaN),
            saturation: new Float64Array(n).fill(NaN),
            hue: new Float64Array(n).fill(NaN),
          };
        case "gaussianBlur":
          return { op: s.op, sigma: new Float64Array(n) };
        default:
          return { op: s.op, applied: new Uint8Array(n) };
      }
    });
    for (let i = 0; i < n; i++) {
      this.#steps.forEach((s, k) => {
        const out = params[k] as StepParams;
        switch (s.op) {
          case "randomResizedCrop":
            (out as CropParams).boxes.push(sampleCropBox(rng, height, width, s.scale, s.ratio));
            break;
          case "colorJitter": {
            const j = out as JitterParams;
            if (s.p < 1 && !(rng.random() <= s.p)) break;
            j.applied[i] = 1;
            j.order.set(rng.permutation(4), 4 * i);
            if (s.brightness !== null) j.brightness[i] = rng.uniform(...s.brightness);
            if (s.contrast !== null) j.contrast[i] = rng.uniform(...s.contrast);
            if (s.saturation !== null) j.saturation[i] = rng.uniform(...s.saturation);
            if (s.hue !== null) j.hue[i] = rng.uniform(...s.hue);
            break;
          }
          case "gaussianBlur":
            if (s.p < 1 && !(rng.random() <= s.p)) break;
            (out as BlurParams).sigma[i] = rng.uniform(...s.sigma);
            break;
          case "randomGrayscale":
          case "horizontalFlip":
            (out as GrayscaleParams | FlipParams).applied[i] = rng.random() < s.p ? 1 : 0;
            break;
        }
      });
    }
    return { n, height, width, steps: params };
  }

  /** Applies drawn parameters (deterministic). uint8 input is read as x / 255. */
  applyWith(images: Tensor, params: AugmentParams): Tensor {
    if (images.ndim !== 4)
      throw new RangeError(`Augment: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
    const [n, c, height, width] = images.shape as [number, number, number, number];
    if (c !== 1 && c !== 3) throw new RangeError(`Augment: expects 1 or 3 channels, got ${c}`);
    if (params.n !== n || params.height !== height || params.width !== width) {
      throw new RangeError(
        `Augment: parameters drawn for ${params.n} images of ${params.height}×${params.width}, got ${n} of ${height}×${width}`,
      );
    }
    if (images.dtype !== "uint8" && images.dtype !== "float32")
      throw new TypeError(`Augment: expects uint8 or float32 images, got ${images.dtype}`);
    // Large images go through in groups of images whose planes stay small (~8 MB): libtorch's
    // big allocations are fresh pages from the kernel, and V8 runs a full GC whenever native
    // memory grows fast; smaller live tensors avoid both. The result is the same.
    const [outH, outW] = this.outputSize;
    const group = Math.max(1, Math.floor(GROUP_VALUES / (c * outH * outW)));
    if (n > group) {
      return scope(() => {
        const parts: Tensor[] = [];
        for (let start = 0; start < n; start += group) {
          const end = Math.min(n, start + group);
          parts.push(this.applyWith(images.narrow(0, start, end - start), sliceParams(params, start, end)));
        }
        return cat(parts, 0);
      });
    }
    return scope(() => {
      const flips = new Uint8Array(n);
      for (const p of params.steps) {
        if (p.op === "horizontalFlip")
          for (let i = 0; i < n; i++) flips[i] = (flips[i] as number) ^ (p.applied[i] as number);
      }
      let x = this.crop(images, (params.steps[0] as CropParams).boxes, flips);
      // Each step frees the previous result at once: fewer live planes, less GC pressure.
      const replace = (next: Tensor) => {
        x.dispose();
        x = next;
      };
      for (const p of params.steps) {
        if (p.op === "colorJitter") replace(applyJitter(x, p));
        else if (p.op === "randomGrayscale" && c === 3 && countWhere(p.applied) > 0)
          replace(rgbToGrayscale(x, p.applied));
        else if (p.op === "gaussianBlur" && p.sigma.some((s) => s > 0)) replace(blurSubset(x, p.sigma));
      }
      if (this.config.normalize !== null && this.config.normalize !== undefined)
        replace(normalize(x, this.config.normalize));
      return x;
    });
  }

  /**
   * The crops (and flips) of the batch as float in [0, 1]. uint8 images are converted in chunks of
   * at most ~4M values, so that large working sizes (e.g. 256×256) never hold the whole batch in
   * float; the 0..255 values are sampled, then scaled (the same as sampling x / 255).
   */
  private crop(images: Tensor, boxes: CropBox[], flips: Uint8Array): Tensor {
    if (images.dtype !== "uint8") return resizedCrop(images, boxes, this.outputSize, flips);
    const [n, c, h, w] = images.shape as [number, number, number, number];
    const chunk = Math.max(1, Math.floor(CROP_CHUNK_VALUES / (c * h * w)));
    return scope(() => {
      const parts: Tensor[] = [];
      for (let start = 0; start < n; start += chunk) {
        const k = Math.min(chunk, n - start);
        parts.push(
          scope(() =>
            resizedCrop(
              images.narrow(0, start, k).to("float32"),
              boxes.slice(start, start + k),
              this.outputSize,
              flips.subarray(start, start + k),
            ),
          ),
        );
      }
      const out = parts.length === 1 ? (parts[0] as Tensor) : cat(parts, 0);
      return out.div_(255);
    });
  }

  /** Draws parameters from `rng` and applies them. */
  apply(images: Tensor, rng: Random): Tensor {
    const [n, , height, width] = images.shape as [number, number, number, number];
    return this.applyWith(images, this.sample(rng, n, height, width));
  }
}

/** The parameters of images start..end-1 of a batch. */
export function sliceParams(params: AugmentParams, start: number, end: number): AugmentParams {
  const steps = params.steps.map((p): StepParams => {
    switch (p.op) {
      case "randomResizedCrop":
        return { op: p.op, boxes: p.boxes.slice(start, end) };
      case "colorJitter":
        return {
          op: p.op,
          applied: p.applied.subarray(start, end),
          order: p.order.subarray(4 * start, 4 * end),
          brightness: p.brightness.subarray(start, end),
          contrast: p.contrast.subarray(start, end),
          saturation: p.saturation.subarray(start, end),
          hue: p.hue.subarray(start, end),
        };
      case "gaussianBlur":
        return { op: p.op, sigma: p.sigma.subarray(start, end) };
      default:
        return { op: p.op, applied: p.applied.subarray(start, end) };
    }
  });
  return { n: end - start, height: params.height, width: params.width, steps };
}

/**
 * ColorJitter with a per-image order: four slots; in slot s image i gets operation order[4i + s].
 * Brightness, contrast and saturation are all blends, out = f·x + (1 − f)·ref with ref = 0, the
 * grayscale mean or the grayscale image, so one slot's three run as ONE blend over the batch with
 * per-image f and ref (f = 1, an exact identity, for images whose op in this slot is another one).
 * Each image's arithmetic is torchvision's (ref is selected by multiplying with exact 0/1).
 * Hue, the costly one, runs on the images that get it in the slot only.
 */
function applyJitter(images: Tensor, p: JitterParams): Tensor {
  const [n, c] = images.shape as [number, number];
  let x = images;
  const factors = [p.brightness, p.contrast, p.saturation];
  for (let slot = 0; slot < 4; slot++) {
    const f = new Float64Array(n).fill(1);
    const useMean = new Uint8Array(n);
    const useGray = new Uint8Array(n);
    let any = false;
    for (let i = 0; i < n; i++) {
      if (!p.applied[i]) continue;
      const op = p.order[4 * i + slot] as number;
      if (op === 3 || (op === 2 && c === 1)) continue; // hue below; saturation has no effect on gray images
      const v = (factors[op] as Float64Array)[i] as number;
      if (Number.isNaN(v)) continue; // disabled
      f[i] = v;
      any = true;
      if (op === 1) useMean[i] = 1;
      if (op === 2) useGray[i] = 1;
    }
    if (any) x = step(x, blendSlot(x, f, useMean, useGray), images);
    if (c === 1) continue; // hue has no effect on gray images
    const subset: number[] = [];
    for (let i = 0; i < n; i++)
      if (p.applied[i] && p.order[4 * i + slot] === 3 && !Number.isNaN(p.hue[i] as number)) subset.push(i);
    if (subset.length > 0)
      x = step(
        x,
        hueOnSubset(
          x,
          subset,
          subset.map((i) => p.hue[i] as number),
        ),
        images,
      );
  }
  return x === images ? images.clone() : x;
}

/** (f·x + (1 − f)·ref).clamp(0, 1) with ref = useGray·gray + useMean·mean(gray) per image. */
function blendSlot(x: Tensor, f: Float64Array, useMean: Uint8Array, useGray: Uint8Array): Tensor {
  const n = f.length;
  const column = (values: ArrayLike<number>) => onDeviceOf(fromTypedArray(Float32Array.from(values), [n, 1, 1, 1]), x);
  return scope(() => {
    const out = x.mul(column(f));
    const anyMean = useMean.some((v) => v === 1);
    if (anyMean || useGray.some((v) => v === 1)) {
      const gray = grayscale(x); // [B, 1, H, W]
      const ref = gray.mul(column(useGray));
      if (anyMean) ref.add_(gray.mean([1, 2, 3], true).mul_(column(useMean)));
      gray.dispose();
      ref.mul_(column(Array.from(f, (v) => 1 - v)));
      out.add_(ref);
      ref.dispose();
    }
    return out.clamp_(0, 1);
  });
}

/** Frees the previous intermediate (never the caller's input) and returns the next. */
function step(previous: Tensor, next: Tensor, input: Tensor): Tensor {
  if (previous !== input) previous.dispose();
  return next;
}

function hueOnSubset(images: Tensor, subset: number[], shifts: number[]): Tensor {
  return onSubset(images, subset, (x) => adjustHue(x, shifts));
}

/** Applies `fn` to the images of `subset` only (gather, compute, scatter back). */
function onSubset(images: Tensor, subset: number[], fn: (x: Tensor) => Tensor): Tensor {
  const [n, c, h, w] = images.shape as [number, number, number, number];
  if (subset.length === n) return fn(images);
  return scope(() => {
    const idx = onDeviceOf(fromTypedArray(Int32Array.from(subset), [subset.length], "int32").long(), images);
    const part = images.indexSelect(0, idx);
    const done = fn(part);
    part.dispose();
    return images.scatter(0, idx.view(subset.length, 1, 1, 1).expand(subset.length, c, h, w), done);
  });
}

/** Gaussian blur of the images with σ > 0 only. */
function blurSubset(images: Tensor, sigma: Float64Array): Tensor {
  const subset: number[] = [];
  sigma.forEach((s, i) => {
    if (s > 0) subset.push(i);
  });
  return onSubset(images, subset, (x) =>
    gaussianBlur(
      x,
      subset.map((i) => sigma[i] as number),
    ),
  );
}

// ---- presets -------------------------------------------------------------------------------------------

export interface PresetOptions {
  /** Output size (224 in the papers; 32 for CIFAR, 28 for Fashion-MNIST). */
  size: number;
  /** Normalisation constants (default ImageNet's, as the official code); null to skip. */
  stats?: ChannelStats | null;
  /** RandomResizedCrop scale range (default [0.2, 1], as the official code). */
  scale?: Range;
}

/** MoCo v1 (main_moco.py without --aug-plus): crop, grayscale 0.2, jitter 0.4 always, flip. */
export function mocoV1Config(options: PresetOptions): AugmentConfig {
  return {
    steps: [
      { op: "randomResizedCrop", size: options.size, scale: options.scale ?? [0.2, 1] },
      { op: "randomGrayscale", p: 0.2 },
      { op: "colorJitter", brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.4 },
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize: options.stats === undefined ? IMAGENET_STATS : options.stats,
  };
}

export interface V2PresetOptions extends PresetOptions {
  /**
   * σ range of the blur, in output pixels. Default: the official [0.1, 2.0] at 224, scaled by
   * size / 224 (so 28×28 outputs get [0.0125, 0.25]). Null leaves the blur out.
   */
  blurSigma?: Range | null;
}

/** MoCo v2 (--aug-plus): crop, jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale 0.2, blur p 0.5, flip. */
export function mocoV2Config(options: V2PresetOptions): AugmentConfig {
  const k = options.size / 224;
  const sigma = options.blurSigma === undefined ? ([0.1 * k, 2.0 * k] as const) : options.blurSigma;
  return {
    steps: [
      { op: "randomResizedCrop", size: options.size, scale: options.scale ?? [0.2, 1] },
      { op: "colorJitter", brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
      { op: "randomGrayscale", p: 0.2 },
      ...(sigma === null ? [] : [{ op: "gaussianBlur", sigma, p: 0.5 } as const]),
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize: options.stats === undefined ? IMAGENET_STATS : options.stats,
  };
}

/**
 * The official CIFAR-10 demo's (moco_cifar10_demo.ipynb): RandomResizedCrop(32) with torchvision's
 * default scale [0.08, 1], jitter (0.4, 0.4, 0.4, 0.1) p 0.8, grayscale 0.2, flip; no blur.
 */
export function cifarDemoConfig(options: Partial<PresetOptions> & { stats?: ChannelStats | null } = {}): AugmentConfig {
  return {
    steps: [
      { op: "randomResizedCrop", size: options.size ?? 32, scale: options.scale ?? [0.08, 1] },
      { op: "colorJitter", brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1, p: 0.8 },
      { op: "randomGrayscale", p: 0.2 },
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize:
      options.stats === undefined ? { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] } : options.stats,
  };
}

// ---- two views -------------------------------------------------------------------------------------

export interface TwoViews {
  /** float [B, C, h, w]: the query view x_q. */
  query: Tensor;
  /** float [B, C, h, w]: the key view x_k, an independent draw of the same pipeline. */
  key: Tensor;
}

/** MoCo's TwoCropsTransform over batches: two independent draws from one seeded stream. */
export class TwoViewAugment {
  readonly augment: Augment;
  readonly rng: Random;

  constructor(augment: Augment | AugmentConfig, options: { seed?: number; rng?: Random } = {}) {
    this.augment = augment instanceof Augment ? augment : new Augment(augment);
    if (options.rng !== undefined && options.seed !== undefined)
      throw new TypeError("TwoViewAugment: give seed or rng, not both");
    this.rng = options.rng ?? new Random(options.seed ?? 0);
  }

  apply(images: Tensor): TwoViews {
    return scope(() => ({ query: this.augment.apply(images, this.rng), key: this.augment.apply(images, this.rng) }));
  }

  /** The generator's state, for checkpoints. */
  getState(): RandomState {
    return this.rng.getState();
  }
  setState(state: RandomState): void {
    this.rng.setState(state);
  }
}

// ---- evaluation -----------------------------------------------------------------------------------

export interface EvalTransformOptions {
  /** Output size; images larger than it are centre-cropped (torchvision's CenterCrop), smaller ones resized (bilinear). Default: unchanged. */
  size?: number | Range;
  stats: ChannelStats | null;
}

/** The un-augmented view for feature banks and evaluation: centre crop, x / 255, Normalize. */
export function evalTransform(images: Tensor, options: EvalTransformOptions): Tensor {
  if (images.ndim !== 4)
    throw new RangeError(`evalTransform: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
  const [n, , height, width] = images.shape as [number, number, number, number];
  const [h, w] = options.size === undefined ? [height, width] : resolveSize(options.size);
  return scope(() => {
    let x: Tensor;
    if (h <= height && w <= width) {
      const top = Math.trunc(roundHalfEven((height - h) / 2));
      const left = Math.trunc(roundHalfEven((width - w) / 2));
      x = toFloatImages(images.narrow(2, top, h).narrow(3, left, w));
    } else {
      const box: CropBox = { top: 0, left: 0, height, width };
      x = resizedCrop(
        toFloatImages(images),
        Array.from({ length: n }, () => box),
        [h, w],
      );
    }
    return options.stats === null ? x : normalize(x, options.stats);
  });
}
