// `moco search`: the images of an index (made by `moco embed`) most similar to query images.
import { statSync } from "node:fs";
import { join } from "node:path";

import type { ImageDataset } from "../data/dataset.js";
import type { Split } from "../data/fashion-mnist.js";
import { decodeImage, openImageFolder } from "../data/image-folder.js";
import { isDatasetName, openDataset } from "../data/registry.js";
import { embed } from "../encoder/embed.js";
import { loadEncoder } from "../encoder/encoder.js";
import { indexClasses } from "../search/labels.js";
import { writeResultsPage, type SearchResult } from "../search/page.js";
import { nearestNeighbours } from "../search/search.js";
import { readEmbeddingIndex, type IndexMeta } from "../search/store.js";
import { cat, fromTypedArray, keep, scope, type Tensor } from "../torch/index.js";
import { deviceFromFlags, precisionPolicy, writeJson } from "./encoder-flags.js";
import {
  CHANNELS_LAST_FLAG,
  DEVICE_FLAG,
  PRECISION_FLAG,
  UsageError,
  flagHelp,
  parseCommand,
  type Flag,
} from "./flags.js";

const SEARCH_FLAGS: readonly Flag[] = [
  { flag: "index", kind: "string", meta: "DIR", help: "an index folder written by moco embed (required)" },
  { flag: "k", kind: "int", help: "neighbours per query", default: 10, bounds: { min: 1 } },
  {
    flag: "pretrained",
    kind: "string",
    meta: "FILE",
    help: "encoder for the queries",
    defaultText: "the index's own checkpoint",
  },
  { flag: "out", kind: "string", meta: "DIR", help: "where results.json and results.html go", default: "runs/search" },
  DEVICE_FLAG,
  PRECISION_FLAG,
  CHANNELS_LAST_FLAG,
];

export const SEARCH_HELP = `Usage: moco search --index DIR QUERY... [options]

Embeds the query images (files, or folders of images) the way the index was made and lists, for each,
the k most similar images of the index with their cosine similarity: results.json and a page of
thumbnails, results.html, in --out.

${flagHelp(SEARCH_FLAGS)}`;

async function queryFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    let isDirectory: boolean;
    try {
      isDirectory = statSync(path).isDirectory();
    } catch {
      throw new UsageError(`${path}: no such query image or folder`);
    }
    if (isDirectory) {
      const folder = await openImageFolder({ root: path, size: 8 });
      files.push(...folder.files);
      folder.dispose();
    } else {
      files.push(path);
    }
  }
  return files;
}

/** uint8 [Q, C, S, S]: the query images decoded like the index's stored images. */
async function decodeQueries(files: readonly string[], meta: IndexMeta): Promise<Tensor> {
  const { storedSize: size, channels } = meta;
  if (channels !== 1 && channels !== 3) throw new UsageError(`index: unsupported channel count ${channels}`);
  const parts: Tensor[] = [];
  try {
    for (const file of files) {
      const hwc = await decodeImage(file, size, channels);
      parts.push(keep(scope(() => fromTypedArray(hwc, [1, size, size, channels], "uint8").permute(0, 3, 1, 2))));
    }
    return keep(cat(parts, 0));
  } finally {
    for (const part of parts) part.dispose();
  }
}

/** The indexed dataset itself, to draw thumbnails of items that are not files. */
async function openIndexedDataset(meta: IndexMeta): Promise<ImageDataset | null> {
  const kind = meta.dataset.kind;
  if (kind === "folder" || !isDatasetName(kind)) return null;
  return openDataset({
    kind,
    ...(meta.dataset.root === null ? {} : { root: meta.dataset.root }),
    split: (meta.dataset.split ?? "train") as Split,
  });
}

export async function runSearch(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "search",
    flags: SEARCH_FLAGS,
    help: SEARCH_HELP,
    positionals: { max: Number.POSITIVE_INFINITY, what: "query images" },
  });
  if (command === null) return 0;
  const { flags, positionals } = command;
  if (!flags.has("index")) throw new UsageError("--index DIR is required (make one with moco embed)");
  if (positionals.length === 0) throw new UsageError("search needs at least one query image or folder");
  const k = flags.number("k");
  const device = deviceFromFlags(flags);
  const policy = precisionPolicy(flags, (line) => console.error(line));
  const index = readEmbeddingIndex(flags.string("index"));
  try {
    const { meta } = index;
    const encoder = loadEncoder(flags.optionalString("pretrained") ?? meta.checkpoint, { part: meta.part });
    let results: SearchResult[];
    try {
      if (device !== "cpu") encoder.model.toDevice(device);
      if (encoder.dim(meta.features) !== meta.dim)
        throw new UsageError(`the encoder's ${meta.features} features do not have the index's dimension ${meta.dim}`);
      const files = await queryFiles(positionals);
      if (files.length === 0) throw new UsageError("no query images found");
      const images = await decodeQueries(files, meta);
      const queries = scope(() => {
        try {
          return embed(encoder, images, {
            features: meta.features,
            size: meta.imageSize,
            normalize: true,
            device,
            ...policy,
          });
        } finally {
          images.dispose();
        }
      });
      const found = nearestNeighbours(queries, index.embeddings, k);
      queries.dispose();
      const indices = found.indices.toArray();
      const similarities = found.similarities.toArray();
      const width = found.indices.shape[1] ?? 0;
      found.indices.dispose();
      found.similarities.dispose();
      results = files.map((query, q) => ({
        query,
        hits: Array.from({ length: width }, (_, j) => {
          const row = indices[q * width + j] as number;
          return { id: index.ids[row] as string, index: row, similarity: similarities[q * width + j] as number };
        }),
      }));
    } finally {
      encoder.dispose();
    }
    const out = flags.string("out");
    writeJson(join(out, "results.json"), { index: flags.string("index"), k, results });
    const dataset = await openIndexedDataset(meta);
    try {
      const page = await writeResultsPage({
        title: `moco search: ${results.length} queries against ${meta.count} images (${meta.dataset.name})`,
        results,
        outDir: out,
        thumbnail: (id, row) =>
          dataset === null
            ? { file: id }
            : {
                image: async () => {
                  const image = await dataset.batch([row]);
                  const first = image.select(0, 0);
                  image.dispose();
                  return first;
                },
              },
        classes: indexClasses(flags.string("index"), meta, index.ids, dataset?.classNames ?? null),
      });
      for (const result of results) {
        console.log(result.query);
        for (const hit of result.hits) console.log(`  ${hit.similarity.toFixed(4)}  ${hit.id}`);
      }
      console.log(`wrote ${join(out, "results.json")} and ${page}`);
    } finally {
      dataset?.dispose();
    }
    return 0;
  } finally {
    index.dispose();
  }
}
