// An embedding index on disk, as `moco embed` writes it and `moco search` reads it:
//   embeddings.npy          float32 [N, D] (numpy.load)
//   embeddings.safetensors  the same tensor as "embeddings", for the Hugging Face world
//   ids.json                N strings: file paths for folders, "<dataset>/<split>/<index>" otherwise
//   labels.npy              int64 [N], when the data is labeled
//   index.json              how the embeddings were made (checkpoint, features, sizes), so that
//                           queries are embedded the same way
// Both embedding files are streamed batch by batch, so memory stays bounded whatever N is.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

import { writeFileAtomic, writeJsonAtomic } from "../util/atomic-file.js";

import type { ImageDataset } from "../data/dataset.js";
import { ImageFolderDataset } from "../data/image-folder.js";
import { embedDataset, embedPrecision, type EmbedOptions } from "../encoder/embed.js";
import type { Encoder, FeatureKind } from "../encoder/encoder.js";
import { NpyRowWriter, SafetensorsRowWriter, readNpy, writeNpy } from "../io/index.js";
import type { Tensor } from "../torch/index.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

export const INDEX_FILES = {
  npy: "embeddings.npy",
  safetensors: "embeddings.safetensors",
  ids: "ids.json",
  labels: "labels.npy",
  meta: "index.json",
} as const;

export interface IndexMeta {
  format: 1;
  checkpoint: string;
  part: "query" | "key";
  encoder: string;
  features: FeatureKind;
  normalized: boolean;
  count: number;
  dim: number;
  /** What was embedded. */
  dataset: { kind: string; name: string; root: string | null; split: string | null };
  /** Channels and side of the stored images (queries are decoded to this), and the crop fed to the network. */
  channels: number;
  storedSize: number;
  imageSize: number | null;
  /** Names of the classes labels.npy numbers (absent: unlabeled data, or an index written before they were kept). */
  classNames?: string[];
  /**
   * How the embeddings were computed (absent in indexes written before: float32, NCHW). Whoever
   * embeds queries for this index (moco serve) computes them the same way, so that an indexed image
   * sent again gets its stored vector.
   */
  precision?: { dtype: "float32" | "bfloat16" | "float16"; channelsLast: boolean };
}

export interface WriteIndexOptions extends EmbedOptions {
  dir: string;
  batchSize?: number;
  datasetInfo: IndexMeta["dataset"];
  onNote?: (note: string) => void;
  onProgress?: (done: number, total: number) => void;
}

/** Stable ids of a dataset's items: its file paths, or "<name>/<index>" for in-memory data. */
export function itemIds(dataset: ImageDataset, info: IndexMeta["dataset"]): string[] {
  if (dataset instanceof ImageFolderDataset) return [...dataset.files];
  const prefix = `${info.kind}/${info.split ?? "all"}`;
  return Array.from({ length: dataset.length }, (_, i) => `${prefix}/${i}`);
}

/** Embeds every image of `dataset` into an index folder; returns its metadata. */
export async function writeEmbeddingIndex(
  encoder: Encoder,
  dataset: ImageDataset,
  options: WriteIndexOptions,
): Promise<IndexMeta> {
  const { dir } = options;
  mkdirSync(dir, { recursive: true });
  const features = options.features ?? "backbone";
  const dim = encoder.dim(features);
  const normalized = options.normalize ?? true;
  const precision = embedPrecision(options);
  const npy = new NpyRowWriter(join(dir, INDEX_FILES.npy), { cols: dim });
  const safetensors = new SafetensorsRowWriter(join(dir, INDEX_FILES.safetensors), {
    name: "embeddings",
    rows: dataset.length,
    cols: dim,
    metadata: { checkpoint: encoder.info.path, features, normalized: String(normalized) },
  });
  try {
    await embedDataset(encoder, dataset, {
      ...options,
      onBatch: (embeddings, start) => {
        npy.append(embeddings);
        safetensors.append(embeddings);
        options.onProgress?.(start + (embeddings.shape[0] ?? 0), dataset.length);
      },
    });
    npy.close();
    safetensors.close();
  } catch (error) {
    npy.abort();
    safetensors.abort();
    throw error;
  }
  writeFileAtomic(
    join(dir, INDEX_FILES.ids),
    `${JSON.stringify(itemIds(dataset, options.datasetInfo))}\n`,
    "writeEmbeddingIndex",
  );
  const labelsPath = join(dir, INDEX_FILES.labels);
  if (dataset.labels !== null) writeNpy(labelsPath, dataset.labels);
  else rmSync(labelsPath, { force: true });
  const meta: IndexMeta = {
    format: 1,
    checkpoint: encoder.info.path,
    part: encoder.info.part,
    encoder: encoder.describe(),
    features,
    normalized,
    count: dataset.length,
    dim,
    dataset: options.datasetInfo,
    channels: dataset.channels,
    storedSize: dataset.height,
    imageSize: options.size ?? null,
    ...(dataset.labels === null ? {} : { classNames: [...dataset.classNames] }),
    precision: { dtype: precision.dtype, channelsLast: precision.channelsLast },
  };
  const metaPath = join(dir, INDEX_FILES.meta);
  writeJsonAtomic(metaPath, meta, "writeEmbeddingIndex");
  return meta;
}

export interface EmbeddingIndex {
  meta: IndexMeta;
  ids: string[];
  /** float32 [N, D]. */
  embeddings: Tensor;
  dispose(): void;
}

export class IndexError extends MocoError {
  override name = "IndexError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_INDEX", message, options);
  }
}

export function readEmbeddingIndex(dir: string): EmbeddingIndex {
  const metaPath = join(dir, INDEX_FILES.meta);
  if (!existsSync(metaPath))
    throw new IndexError(`${dir}: not an embedding index (no ${INDEX_FILES.meta}; make one with moco embed)`);
  let meta: IndexMeta;
  let ids: unknown;
  try {
    meta = JSON.parse(readFileSync(metaPath, "utf8")) as IndexMeta;
    ids = JSON.parse(readFileSync(join(dir, INDEX_FILES.ids), "utf8"));
  } catch (error) {
    throw new IndexError(`${dir}: unreadable index: ${(error as Error).message}`, { cause: error });
  }
  if (meta.format !== 1) throw new IndexError(`${metaPath}: index format ${String(meta.format)}, this moco-ts reads 1`);
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === "string"))
    throw new IndexError(`${join(dir, INDEX_FILES.ids)}: expected a JSON list of strings`);
  const embeddings = readNpy(join(dir, INDEX_FILES.npy));
  if (embeddings.ndim !== 2 || embeddings.shape[0] !== ids.length || embeddings.shape[1] !== meta.dim) {
    const shape = embeddings.shape.join(", ");
    embeddings.dispose();
    throw new IndexError(`${dir}: embeddings [${shape}] do not match ${ids.length} ids of dimension ${meta.dim}`);
  }
  return { meta, ids: ids as string[], embeddings, dispose: () => embeddings.dispose() };
}
