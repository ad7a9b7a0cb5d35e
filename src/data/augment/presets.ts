// The MoCo v1/v2 pipelines (the official main_moco.py) and the official CIFAR demo's.
import { IMAGENET_STATS, type ChannelStats } from "../dataset.js";
import type { AugmentConfig, Range } from "./steps.js";

export interface PresetOptions {
  /** Output size (224 in the papers; 32 for CIFAR, 28 for Fashion-MNIST). */
  size: number;
  /** Normalisation constants (default ImageNet's, as the official code); null to skip. */
  stats?: ChannelStats | null;
  /** RandomResizedCrop scale range (default [0.2, 1], as the official code). */
  scale?: Range;
  /**
   * Brightness, contrast and saturation ranges of the colour jitter (default 0.4, as the official
   * code); the hue range stays the recipe's. 0 leaves them out.
   */
  jitter?: number;
}

function jitterRanges(options: { jitter?: number }): { brightness: number; contrast: number; saturation: number } {
  const x = options.jitter ?? 0.4;
  if (!(x >= 0)) throw new RangeError(`colour jitter must be a range >= 0, got ${x}`);
  return { brightness: x, contrast: x, saturation: x };
}

/** MoCo v1 (main_moco.py without --aug-plus): crop, grayscale 0.2, jitter 0.4 always, flip. */
export function mocoV1Config(options: PresetOptions): AugmentConfig {
  return {
    steps: [
      { op: "randomResizedCrop", size: options.size, scale: options.scale ?? [0.2, 1] },
      { op: "randomGrayscale", p: 0.2 },
      { op: "colorJitter", ...jitterRanges(options), hue: 0.4 },
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
      { op: "colorJitter", ...jitterRanges(options), hue: 0.1, p: 0.8 },
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
      { op: "colorJitter", ...jitterRanges(options), hue: 0.1, p: 0.8 },
      { op: "randomGrayscale", p: 0.2 },
      { op: "horizontalFlip", p: 0.5 },
    ],
    normalize:
      options.stats === undefined ? { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] } : options.stats,
  };
}
