// Batched image operations with per-sample parameters, each the batched equivalent of one
// torchvision 0.14 functional op on float tensors in [0, 1] (torchvision/transforms/
// functional_tensor.py): a whole batch goes through a few tensor ops, the per-sample parameters
// become [B, 1, 1, 1] tensors that broadcast. Images are float [B, C, H, W] with C = 1 or 3.
// Every function returns a new tensor in the caller's scope and frees its intermediates.
import { F, fromTypedArray, scope, stack, tensor, where, zeros, type Tensor } from "../../torch/index.js";
import type { ChannelStats } from "../dataset.js";

/** A crop box in pixels, as torchvision's (i, j, h, w) = (top, left, height, width). */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Per-sample values: one number (or flag) per image of the batch. */
export type PerSample = ArrayLike<number>;

function checkImages(
  images: Tensor,
  op: string,
  channels: readonly number[] = [1, 3],
): [number, number, number, number] {
  if (images.ndim !== 4) throw new RangeError(`${op}: expects images [B, C, H, W], got [${images.shape.join(", ")}]`);
  if (images.dtype !== "float32" && images.dtype !== "float64") {
    throw new TypeError(`${op}: expects float images in [0, 1], got ${images.dtype} (use toFloatImages)`);
  }
  const c = images.shape[1] as number;
  if (!channels.includes(c)) throw new RangeError(`${op}: expects ${channels.join(" or ")} channels, got ${c}`);
  return images.shape as [number, number, number, number];
}

function checkPerSample(values: PerSample, n: number, what: string, op: string): void {
  if (values.length !== n)
    throw new RangeError(`${op}: ${what} must have one value per image (${n}), got ${values.length}`);
}

/**
 * A small tensor made on the CPU (per-sample parameters, grids, kernels) moved to the device of
 * the images, so that the ops also run on CUDA tensors (only the CPU path is tested here).
 */
export function onDeviceOf(t: Tensor, like: Tensor): Tensor {
  const device = like.device;
  if (device === "cpu") return t;
  const moved = t.toDevice(device);
  t.dispose();
  return moved;
}

/** [B, 1, 1, 1] float32 tensor of per-sample values (computed in float64, stored as float32). */
function perSample(values: PerSample, like: Tensor, fn: (v: number) => number = (v) => v): Tensor {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = fn(values[i] as number);
  return onDeviceOf(fromTypedArray(out, [values.length, 1, 1, 1]), like);
}

/** [B, 1, 1, 1] bool mask. */
function perSampleMask(flags: PerSample, like: Tensor): Tensor {
  const out = new Uint8Array(flags.length);
  for (let i = 0; i < flags.length; i++) out[i] = flags[i] ? 1 : 0;
  return onDeviceOf(fromTypedArray(out, [flags.length, 1, 1, 1], "bool"), like);
}

/** uint8 [B, C, H, W] → float32 in [0, 1] (x / 255, as ToTensor). */
export function toFloatImages(images: Tensor): Tensor {
  if (images.dtype === "uint8") return scope(() => images.to("float32").div(255));
  if (images.dtype === "float32") return images.clone();
  throw new TypeError(`toFloatImages: expects uint8 or float32 images, got ${images.dtype}`);
}

/** Python's round(): halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torchvision's F.resized_crop for every image, each with its own box (antialias off: the crop is
 * resized with F.interpolate(bilinear, align_corners=False)), optionally mirrored (hflip of the
 * result). Implemented as one grid_sample over the batch: for output pixel x the source column
 * is left + clamp((x + 0.5)·w/outW − 0.5, 0, w − 1), exactly interpolate's sampling positions
 * (including its clamping at the crop edges), so the result equals crop-then-interpolate up to
 * float rounding of the grid (~1e-6).
 */
export function resizedCrop(
  images: Tensor,
  boxes: readonly CropBox[],
  size: readonly [number, number],
  flips?: PerSample,
): Tensor {
  const op = "resizedCrop";
  const [n, , height, width] = checkImages(images, op, [1, 2, 3, 4]);
  if (boxes.length !== n) throw new RangeError(`${op}: boxes must have one box per image (${n}), got ${boxes.length}`);
  if (flips !== undefined) checkPerSample(flips, n, "flips", op);
  const [outH, outW] = size;
  if (!Number.isSafeInteger(outH) || !Number.isSafeInteger(outW) || outH < 1 || outW < 1) {
    throw new RangeError(`${op}: size must be two positive integers, got [${size.join(", ")}]`);
  }
  const gx = new Float32Array(n * outW);
  const gy = new Float32Array(n * outH);
  const f = Math.fround;
  boxes.forEach((box, b) => {
    const { top, left, height: h, width: w } = box;
    if (
      !(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= height && left + w <= width) ||
      ![top, left, h, w].every(Number.isInteger)
    ) {
      throw new RangeError(`${op}: box ${b} ${JSON.stringify(box)} is not inside the ${height}×${width} image`);
    }
    // As PyTorch's upsample_bilinear2d: scale and source index in float32.
    const sx = f(w / outW);
    const sy = f(h / outH);
    const mirror = flips !== undefined && Boolean(flips[b]);
    for (let x = 0; x < outW; x++) {
      const src = Math.min(Math.max(f(f(sx * (x + 0.5)) - 0.5), 0), w - 1);
      gx[b * outW + (mirror ? outW - 1 - x : x)] = (2 * (left + src) + 1) / width - 1;
    }
    for (let y = 0; y < outH; y++) {
      const src = Math.min(Math.max(f(f(sy * (y + 0.5)) - 0.5), 0), h - 1);
      gy[b * outH + y] = (2 * (top + src) + 1) / height - 1;
    }
  });
  return scope(() => {
    const gridX = onDeviceOf(fromTypedArray(gx, [n, 1, outW]), images).expand(n, outH, outW);
    const gridY = onDeviceOf(fromTypedArray(gy, [n, outH, 1]), images).expand(n, outH, outW);
    let grid = stack([gridX, gridY], 3);
    if (images.dtype !== "float32") grid = grid.to(images.dtype);
    return F.gridSample(images, grid, { mode: "bilinear", paddingMode: "zeros", alignCorners: false });
  });
}

/** torchvision's F.hflip on the images whose flag is set (all of them without flags). */
export function horizontalFlip(images: Tensor, flags?: PerSample): Tensor {
  const [n] = checkImages(images, "horizontalFlip", [1, 2, 3, 4]);
  if (flags === undefined) return images.flip(3);
  checkPerSample(flags, n, "flags", "horizontalFlip");
  return scope(() => where(perSampleMask(flags, images), images.flip(3), images));
}

/** rgb_to_grayscale's luma: 0.2989 R + 0.587 G + 0.114 B as [B, 1, H, W] (C = 1: a copy). */
export function grayscale(images: Tensor): Tensor {
  const [, c] = checkImages(images, "grayscale");
  if (c === 1) return images.clone();
  return scope(() => {
    const [r, g, b] = [0, 1, 2].map((i) => images.select(1, i)) as [Tensor, Tensor, Tensor];
    const out = r.mul(0.2989);
    addDisposing(out, g.mul(0.587));
    addDisposing(out, b.mul(0.114));
    return out.unsqueeze(1);
  });
}

/** out += term, then frees term (keeps the peak of live native memory low). */
function addDisposing(out: Tensor, term: Tensor): void {
  out.add_(term);
  term.dispose();
}

/** torchvision's rgb_to_grayscale(img, 3) on the flagged images (RandomGrayscale); gray input: unchanged. */
export function rgbToGrayscale(images: Tensor, flags?: PerSample): Tensor {
  const [n, c] = checkImages(images, "rgbToGrayscale");
  if (flags !== undefined) checkPerSample(flags, n, "flags", "rgbToGrayscale");
  if (c === 1) return images.clone();
  return scope(() => {
    const gray = grayscale(images).expandAs(images);
    return flags === undefined ? gray.contiguous() : where(perSampleMask(flags, images), gray, images);
  });
}

/**
 * _blend(img1, img2, ratio) = (ratio·img1 + (1 − ratio)·img2).clamp(0, 1), ratio per sample;
 * img2 null means zeros (brightness). img2 is consumed (freed).
 */
function blend(img1: Tensor, img2: Tensor | null, ratios: PerSample): Tensor {
  return scope(() => {
    const out = img1.mul(perSample(ratios, img1));
    if (img2 !== null) addDisposing(out, img2.mul_(perSample(ratios, img1, (r) => 1 - r)));
    return out.clamp_(0, 1);
  });
}

function checkFactors(factors: PerSample, n: number, op: string): void {
  checkPerSample(factors, n, "factors", op);
  for (let i = 0; i < factors.length; i++) {
    if (!((factors[i] as number) >= 0))
      throw new RangeError(`${op}: factors must be non-negative, got ${factors[i]} for image ${i}`);
  }
}

/** adjust_brightness: blend with black. */
export function adjustBrightness(images: Tensor, factors: PerSample): Tensor {
  const [n] = checkImages(images, "adjustBrightness");
  checkFactors(factors, n, "adjustBrightness");
  return blend(images, null, factors);
}

/** adjust_contrast: blend with the mean of the image's grayscale version. */
export function adjustContrast(images: Tensor, factors: PerSample): Tensor {
  const [n] = checkImages(images, "adjustContrast");
  checkFactors(factors, n, "adjustContrast");
  return scope(() => {
    const gray = grayscale(images);
    const mean = gray.mean([1, 2, 3], true);
    gray.dispose();
    return blend(images, mean, factors);
  });
}

/** adjust_saturation: blend with the grayscale image; no effect on gray images (as torchvision). */
export function adjustSaturation(images: Tensor, factors: PerSample): Tensor {
  const [n, c] = checkImages(images, "adjustSaturation");
  checkFactors(factors, n, "adjustSaturation");
  if (c === 1) return images.clone();
  return scope(() => blend(images, grayscale(images), factors));
}

// The HSV round trip below follows torchvision's _rgb2hsv/_hsv2rgb operation for operation, with
// its boolean masks and `where`s written as float 0/1 indicators (1 − sign(d) is 1 exactly where
// d = 0, for d ≥ 0), which libtorch runs much faster on the CPU, and with in-place updates so that
// few planes are alive at once. Every selection multiplies the chosen value by 1 and the others by
// 0, so the values are torchvision's. Images are assumed to be in [0, 1].

/** 1 where d == 0, 0 where d > 0 (for d ≥ 0); consumes d. */
function isZero(d: Tensor): Tensor {
  const out = d.sign();
  d.dispose();
  return out.mul_(-1).add_(1);
}

/** _rgb2hsv: [B, 3, H, W] → h, s, v planes [B, H, W]. */
function rgbToHsv(images: Tensor): [Tensor, Tensor, Tensor] {
  return scope(() => {
    const [r, g, b] = [0, 1, 2].map((i) => images.select(1, i)) as [Tensor, Tensor, Tensor];
    const maxc = scope(() => r.maximum(g).maximum(b));
    const { s, rc, gc, bc } = scope(() => {
      const cr = scope(() => maxc.sub(r.minimum(g).minimum(b)));
      const eqc = isZero(cr.clone());
      // torch.where(eqc, 1, maxc): when eqc, cr = 0, so cr / (maxc + 1) is the same 0.
      const s = cr.div(maxc.add(eqc));
      const crDivisor = cr.add_(eqc); // torch.where(eqc, 1, cr)
      return {
        s,
        rc: maxc.sub(r).div_(crDivisor),
        gc: maxc.sub(g).div_(crDivisor),
        bc: maxc.sub(b).div_(crDivisor),
      };
    });
    const isR = isZero(maxc.sub(r));
    const isG = isZero(maxc.sub(g));
    const h = bc.sub(gc).mul_(isR); // hr = (maxc == r) * (bc - gc)
    const notR = isR.mul_(-1).add_(1);
    addDisposing(h, rc.add(2).sub_(bc).mul_(isG).mul_(notR)); // hg = ((maxc == g) & (maxc != r)) * (2 + rc - bc)
    addDisposing(h, gc.add(4).sub_(rc).mul_(isG.mul_(-1).add_(1)).mul_(notR)); // hb = ((maxc != g) & (maxc != r)) * (4 + gc - rc)
    h.div_(6).add_(1);
    // torch.fmod(h / 6 + 1, 1) of a positive value: x − floor(x), exactly.
    const whole = h.floor();
    h.sub_(whole);
    return [h, s, maxc];
  });
}

// _hsv2rgb picks, per sector i = floor(6h) mod 6, one of (v, q, p, t) for each channel.
const SECTOR_PICKS: readonly (readonly ("v" | "q" | "p" | "t")[])[] = [
  ["v", "q", "p", "p", "t", "v"], // R
  ["t", "v", "v", "q", "p", "p"], // G
  ["p", "p", "t", "v", "v", "q"], // B
];

/** _hsv2rgb: h, s, v planes [B, H, W] (h in [0, 1)) → [B, 3, H, W]. */
function hsvToRgb(h: Tensor, s: Tensor, v: Tensor): Tensor {
  return scope(() => {
    const f = h.mul(6);
    const i = f.floor();
    f.sub_(i);
    const planes = {
      v,
      p: s.mul(-1).add_(1).mul_(v).clamp_(0, 1), // v * (1 - s)
      q: s.mul(f).mul_(-1).add_(1).mul_(v).clamp_(0, 1), // v * (1 - s * f)
      t: f.mul(-1).add_(1).mul_(s).mul_(-1).add_(1).mul_(v).clamp_(0, 1), // v * (1 - s * (1 - f))
    };
    const sector = scope(() => i.sub(i.div(6).floor().mul_(6))); // i % 6, exact small integers
    const [n, height, width] = h.shape as [number, number, number];
    const out = zeros([n, 3, height, width], { dtype: h.dtype, device: h.device });
    const channels = [0, 1, 2].map((c) => out.select(1, c));
    for (let k = 0; k < 6; k++) {
      const d = sector.sub(k);
      const mask = d.mul_(d).clamp_(0, 1).mul_(-1).add_(1); // 1 where sector == k
      channels.forEach((channel, c) => channel.addcmul_(mask, planes[SECTOR_PICKS[c]?.[k] ?? "v"]));
      mask.dispose();
    }
    return out;
  });
}

/** adjust_hue: rotate the hue by `shifts` (in [-0.5, 0.5], per sample); no effect on gray images. */
export function adjustHue(images: Tensor, shifts: PerSample): Tensor {
  const [n, c] = checkImages(images, "adjustHue");
  checkPerSample(shifts, n, "shifts", "adjustHue");
  for (let i = 0; i < n; i++) {
    const s = shifts[i] as number;
    if (!(s >= -0.5 && s <= 0.5))
      throw new RangeError(`adjustHue: shifts must be in [-0.5, 0.5], got ${s} for image ${i}`);
  }
  if (c === 1) return images.clone();
  return scope(() => {
    const [h, s, v] = rgbToHsv(images);
    // (h + shift) % 1.0 (torch.remainder): x − floor(x), exactly.
    h.add_(perSample(shifts, h).squeeze(1));
    const whole = h.floor();
    h.sub_(whole);
    whole.dispose();
    return hsvToRgb(h, s, v);
  });
}

/** The Gaussian kernel size used for σ: 2·ceil(3σ) + 1 (±3σ, odd). */
export function blurKernelSize(sigma: number): number {
  return 2 * Math.ceil(3 * sigma) + 1;
}

/** torchvision's _get_gaussian_kernel1d (computed in float64). */
export function gaussianKernel1d(kernelSize: number, sigma: number): Float64Array {
  const half = (kernelSize - 1) / 2;
  const out = new Float64Array(kernelSize);
  let sum = 0;
  for (let k = 0; k < kernelSize; k++) {
    const x = (k - half) / sigma;
    out[k] = Math.exp(-0.5 * x * x);
    sum += out[k] as number;
  }
  for (let k = 0; k < kernelSize; k++) out[k] = (out[k] as number) / sum;
  return out;
}

/**
 * torchvision's tensor gaussian_blur(img, [k, k], [σ, σ]) per image, with reflect padding; σ ≤ 0
 * leaves the image unchanged. The kernel size is `kernelSizes[i]` or blurKernelSize(σ), reduced
 * to the largest odd size that reflect padding allows (2·min(H, W) − 1). The batch runs as one
 * separable depthwise convolution: every image gets its kernel zero-padded to the largest size,
 * which with reflect padding gives the same result as its own size.
 */
export function gaussianBlur(images: Tensor, sigmas: PerSample, kernelSizes?: PerSample): Tensor {
  const op = "gaussianBlur";
  const [n, c, height, width] = checkImages(images, op);
  checkPerSample(sigmas, n, "sigmas", op);
  if (kernelSizes !== undefined) checkPerSample(kernelSizes, n, "kernelSizes", op);
  const maxSize = 2 * Math.min(height, width) - 1;
  const sizes = Array.from({ length: n }, (_, i) => {
    const sigma = sigmas[i] as number;
    if (!(sigma <= 0) && !(sigma > 0)) throw new RangeError(`${op}: sigma of image ${i} is ${sigma}`);
    if (sigma <= 0) return 1;
    const k = kernelSizes === undefined ? blurKernelSize(sigma) : (kernelSizes[i] as number);
    if (!Number.isSafeInteger(k) || k < 1 || k % 2 === 0)
      throw new RangeError(`${op}: kernel sizes must be odd positive integers, got ${k}`);
    return Math.min(k, maxSize);
  });
  const kMax = Math.max(...sizes);
  if (kMax === 1) return images.clone();
  const radius = (kMax - 1) / 2;
  const weights = new Float32Array(n * kMax);
  sizes.forEach((k, i) => {
    const kernel = k === 1 ? Float64Array.of(1) : gaussianKernel1d(k, sigmas[i] as number);
    weights.set(kernel, i * kMax + (kMax - k) / 2);
  });
  return scope(() => {
    // [B, C, H, W] → [1, B·C, H, W]: one channel group per (image, channel), each with its image's kernel.
    const w = onDeviceOf(fromTypedArray(weights, [n, 1, kMax]), images)
      .expand(n, c, kMax)
      .reshape(n * c, 1, kMax);
    const x = F.pad(images.reshape(1, n * c, height, width), [radius, radius, radius, radius], { mode: "reflect" });
    const vertical = F.conv2d(x, w.view(n * c, 1, kMax, 1), null, { groups: n * c });
    const both = F.conv2d(vertical, w.view(n * c, 1, 1, kMax), null, { groups: n * c });
    return both.view(n, c, height, width);
  });
}

/**
 * torchvision's Normalize: (x − mean) / std per channel. Gray images with 3-channel constants
 * (e.g. ImageNet's) are first repeated to 3 channels.
 */
export function normalize(images: Tensor, stats: ChannelStats): Tensor {
  const [n, c, h, w] = checkImages(images, "normalize");
  const k = stats.mean.length;
  if (k !== stats.std.length || (k !== 1 && k !== 3)) {
    throw new RangeError(
      `normalize: mean and std must both have 1 or 3 entries, got ${stats.mean.length} and ${stats.std.length}`,
    );
  }
  if (stats.std.some((s) => !(s > 0)))
    throw new RangeError(`normalize: std must be positive, got [${stats.std.join(", ")}]`);
  return scope(() => {
    const x = k === 3 && c === 1 ? images.expand(n, 3, h, w) : images;
    const mean = tensor([...stats.mean], { dtype: images.dtype, device: images.device }).view(1, k, 1, 1);
    const std = tensor([...stats.std], { dtype: images.dtype, device: images.device }).view(1, k, 1, 1);
    return x.sub(mean).div_(std);
  });
}
