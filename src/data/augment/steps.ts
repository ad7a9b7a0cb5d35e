// An augmentation pipeline's configuration (torchvision's Compose of the steps below, then
// Normalize) and its validation: every step is checked and its defaults filled in once, when the
// pipeline is built, so that sampling and application never meet a malformed step.
import type { ChannelStats } from "../dataset.js";

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

// ---- validation ------------------------------------------------------------------------------------

export function checkProbability(p: unknown, what: string): number {
  if (typeof p !== "number" || !(p >= 0 && p <= 1))
    throw new RangeError(`Augment: ${what} must be a probability in [0, 1], got ${String(p)}`);
  return p;
}

export function checkRange(range: unknown, what: string, positive: boolean): Range {
  if (!Array.isArray(range) || range.length !== 2 || !range.every((v) => typeof v === "number" && Number.isFinite(v))) {
    throw new TypeError(`Augment: ${what} must be a pair of numbers [low, high], got ${JSON.stringify(range)}`);
  }
  const [lo, hi] = range as [number, number];
  if (lo > hi || (positive && !(lo > 0))) {
    throw new RangeError(`Augment: ${what} must satisfy ${positive ? "0 < " : ""}low <= high, got [${lo}, ${hi}]`);
  }
  return [lo, hi];
}

export function checkNonNegative(v: unknown, what: string): number {
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v))
    throw new RangeError(`Augment: ${what} must be a non-negative number, got ${String(v)}`);
  return v;
}

export interface ResolvedJitter {
  brightness: Range | null;
  contrast: Range | null;
  saturation: Range | null;
  hue: Range | null;
  p: number;
}

/** torchvision's ColorJitter._check_input: [max(0, 1 − x), 1 + x], hue [−h, h]; 0 → disabled. */
export function resolveJitter(step: ColorJitterStep): ResolvedJitter {
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

export function resolveSize(size: unknown): [number, number] {
  const pair = typeof size === "number" ? [size, size] : size;
  if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((v) => Number.isSafeInteger(v) && v >= 1)) {
    throw new RangeError(
      `Augment: randomResizedCrop.size must be a positive integer or [height, width], got ${JSON.stringify(size)}`,
    );
  }
  return pair as [number, number];
}

/** A step after validation, with its defaults filled in. */
export type Resolved =
  | { op: "randomResizedCrop"; size: [number, number]; scale: Range; ratio: Range }
  | ({ op: "colorJitter" } & ResolvedJitter)
  | { op: "randomGrayscale"; p: number }
  | { op: "gaussianBlur"; sigma: Range; p: number }
  | { op: "horizontalFlip"; p: number };

export function resolveStep(step: AugmentStep, index: number): Resolved {
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

/** A whole configuration, validated: its resolved steps and the output size its crop sets. */
export interface ResolvedPipeline {
  steps: readonly Resolved[];
  /** [height, width] of the output. */
  outputSize: readonly [number, number];
}

export function resolvePipeline(config: AugmentConfig): ResolvedPipeline {
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
  return { steps, outputSize: first.size };
}

// ---- description -----------------------------------------------------------------------------------

/**
 * One line saying what a pipeline does, e.g. for a run's header: "crop 0.5–1 of the area → 28×28, …",
 * from its resolved steps (defaults filled in); jitter ranges as given (x of [max(0, 1 − x), 1 + x]).
 */
export function describeAugment(config: AugmentConfig): string {
  const n = (x: number) => String(Number(x.toPrecision(3)));
  const chance = (p: number) => (p === 1 ? "" : ` p ${n(p)}`);
  const parts = resolvePipeline(config).steps.map((step): string => {
    switch (step.op) {
      case "randomResizedCrop":
        return `crop ${n(step.scale[0])}–${n(step.scale[1])} of the area → ${step.size[0]}×${step.size[1]}`;
      case "colorJitter": {
        const ranges = [
          ["brightness", step.brightness && step.brightness[1] - 1],
          ["contrast", step.contrast && step.contrast[1] - 1],
          ["saturation", step.saturation && step.saturation[1] - 1],
          ["hue", step.hue && step.hue[1]],
        ] as const;
        const given = ranges.filter(([, x]) => x !== null).map(([key, x]) => `${key} ${n(x as number)}`);
        return given.length === 0 ? "no colour jitter" : `colour jitter ${given.join(", ")}${chance(step.p)}`;
      }
      case "randomGrayscale":
        return `grayscale${chance(step.p)}`;
      case "gaussianBlur":
        return `blur σ ${n(step.sigma[0])}–${n(step.sigma[1])} px${chance(step.p)}`;
      case "horizontalFlip":
        return `flip${chance(step.p)}`;
    }
  });
  return parts.join(", ");
}
