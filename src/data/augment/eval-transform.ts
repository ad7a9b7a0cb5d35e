// The un-augmented view of evaluation and feature banks: no randomness, torchvision's CenterCrop
// (or a resize when the output is larger), then Normalize.
import { scope, type Tensor } from "../../torch/index.js";
import type { ChannelStats } from "../dataset.js";
import { normalize, resizedCrop, roundHalfEven, toFloatImages, type CropBox } from "./ops.js";
import { resolveSize, type Range } from "./steps.js";

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
