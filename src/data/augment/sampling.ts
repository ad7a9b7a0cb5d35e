// The random part of augmentation: the parameters of every step for every image of a batch,
// drawn as torchvision's transforms draw them, from our own seeded generator (../random.ts).
//
// Drawing order, per image and per step (the images of a batch one after another, as
// torchvision's Compose would process them one by one):
//   RandomResizedCrop: get_params's up to 10 tries (area fraction uniform in scale, log-ratio
//     uniform in log(ratio), then top and left) and its centre-crop fallback, on the image's size
//     (one size for a batch held in memory; each image's own for image folders, whose crops are
//     cut while decoding: sampleDecodeParams);
//   ColorJitter: [a coin when p < 1, applied when coin <= p (RandomApply)], then if applied a
//     random order of the four operations and brightness, contrast, saturation, hue factors;
//   RandomGrayscale: a coin, applied when coin < p;
//   GaussianBlur: [a coin when p < 1, applied when coin <= p], then σ uniform in the range;
//   RandomHorizontalFlip: a coin, applied when coin < p.
import { roundHalfEven, type CropBox } from "./ops.js";
import type { Random } from "../random.js";
import type { Range, Resolved } from "./steps.js";

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

/** An image's size as [height, width]. */
export type ImageSize = readonly [number, number];

/** Draws the parameters of `steps` for a batch of n images of size height × width. */
export function sampleParams(
  steps: readonly Resolved[],
  rng: Random,
  n: number,
  height: number,
  width: number,
): AugmentParams {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`Augment.sample: n must be a non-negative integer, got ${n}`);
  const size: ImageSize = [height, width];
  return { n, height, width, steps: drawSteps(steps, rng, n, () => size) };
}

/**
 * The parameters of images whose crop is cut while they are decoded (image folders): each image's
 * RandomResizedCrop box drawn on its own size, as torchvision draws it on the decoded image.
 */
export interface DecodeParams {
  /** Per image, its crop box on the image as decoded. */
  boxes: CropBox[];
  /**
   * Per image, 1 where the crop is mirrored (RandomHorizontalFlip): done while decoding, as the
   * in-memory path folds it into the crop's sampling grid (a flip commutes with every later step).
   */
  flips: Uint8Array;
  /**
   * The rest of the pipeline, for the crops once decoded (cut, resized and mirrored) at the output
   * size: the crop step's boxes are the whole output image and the flip steps flip nothing, so
   * applyParams has nothing left to resample.
   */
  rest: AugmentParams;
}

/** Draws the parameters of `steps` for images of the given sizes (`outputSize`: the crop step's). */
export function sampleDecodeParams(
  steps: readonly Resolved[],
  rng: Random,
  sizes: readonly ImageSize[],
  outputSize: readonly [number, number],
): DecodeParams {
  for (const [i, size] of sizes.entries()) {
    if (!Array.isArray(size) || size.length !== 2 || !size.every((v) => Number.isSafeInteger(v) && v >= 1))
      throw new RangeError(
        `Augment.sampleForDecoding: size ${i} must be [height, width] in pixels, got ${String(size)}`,
      );
  }
  const n = sizes.length;
  const drawn = drawSteps(steps, rng, n, (i) => sizes[i] as ImageSize);
  const crop = drawn[0] as CropParams;
  const [height, width] = outputSize;
  const whole: CropBox = { top: 0, left: 0, height, width };
  const flips = new Uint8Array(n);
  const rest = drawn.map((p): StepParams => {
    if (p.op === "randomResizedCrop") return { op: p.op, boxes: p.boxes.map(() => whole) };
    if (p.op !== "horizontalFlip") return p;
    for (let i = 0; i < n; i++) flips[i] = (flips[i] as number) ^ (p.applied[i] as number);
    return { op: p.op, applied: new Uint8Array(n) };
  });
  return { boxes: crop.boxes, flips, rest: { n, height, width, steps: rest } };
}

/** The per-step parameters of n images, image after image; `sizeOf(i)` is image i's size. */
function drawSteps(steps: readonly Resolved[], rng: Random, n: number, sizeOf: (i: number) => ImageSize): StepParams[] {
  const params: StepParams[] = steps.map((s): StepParams => {
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
    steps.forEach((s, k) => {
      const out = params[k] as StepParams;
      switch (s.op) {
        case "randomResizedCrop": {
          const [height, width] = sizeOf(i);
          (out as CropParams).boxes.push(sampleCropBox(rng, height, width, s.scale, s.ratio));
          break;
        }
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
  return params;
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
