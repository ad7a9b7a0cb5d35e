// The report's views of the embedding space, computed from a run's checkpoint on a bounded, seeded
// sample of its held-out images: a 2-D UMAP map (umap-js, seeded, so the same run gives the same
// picture) and a grid of nearest neighbours by cosine similarity. Thumbnails are small PNGs as
// data: URIs, so the page carries them.
import sharp from "sharp";

import type { ImageDataset } from "../data/dataset.js";
import type { Split } from "../data/fashion-mnist.js";
import { isDatasetName, openDataset } from "../data/registry.js";
import { Random } from "../data/random.js";
import { embed } from "../encoder/embed.js";
import { loadEncoder } from "../encoder/encoder.js";
import { encoderInput } from "../encoder/preprocess.js";
import { nearestNeighbours } from "../search/search.js";
import { cat, keep, type Tensor } from "../torch/index.js";
import type { MapPoint } from "./charts.js";
import { ReportInputError, type RunRecord } from "./run.js";

export interface EmbeddingViewOptions {
  /** Images in the sample (default 1000). */
  sample?: number;
  /** Seed of the sample and of UMAP (default 0). */
  seed?: number;
  /** Queries in the neighbour grid (default 8) and neighbours per query (default 8). */
  queries?: number;
  neighbours?: number;
  /** Largest thumbnail side in pixels (default 48). */
  thumbnailSize?: number;
  /** Test hook and progress: told what is being done. */
  log?: (line: string) => void;
}

export interface NeighbourRow {
  query: number;
  hits: { id: number; similarity: number; sameClass: boolean | null }[];
}

export interface EmbeddingViews {
  /** What was embedded, e.g. "1000 images of fashion-mnist test". */
  description: string;
  encoder: string;
  /** data: URI per sample item. */
  thumbnails: string[];
  labels: (string | null)[];
  points: MapPoint[];
  neighbours: NeighbourRow[];
  /** Share of the k neighbours of every sample item that have its class (null without labels). */
  precisionAtK: number | null;
}

/** A PNG data: URI of one uint8 image [C, H, W], at most `side` pixels on its longer side. */
export async function thumbnailUri(image: Tensor, side: number): Promise<string> {
  const [channels = 0, height = 0, width = 0] = image.shape;
  const hwc = image.permute(1, 2, 0).contiguous();
  try {
    let pipeline = sharp(Buffer.from(hwc.toBytes()), { raw: { width, height, channels: channels as 1 | 3 } });
    if (Math.max(width, height) > side) pipeline = pipeline.resize(side, side, { fit: "inside" });
    const png = await pipeline.png({ compressionLevel: 9 }).toBuffer();
    return `data:image/png;base64,${png.toString("base64")}`;
  } finally {
    hwc.dispose();
  }
}

async function openHeldOut(run: RunRecord, size: number): Promise<ImageDataset> {
  const kind = run.config["dataset"];
  if (!isDatasetName(kind))
    throw new ReportInputError(`${run.dir}: config.json names no dataset moco-ts opens (${JSON.stringify(kind)})`);
  const data = run.config["data"];
  const root = typeof data === "string" ? { root: data } : {};
  const open = (split: Split | undefined) =>
    openDataset({
      kind,
      ...root,
      ...(split === undefined ? {} : { split }),
      folder: { size },
    });
  // The held-out split when there is one; a folder without splits is all there is.
  for (const split of ["test", "train"] as const) {
    try {
      return await open(split);
    } catch (error) {
      if (kind !== "folder") {
        if (split === "train") throw error;
        continue;
      }
    }
  }
  return open(undefined);
}

/** UMAP's own random source, seeded (umap-js takes any () => number in [0, 1)). */
function seededRandom(seed: number): () => number {
  const random = new Random(seed, 0x75_6d_61_70); // "umap"
  return () => random.random();
}

/** The map, the neighbour grid and thumbnails of `run`'s encoder on a sample of its data. */
export async function embeddingViews(run: RunRecord, options: EmbeddingViewOptions = {}): Promise<EmbeddingViews> {
  const sample = options.sample ?? 1000;
  const seed = options.seed ?? 0;
  const queries = options.queries ?? 8;
  const k = options.neighbours ?? 8;
  const side = options.thumbnailSize ?? 48;
  for (const [name, value] of Object.entries({ sample, queries, neighbours: k, thumbnailSize: side }))
    if (!(Number.isSafeInteger(value) && value >= 1))
      throw new RangeError(`report: ${name} must be a positive integer, got ${value}`);
  if (run.checkpoint === null) throw new ReportInputError(`${run.dir}: no checkpoint.pth.tar to embed with`);
  const encoder = loadEncoder(run.checkpoint);
  let dataset: ImageDataset | null = null;
  try {
    const input = encoderInput(encoder);
    dataset = await openHeldOut(run, input.size);
    const n = Math.min(sample, dataset.length);
    if (n < 3) throw new ReportInputError(`${dataset.name}: ${dataset.length} image(s), too few for a map`);
    const order = [...new Random(seed).permutation(dataset.length).subarray(0, n)].sort((a, b) => a - b);
    options.log?.(`embedding ${n} images of ${dataset.name} with ${encoder.describe()}`);
    const labelNames = dataset.labels === null ? null : dataset.classNames;
    const allLabels = dataset.labels === null ? null : dataset.labels.toArray();
    const thumbnails: string[] = [];
    const parts: Tensor[] = [];
    try {
      for (let start = 0; start < n; start += 256) {
        const indices = order.slice(start, start + 256);
        const images = await dataset.batch(indices);
        try {
          parts.push(keep(embed(encoder, images, { size: input.size, normalize: true })));
          for (let i = 0; i < indices.length; i += 1) {
            const one = images.select(0, i);
            thumbnails.push(await thumbnailUri(one, side));
            one.dispose();
          }
        } finally {
          images.dispose();
        }
      }
      const embeddings = cat(parts, 0);
      try {
        const labels = order.map((index) =>
          allLabels === null || labelNames === null ? null : (labelNames[allLabels[index] as number] ?? null),
        );
        // Neighbours within the sample: k + 1, then drop each item itself.
        const found = nearestNeighbours(embeddings, embeddings, Math.min(k + 1, n));
        const indices = found.indices.toArray();
        const similarities = found.similarities.toArray();
        const width = found.indices.shape[1] ?? 0;
        found.indices.dispose();
        found.similarities.dispose();
        const rowsOf = (q: number) =>
          Array.from({ length: width }, (_, j) => ({
            id: indices[q * width + j] as number,
            similarity: similarities[q * width + j] as number,
          }))
            .filter((hit) => hit.id !== q)
            .slice(0, k);
        let same = 0;
        let total = 0;
        for (let q = 0; q < n; q += 1) {
          if (labels[q] === null) continue;
          for (const hit of rowsOf(q)) {
            total += 1;
            if (labels[hit.id] === labels[q]) same += 1;
          }
        }
        // Queries spread over the sample (and so over the classes of data stored in class order).
        const chosen = Array.from({ length: Math.min(queries, n) }, (_, i) =>
          Math.floor((i * n) / Math.min(queries, n)),
        );
        const neighbours = chosen.map((q) => ({
          query: q,
          hits: rowsOf(q).map((hit) => ({
            ...hit,
            sameClass: labels[q] === null ? null : labels[hit.id] === labels[q],
          })),
        }));
        const vectors: number[][] = [];
        const flat = embeddings.toArray();
        const dim = embeddings.shape[1] ?? 0;
        for (let i = 0; i < n; i += 1) vectors.push(Array.from(flat.slice(i * dim, (i + 1) * dim)));
        const { UMAP } = await import("umap-js"); // on first use, as vega
        const umap = new UMAP({
          nComponents: 2,
          nNeighbors: Math.max(2, Math.min(15, n - 1)),
          minDist: 0.1,
          nEpochs: 200,
          random: seededRandom(seed),
        });
        const xy = umap.fit(vectors);
        const points = xy.map(([x = 0, y = 0], id) => ({ x, y, id, label: labels[id] ?? "unlabeled" }));
        return {
          description: `${n} images of ${dataset.name} (seeded sample, seed ${seed})`,
          encoder: encoder.describe(),
          thumbnails,
          labels,
          points,
          neighbours,
          precisionAtK: total === 0 ? null : same / total,
        };
      } finally {
        embeddings.dispose();
      }
    } finally {
      for (const part of parts) part.dispose();
    }
  } finally {
    dataset?.dispose();
    encoder.dispose();
  }
}
