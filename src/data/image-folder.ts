// Image folders, decoded on the fly with sharp (JPEG, PNG, WebP).
//
// Layout, as torchvision's ImageFolder: ROOT/<class>/**/<image> gives labelled data, classes sorted
// by name and numbered from 0; a flat ROOT/<image> folder gives unlabelled data. With a split,
// ROOT/train is the training split and ROOT/val (or ROOT/test) the test split. Files are taken
// by extension (.jpg .jpeg .png .webp, any case); hidden files and folders are ignored.
//
// Two ways to decode. Alpha is dropped without compositing (PIL's convert("RGB")) and EXIF
// orientation is not applied (PIL's loader does not apply it either), in both.
//
// - `batch` (evaluation, feature banks, kNN, `moco embed`): every image at one fixed working size,
//   so that a batch is one uint8 tensor [B, C, S, S]: its shorter side resized to S (sharp's
//   "linear" kernel, antialiased when it shrinks) and the centre S×S kept (sharp's fit "cover"), i.e.
//   torchvision's Resize(S) + CenterCrop(S); the eval transform then centre-crops its output size.
// - `imageSizes` + `decodeCrops` (training views, the loader's `views` option): RandomResizedCrop's
//   box is drawn on the image's own size, as torchvision draws it on the decoded image, and each
//   view is cut and resized while decoding, straight to its final size (cutCrop). Crops reach every
//   edge of a non-square image, as torchvision's do. A large image whose crops all shrink 3× or more
//   is decoded reduced first (JPEG shrink-on-load; REDUCE_WHILE_DECODING_FROM).
//
// Decoding runs on libuv's thread pool (UV_THREADPOOL_SIZE threads, one image per thread), so it
// overlaps with the synchronous tensor work of the training step.
import { readdir } from "node:fs/promises";
import { extname, join } from "node:path";

import sharp, { type OutputInfo, type Sharp } from "sharp";

import { F, fromBytes, keep, scope, stack, tensor, type Tensor } from "../torch/index.js";
import type { ImageSize } from "./augment/sampling.js";
import type { CropBox } from "./augment/ops.js";
import {
  DatasetError,
  IMAGENET_STATS,
  checkSubsetSize,
  indexArray,
  type ChannelStats,
  type CropDecoding,
  type CropSources,
  type CropView,
  type ImageDataset,
  type Indices,
} from "./dataset.js";
import type { Split } from "./fashion-mnist.js";
import { statOrNull, statOrThrow } from "./files.js";

export const IMAGE_EXTENSIONS: readonly string[] = [".jpg", ".jpeg", ".png", ".webp"];

/** ImageNet's statistics seen through ITU-R 601-2 luma, for folders read as gray. */
export const IMAGENET_GRAY_STATS: ChannelStats = { mean: [0.449], std: [0.226] };

export interface ImageFolderOptions {
  root: string;
  /** ROOT/train for "train", ROOT/val or ROOT/test for "test"; omitted: ROOT itself. */
  split?: Split;
  /** The working size S: shorter side resized to S, centre S×S kept. Default 256. */
  size?: number;
  /** 3 (RGB, default) or 1 (gray). */
  channels?: 1 | 3;
  /**
   * Decode every image once when opening and leave out the ones that fail (listed in `skipped`).
   * Costs one decoding pass over the folder. Without it a bad image makes `batch` throw an error
   * naming the file.
   */
  skipBadImages?: boolean;
  /** Called for each image left out by skipBadImages. */
  onSkip?: (path: string, reason: string) => void;
}

export interface SkippedImage {
  path: string;
  reason: string;
}

function isImageFile(name: string): boolean {
  return IMAGE_EXTENSIONS.includes(extname(name).toLowerCase());
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A file name as text, or null when its bytes are not UTF-8. */
function decodeName(bytes: Buffer): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Printable ASCII as is, every other byte as \\xNN. */
function escapeName(bytes: Buffer): string {
  return [...bytes]
    .map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`))
    .join("");
}

async function listDir(dir: string): Promise<{ files: string[]; dirs: string[] }> {
  let entries;
  try {
    // As bytes: a name that is not UTF-8 would otherwise come back with U+FFFD in it, a path
    // that does not exist, and a misleading "not found" later.
    entries = await readdir(dir, { withFileTypes: true, encoding: "buffer" });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new DatasetError("NOT_FOUND", dir, "folder not found", { cause });
    if (code === "ENOTDIR") throw new DatasetError("LAYOUT", dir, "not a folder", { cause });
    throw new DatasetError("UNREADABLE", dir, `cannot read folder: ${(cause as Error).message}`, { cause });
  }
  const files: string[] = [];
  const dirs: string[] = [];
  for (const entry of entries) {
    const name = decodeName(entry.name);
    if (name === null) {
      // Refused only where it matters: a class folder, a link, or what would be an image.
      const shown = escapeName(entry.name);
      if (entry.isDirectory() || entry.isSymbolicLink() || isImageFile(shown)) {
        throw new DatasetError(
          "LAYOUT",
          dir,
          `the name "${shown}" in this folder is not valid UTF-8; rename it (e.g. with convmv) to read it`,
        );
      }
      continue;
    }
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    // Follow symbolic links, as torchvision's os.walk(followlinks=True).
    const isDir = entry.isDirectory() || (entry.isSymbolicLink() && statOrNull(path)?.isDirectory() === true);
    const isFile = entry.isFile() || (entry.isSymbolicLink() && statOrNull(path)?.isFile() === true);
    if (isDir) dirs.push(name);
    else if (isFile && isImageFile(name)) files.push(name);
  }
  files.sort();
  dirs.sort();
  return { files, dirs };
}

/** Every image under `dir`, depth first, sorted at each level. */
async function walkImages(dir: string, out: string[] = [], depth = 0): Promise<string[]> {
  if (depth > 32) throw new DatasetError("LAYOUT", dir, "folders nested more than 32 deep (a link cycle?)");
  const { files, dirs } = await listDir(dir);
  for (const f of files) out.push(join(dir, f));
  for (const d of dirs) await walkImages(join(dir, d), out, depth + 1);
  return out;
}

function resolveRoot(root: string, split: Split | undefined): string {
  if (split === undefined) return root;
  if (split !== "train" && split !== "test")
    throw new TypeError(`openImageFolder: split must be "train" or "test", got ${String(split)}`);
  statOrThrow(root, "image folder");
  const candidates = split === "train" ? ["train"] : ["val", "test"];
  for (const name of candidates) {
    if (statOrNull(join(root, name))?.isDirectory() === true) return join(root, name);
  }
  throw new DatasetError(
    "NOT_FOUND",
    join(root, candidates[0] as string),
    `no ${split} split folder (looked for ${candidates.join(", ")})`,
  );
}

/** A decoding failure as the DatasetError naming the file (NOT_FOUND or CORRUPT). */
function decodeError(path: string, cause: unknown): DatasetError {
  if (cause instanceof DatasetError) return cause;
  const message = (cause as Error).message.split("\n")[0] ?? "";
  const missing = /no such file|ENOENT|Input file is missing/i.test(message);
  return new DatasetError(
    missing ? "NOT_FOUND" : "CORRUPT",
    path,
    missing ? "image not found" : `cannot decode image: ${message}`,
    { cause },
  );
}

/** The pipeline's output in the folder's colour space: sRGB, or one gray channel. */
function inColourSpace(pipeline: Sharp, channels: 1 | 3): Sharp {
  return channels === 1 ? pipeline.toColourspace("b-w") : pipeline.toColourspace("srgb");
}

/**
 * Decodes one image (a file, or its bytes: `moco serve`'s uploads) to uint8 HWC bytes of the working
 * size; errors name the file. `limitInputPixels` refuses larger images before decoding them.
 */
export async function decodeImage(
  input: string | Buffer,
  size: number,
  channels: 1 | 3,
  limitInputPixels?: number,
): Promise<Uint8Array> {
  const path = typeof input === "string" ? input : "(image bytes)";
  try {
    const limit = limitInputPixels === undefined ? {} : { limitInputPixels };
    const pipeline = sharp(input, { failOn: "warning", sequentialRead: true, ...limit })
      .resize(size, size, { fit: "cover", position: "centre", kernel: "linear" })
      .removeAlpha();
    const { data, info } = await inColourSpace(pipeline, channels)
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (
      info.width !== size ||
      info.height !== size ||
      info.channels !== channels ||
      data.length !== size * size * channels
    ) {
      throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${size}×${size}×${channels}`);
    }
    return data;
  } catch (cause) {
    throw decodeError(path, cause);
  }
}

/** An image's size as decoded ([height, width]: the first page's; EXIF orientation not applied), read from its header. */
export async function readImageSize(path: string): Promise<ImageSize> {
  try {
    const meta = await sharp(path, { failOn: "warning" }).metadata();
    const height = meta.pageHeight ?? meta.height;
    const width = meta.width;
    if (!(Number.isSafeInteger(height) && height >= 1 && Number.isSafeInteger(width) && width >= 1))
      throw new Error(`no image size in its header (${String(width)}×${String(height)})`);
    return [height, width];
  } catch (cause) {
    throw decodeError(path, cause);
  }
}

/** One crop of a training view: the box on the image as decoded, and whether it is mirrored. */
export interface CropRequest {
  box: CropBox;
  flip: boolean;
}

/**
 * Decodes one image once and cuts each requested crop from it, resized to `size` = [h, w] and
 * mirrored where asked (cutCrop): a float32 tensor [C, h, w] of values in [0, 1] per crop, the
 * caller's. `expected` is the size the boxes were drawn on (readImageSize); an image decoded in full
 * that decodes to another size is an error naming the file. When every crop shrinks by REDUCE_WHILE_DECODING_FROM or more, the image is decoded
 * reduced (decodeReduced) and the boxes scaled onto it.
 */
export async function decodeImageCrops(
  path: string,
  crops: readonly CropRequest[],
  size: readonly [number, number],
  channels: 1 | 3,
  expected: ImageSize,
): Promise<Tensor[]> {
  for (const { box } of crops) {
    if (
      ![box.top, box.left, box.height, box.width].every(Number.isSafeInteger) ||
      !(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1) ||
      box.top + box.height > expected[0] ||
      box.left + box.width > expected[1]
    )
      throw new RangeError(
        `decodeImageCrops: box ${JSON.stringify(box)} is not inside the ${expected[0]}×${expected[1]} image ${path}`,
      );
  }
  // How much the least reduced crop shrinks on its least reduced axis (1 with no crops: nothing to gain).
  const reduction =
    crops.length === 0 ? 1 : Math.min(...crops.map(({ box }) => Math.min(box.height / size[0], box.width / size[1])));
  const { image, scale } =
    reduction >= REDUCE_WHILE_DECODING_FROM
      ? await decodeReduced(path, expected, reduction, channels)
      : { image: await decodeFull(path, expected, channels), scale: null };
  try {
    return scope(() => {
      const hwc = fromBytes(image.data, "uint8", [image.height, image.width, image.channels]);
      return crops.map((crop) =>
        cutCrop(hwc, scale === null ? crop : { ...crop, box: scaleBox(crop.box, scale) }, size),
      );
    });
  } catch (cause) {
    throw decodeError(path, cause);
  }
}

/**
 * From this factor on (every crop of an image shrunk at least this much on both axes), the image is
 * decoded reduced: libjpeg's shrink-on-load (DCT scaling by 2, 4 or 8), which sharp applies from a
 * reduction of 3 up, is what makes a large photo cheap to decode (JPEGs of 3000×2000, two views at
 * 224: 72 images/s instead of 40 at one thread, `npm run bench -- folder-pipeline-large`). Below it
 * the full decode is kept: shrink-on-load would not apply, and the crops stay those of PIL's single
 * resample.
 */
export const REDUCE_WHILE_DECODING_FROM = 3;

async function decodeFull(path: string, expected: ImageSize, channels: 1 | 3): Promise<RawImage> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(path, { failOn: "warning", sequentialRead: true }).removeAlpha();
    decoded = await inColourSpace(pipeline, channels).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw decodeError(path, cause);
  }
  const { data, info } = decoded;
  if (info.height !== expected[0] || info.width !== expected[1] || info.channels !== channels) {
    throw new DatasetError(
      "CORRUPT",
      path,
      `decoded to ${info.width}×${info.height}×${info.channels}, its header says ${expected[1]}×${expected[0]}×${channels}`,
    );
  }
  return { data, height: info.height, width: info.width, channels };
}

/** How the boxes drawn on the image's own size map onto a reduced decode: [rows, columns] per pixel. */
type BoxScale = readonly [number, number];

/**
 * The image decoded reduced by `reduction` (rounded to whole pixels), so that the most reduced crop
 * is then cut at about its final size: sharp's resize with its "linear" kernel (PIL's antialiased
 * triangle filter), after libjpeg's shrink-on-load where sharp applies it. The crops then go through
 * two resamplings instead of one: measured against PIL's crops of the full image, a mean difference
 * of about half a level (test/data-folder-crops.test.ts).
 */
async function decodeReduced(
  path: string,
  expected: ImageSize,
  reduction: number,
  channels: 1 | 3,
): Promise<{ image: RawImage; scale: BoxScale }> {
  const height = Math.max(1, Math.round(expected[0] / reduction));
  const width = Math.max(1, Math.round(expected[1] / reduction));
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    const pipeline = sharp(path, { failOn: "warning", sequentialRead: true })
      .resize(width, height, { fit: "fill", kernel: "linear" })
      .removeAlpha();
    decoded = await inColourSpace(pipeline, channels).raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (cause) {
    throw decodeError(path, cause);
  }
  const { data, info } = decoded;
  if (info.height !== height || info.width !== width || info.channels !== channels)
    throw new DatasetError(
      "CORRUPT",
      path,
      `decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×${channels}`,
    );
  return { image: { data, height, width, channels }, scale: [height / expected[0], width / expected[1]] };
}

/** A box on the image's own size, on the reduced decode: each edge scaled and rounded to a pixel. */
function scaleBox(box: CropBox, [rows, columns]: BoxScale): CropBox {
  const top = Math.round(box.top * rows);
  const left = Math.round(box.left * columns);
  return {
    top,
    left,
    height: Math.max(1, Math.round((box.top + box.height) * rows) - top),
    width: Math.max(1, Math.round((box.left + box.width) * columns) - left),
  };
}

interface RawImage {
  data: Buffer;
  height: number;
  width: number;
  channels: 1 | 3;
}

/**
 * torchvision's F.resized_crop on a PIL image (the official MoCo pipeline): the box cut, then resized
 * to `size` with PIL's BILINEAR, a triangle filter widened by the factor on an axis that shrinks and
 * plain bilinear interpolation with clamped edges on one that grows, each axis on its own; mirrored
 * where asked (a flip commutes with the centred resampling). Done with libtorch's antialiased
 * bilinear interpolation (F.interpolate's antialias, which torchvision matches to PIL) and scaled
 * to [0, 1] (ToTensor's x / 255) without rounding to uint8 first: within one level of PIL's crop
 * once rounded (test/data-folder-crops.test.ts), and no uint8 round trip before the colour steps.
 * It is 2–4× cheaper than a sharp pipeline per crop (sharp's own cost per pipeline is ~0.6 ms at
 * 224², and growing axes needed a second one); it runs on the thread that awaits the decode.
 * `image` is the decoded image, uint8 [H, W, C]; returns float32 [C, h, w].
 */
function cutCrop(image: Tensor, crop: CropRequest, size: readonly [number, number]): Tensor {
  const { box, flip } = crop;
  return scope(() => {
    const region = image
      .narrow(0, box.top, box.height)
      .narrow(1, box.left, box.width)
      .permute(2, 0, 1)
      .unsqueeze(0)
      .to("float32");
    const resized = F.interpolate(region, { size: [size[0], size[1]], mode: "bilinear", antialias: true });
    const oriented = flip ? resized.flip(3) : resized;
    return oriented.div_(255).squeeze(0);
  });
}

interface FolderContents {
  files: string[];
  labels: number[] | null;
  classNames: string[];
}

async function scanFolder(dir: string): Promise<FolderContents> {
  const { files, dirs } = await listDir(dir);
  const classes: { name: string; files: string[] }[] = [];
  for (const name of dirs) {
    const images = await walkImages(join(dir, name));
    classes.push({ name, files: images });
  }
  const withImages = classes.filter((c) => c.files.length > 0);
  if (withImages.length === 0) {
    if (files.length === 0)
      throw new DatasetError(
        "EMPTY",
        dir,
        `no images (${IMAGE_EXTENSIONS.join(" ")}) in the folder or its sub-folders`,
      );
    return { files: files.map((f) => join(dir, f)), labels: null, classNames: [] };
  }
  if (files.length > 0) {
    throw new DatasetError(
      "LAYOUT",
      dir,
      `images both at the top (${files[0]}, ...) and in class sub-folders (${withImages[0]?.name}/, ...): ` +
        "put every image in a class sub-folder (labelled) or all at the top (unlabelled)",
    );
  }
  const empty = classes.find((c) => c.files.length === 0);
  if (empty !== undefined) throw new DatasetError("EMPTY", join(dir, empty.name), "class folder without images");
  return {
    files: classes.flatMap((c) => c.files),
    labels: classes.flatMap((c, label) => c.files.map(() => label)),
    classNames: classes.map((c) => c.name),
  };
}

/**
 * Per view, a new float32 tensor [B, C, h, w] of values in [0, 1]: file i's box `views[v].boxes[i]`
 * cut, resized to [h, w] = `size` and mirrored where `views[v].flips[i]` (decodeFileCropList,
 * stacked).
 */
export async function decodeFileCrops(
  sources: CropSources,
  views: readonly CropView[],
  size: readonly [number, number],
): Promise<Tensor[]> {
  const crops = await decodeFileCropList(sources, views, size);
  try {
    return scope(() => crops.map((parts) => stack(parts, 0)));
  } finally {
    for (const parts of crops) for (const t of parts) t.dispose();
  }
}

/**
 * Per view, per file, a new float32 tensor [C, h, w] of values in [0, 1]: file i's box
 * `views[v].boxes[i]` cut, resized to [h, w] = `size` and mirrored where `views[v].flips[i]`. Each
 * file is decoded once for all its views; at most UV_THREADPOOL_SIZE files are decoded at a time
 * (each holds its decoded image until its crops are cut, on the calling thread). The tensors are the
 * caller's; on failure none is left.
 */
export async function decodeFileCropList(
  sources: CropSources,
  views: readonly CropView[],
  size: readonly [number, number],
): Promise<Tensor[][]> {
  const { files, sizes, channels: c } = sources;
  const [h, w] = size;
  if (!(Number.isSafeInteger(h) && h >= 1 && Number.isSafeInteger(w) && w >= 1))
    throw new RangeError(`decodeCrops: size must be two positive integers, got [${size.join(", ")}]`);
  if (sizes.length !== files.length)
    throw new RangeError(`decodeCrops: ${sizes.length} image sizes for ${files.length} files`);
  for (const [v, view] of views.entries()) {
    if (view.boxes.length !== files.length || view.flips.length !== files.length)
      throw new RangeError(`decodeCrops: view ${v} needs one box and one flip per image (${files.length})`);
  }
  // crops[v][i]: view v of file i.
  const crops: Tensor[][] = views.map(() => []);
  try {
    await forEachLimited(files, threadPoolSize(), async (path, i) => {
      const requests = views.map((view) => ({ box: view.boxes[i] as CropBox, flip: Boolean(view.flips[i]) }));
      const cut = await decodeImageCrops(path, requests, size, c, sizes[i] as [number, number]);
      cut.forEach((t, v) => ((crops[v] as Tensor[])[i] = t));
    });
    return crops;
  } catch (error) {
    for (const parts of crops) parts.forEach((t) => t.dispose()); // forEach skips the files not cut
    throw error;
  }
}

/** Runs `fn` on every item with at most `limit` promises pending. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function threadPoolSize(): number {
  const n = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
  return Number.isSafeInteger(n) && n > 0 ? n : 4;
}

interface FolderState {
  name: string;
  root: string;
  files: readonly string[];
  labels: readonly number[] | null;
  classNames: readonly string[];
  size: number;
  channels: 1 | 3;
  skipped: readonly SkippedImage[];
}

/** An image folder decoded on the fly; `batch` is asynchronous. */
export class ImageFolderDataset implements ImageDataset, CropDecoding {
  readonly name: string;
  readonly root: string;
  /** The image files, in dataset order. */
  readonly files: readonly string[];
  readonly labels: Tensor | null;
  readonly classNames: readonly string[];
  readonly channels: 1 | 3;
  readonly height: number;
  readonly width: number;
  readonly stats: ChannelStats;
  readonly inMemory = false;
  /** Images left out by skipBadImages when the folder was opened. */
  readonly skipped: readonly SkippedImage[];
  readonly #labelList: readonly number[] | null;
  /** Each image's [height, width] as decoded, read once from its header (0: not read yet). */
  readonly #sizes: Int32Array;

  /** @internal Use openImageFolder. */
  constructor(state: FolderState) {
    this.name = state.name;
    this.root = state.root;
    this.files = state.files;
    this.#labelList = state.labels;
    this.labels =
      state.labels === null ? null : keep(scope(() => tensor(state.labels as number[], { dtype: "int64" })));
    this.classNames = state.classNames;
    this.channels = state.channels;
    this.height = state.size;
    this.width = state.size;
    this.stats = state.channels === 3 ? IMAGENET_STATS : IMAGENET_GRAY_STATS;
    this.skipped = state.skipped;
    this.#sizes = new Int32Array(2 * state.files.length);
  }

  get length(): number {
    return this.files.length;
  }
  get numClasses(): number {
    return this.labels === null ? 0 : this.classNames.length;
  }

  /** Decodes the images (in parallel on libuv's pool) into a new uint8 tensor [B, C, S, S]. */
  async batch(indices: Indices): Promise<Tensor> {
    const list = indexArray(indices, this.length, this.name);
    const { height: h, width: w, channels: c } = this;
    const per = h * w * c;
    const hwc = new Uint8Array(list.length * per);
    await Promise.all(
      list.map(async (k, i) => {
        hwc.set(await decodeImage(this.files[k] as string, h, c), i * per);
      }),
    );
    return scope(() => fromBytes(hwc, "uint8", [list.length, h, w, c]).permute(0, 3, 1, 2).contiguous());
  }

  /** Each image's size as decoded, [height, width], read from its header (once per image: kept). */
  async imageSizes(indices: Indices): Promise<[number, number][]> {
    const list = indexArray(indices, this.length, this.name);
    return Promise.all(list.map((k) => this.#sizeOf(k)));
  }

  async #sizeOf(k: number): Promise<[number, number]> {
    const sizes = this.#sizes;
    if ((sizes[2 * k] as number) > 0) return [sizes[2 * k] as number, sizes[2 * k + 1] as number];
    const [height, width] = await readImageSize(this.files[k] as string);
    sizes[2 * k] = height;
    sizes[2 * k + 1] = width;
    return [height, width];
  }

  /** The files of these images, their sizes as decoded and the channels read: what decodeFileCrops needs. */
  async cropSources(indices: Indices): Promise<CropSources> {
    const list = indexArray(indices, this.length, this.name);
    return {
      files: list.map((k) => this.files[k] as string),
      sizes: await Promise.all(list.map((k) => this.#sizeOf(k))),
      channels: this.channels,
    };
  }

  /**
   * Per view, a new float32 tensor [B, C, h, w] of values in [0, 1]: image i's box `views[v].boxes[i]` (on the image as
   * decoded: imageSizes) cut, resized to [h, w] = `size` and mirrored where `views[v].flips[i]`
   * (decodeFileCrops).
   */
  async decodeCrops(indices: Indices, views: readonly CropView[], size: readonly [number, number]): Promise<Tensor[]> {
    return decodeFileCrops(await this.cropSources(indices), views, size);
  }

  subset(n: number): ImageFolderDataset {
    checkSubsetSize(n, this.length, this.name);
    return new ImageFolderDataset({
      name: `${this.name} (first ${n})`,
      root: this.root,
      files: this.files.slice(0, n),
      labels: this.#labelList === null ? null : this.#labelList.slice(0, n),
      classNames: this.classNames,
      size: this.height,
      channels: this.channels,
      skipped: this.skipped,
    });
  }

  select(indices: readonly number[], name: string): ImageFolderDataset {
    const list = indexArray(indices, this.length, this.name);
    const labels = this.#labelList;
    return new ImageFolderDataset({
      name,
      root: this.root,
      files: list.map((k) => this.files[k] as string),
      labels: labels === null ? null : list.map((k) => labels[k] as number),
      classNames: this.classNames,
      size: this.height,
      channels: this.channels,
      skipped: this.skipped,
    });
  }

  dispose(): void {
    this.labels?.dispose();
  }
}

/** Opens an image folder: lists the images (and verifies them with skipBadImages). */
export async function openImageFolder(options: ImageFolderOptions): Promise<ImageFolderDataset> {
  const size = options.size ?? 256;
  if (!Number.isSafeInteger(size) || size < 1)
    throw new RangeError(`openImageFolder: size must be a positive integer, got ${String(size)}`);
  const channels = options.channels ?? 3;
  if (channels !== 1 && channels !== 3)
    throw new RangeError(`openImageFolder: channels must be 1 or 3, got ${String(channels)}`);
  const dir = resolveRoot(options.root, options.split);
  const contents = await scanFolder(dir);
  let { files, labels } = contents;
  const skipped: SkippedImage[] = [];
  if (options.skipBadImages === true) {
    const bad = new Set<number>();
    await forEachLimited(files, threadPoolSize() * 2, async (path, i) => {
      try {
        await decodeImage(path, size, channels);
      } catch (error) {
        bad.add(i);
        const reason = error instanceof DatasetError ? error.message.slice(path.length + 2) : String(error);
        skipped.push({ path, reason });
      }
    });
    skipped.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    for (const s of skipped) options.onSkip?.(s.path, s.reason);
    if (bad.size > 0) {
      files = files.filter((_, i) => !bad.has(i));
      labels = labels === null ? null : labels.filter((_, i) => !bad.has(i));
    }
    if (files.length === 0) throw new DatasetError("EMPTY", dir, `none of the ${bad.size} images could be decoded`);
  }
  return new ImageFolderDataset({
    name: `folder ${dir}`,
    root: dir,
    files,
    labels,
    classNames: contents.classNames,
    size,
    channels,
    skipped,
  });
}
