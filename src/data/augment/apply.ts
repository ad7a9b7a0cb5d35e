// The deterministic part of augmentation: drawn parameters (sampling.ts) applied to a whole batch
// at once. Horizontal flips commute with every other step here (pixel-wise colour operations, a
// contrast mean, a symmetric blur kernel with reflect padding), so they are folded into the crop's
// sampling grid: the same result as flipping at the end, for free.
//
// Gaussian blur: the official v2 code blurs PIL images with ImageFilter.GaussianBlur(radius=σ);
// on tensors we use torchvision's tensor gaussian_blur with σ drawn the same way and the kernel
// size 2·ceil(3σ) + 1 (±3σ), reflect padding (ops.ts).
//
// Performance: a batch goes through a few dozen tensor ops whatever its size; per-image values
// become [B, 1, 1, 1] tensors. Native memory is invisible to V8 except through external-memory
// accounting, which triggers full GCs when it grows fast, so intermediates are freed as soon as
// the next one exists, and large outputs go through in groups of images (GROUP_VALUES).
import { cat, fromTypedArray, scope, type Tensor } from "../../torch/index.js";
import type { ChannelStats } from "../dataset.js";
import {
  adjustHue,
  gaussianBlur,
  grayscale,
  horizontalFlip,
  normalize,
  onDeviceOf,
  resizedCrop,
  rgbToGrayscale,
  toFloatImages,
  type CropBox,
} from "./ops.js";
import { sliceParams, type AugmentParams, type CropParams, type JitterParams } from "./sampling.js";

/** Images per group: at most this many output values (8 MB of float32) per intermediate tensor. */
const GROUP_VALUES = 2 * 2 ** 20;
/** uint8 → float conversion for the crop: at most this many input values at once. */
const CROP_CHUNK_VALUES = 4 * 2 ** 20;

/** What application needs of a pipeline: its output size and its Normalize constants. */
export interface ApplySettings {
  /** [height, width] of the output. */
  readonly outputSize: readonly [number, number];
  readonly normalize: ChannelStats | null | undefined;
}

function countWhere(flags: ArrayLike<number>): number {
  let k = 0;
  for (let i = 0; i < flags.length; i++) if (flags[i]) k++;
  return k;
}

/** How many images applyParams takes at a time (GROUP_VALUES output values): a batch's parts. */
export function imagesPerGroup(pipeline: ApplySettings, channels: number): number {
  const [outH, outW] = pipeline.outputSize;
  return Math.max(1, Math.floor(GROUP_VALUES / (channels * outH * outW)));
}

/** Applies drawn parameters (deterministic). uint8 input is read as x / 255. */
export function applyParams(pipeline: ApplySettings, images: Tensor, params: AugmentParams): Tensor {
  if (images.ndim !== 4) throw new RangeError(`Augment: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
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
  const group = imagesPerGroup(pipeline, c);
  if (n > group) {
    return scope(() => {
      const parts: Tensor[] = [];
      for (let start = 0; start < n; start += group) {
        const end = Math.min(n, start + group);
        parts.push(applyParams(pipeline, images.narrow(0, start, end - start), sliceParams(params, start, end)));
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
    // The caller's images themselves when they are float crops at the output size already.
    let x = cropBatch(images, (params.steps[0] as CropParams).boxes, pipeline.outputSize, flips);
    // Each step frees the previous result at once: fewer live planes, less GC pressure. A step on a
    // subset of the images writes into x itself once x is ours; the caller's images are never written.
    const replace = (next: Tensor) => {
      if (next === x) return;
      if (x !== images) x.dispose();
      x = next;
    };
    for (const p of params.steps) {
      if (p.op === "colorJitter") replace(applyJitter(x, p));
      else if (p.op === "randomGrayscale" && c === 3 && countWhere(p.applied) > 0)
        replace(rgbToGrayscale(x, p.applied));
      else if (p.op === "gaussianBlur" && p.sigma.some((s) => s > 0)) replace(blurSubset(x, p.sigma, x !== images));
    }
    if (pipeline.normalize !== null && pipeline.normalize !== undefined) replace(normalize(x, pipeline.normalize));
    return x === images ? images.clone() : x;
  });
}

/**
 * The crops (and flips) of the batch as float in [0, 1]: `images` itself when they are float32 crops
 * at the output size with nothing to flip (never written to). uint8 images are converted in chunks of
 * at most ~4M values, so that large working sizes (e.g. 256×256) never hold the whole batch in
 * float; the 0..255 values are sampled, then scaled (the same as sampling x / 255).
 */
function cropBatch(images: Tensor, boxes: CropBox[], outputSize: readonly [number, number], flips: Uint8Array): Tensor {
  // Crops already cut while decoding (image folders) come at the output size with whole-image
  // boxes: nothing to resample, so none of the sampling grid's float rounding either.
  if (wholeImages(images, boxes, outputSize)) {
    const x = images.dtype === "float32" ? images : toFloatImages(images);
    if (countWhere(flips) === 0) return x;
    const flipped = horizontalFlip(x, flips);
    if (x !== images) x.dispose();
    return flipped;
  }
  if (images.dtype !== "uint8") return resizedCrop(images, boxes, outputSize, flips);
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
            outputSize,
            flips.subarray(start, start + k),
          ),
        ),
      );
    }
    const out = parts.length === 1 ? (parts[0] as Tensor) : cat(parts, 0);
    return out.div_(255);
  });
}

/** Every box is the whole image and the image is already of the output size. */
function wholeImages(images: Tensor, boxes: readonly CropBox[], outputSize: readonly [number, number]): boolean {
  const [, , h, w] = images.shape as [number, number, number, number];
  const [outH, outW] = outputSize;
  return h === outH && w === outW && boxes.every((b) => b.top === 0 && b.left === 0 && b.height === h && b.width === w);
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
    if (subset.length > 0) {
      const shifts = subset.map((i) => p.hue[i] as number);
      // Into x itself once it is an intermediate of ours; the caller's images are never written.
      x = step(x, hueOnSubset(x, subset, shifts, x !== images), images);
    }
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

/** Frees the previous intermediate (never the caller's input, nor one updated in place) and returns the next. */
function step(previous: Tensor, next: Tensor, input: Tensor): Tensor {
  if (previous !== input && previous !== next) previous.dispose();
  return next;
}

function hueOnSubset(images: Tensor, subset: number[], shifts: number[], inPlace: boolean): Tensor {
  return onSubset(images, subset, (x) => adjustHue(x, shifts), inPlace);
}

/**
 * Applies `fn` to the images of `subset` only (gather, compute, copy back): into `images` itself when
 * `inPlace` (then the result is `images`; copying a fifth of a batch back costs far less than a copy
 * of all of it), else into a copy. With every image in `subset`, fn's own result.
 */
function onSubset(images: Tensor, subset: number[], fn: (x: Tensor) => Tensor, inPlace: boolean): Tensor {
  const n = images.shape[0] as number;
  if (subset.length === n) return fn(images);
  return scope(() => {
    const idx = onDeviceOf(fromTypedArray(Int32Array.from(subset), [subset.length], "int32").long(), images);
    const part = images.indexSelect(0, idx);
    const done = fn(part);
    part.dispose();
    return inPlace ? images.indexCopy_(0, idx, done) : images.indexCopy(0, idx, done);
  });
}

/** Gaussian blur of the images with σ > 0 only (into `images` itself when `inPlace`: onSubset). */
function blurSubset(images: Tensor, sigma: Float64Array, inPlace: boolean): Tensor {
  const subset: number[] = [];
  sigma.forEach((s, i) => {
    if (s > 0) subset.push(i);
  });
  return onSubset(
    images,
    subset,
    (x) =>
      gaussianBlur(
        x,
        subset.map((i) => sigma[i] as number),
      ),
    inPlace,
  );
}
