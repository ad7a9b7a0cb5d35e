// The search results as a page of thumbnails: each query with its neighbours, their cosine
// similarity and, when the data is labeled, their class (hits of the query's class marked, and
// precision@k per query and overall). Every image is embedded in the page as a small PNG data: URI,
// so the page shows the same wherever it is moved or mailed, with nothing beside it.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import sharp from "sharp";

import type { Tensor } from "../torch/index.js";
import type { IndexClasses } from "./labels.js";
import { writeFileAtomic } from "../util/atomic-file.js";

export interface SearchResult {
  query: string;
  hits: { id: string; index: number; similarity: number }[];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Largest side of the page's thumbnails, in pixels (shown at 112 CSS px). */
const THUMBNAIL_SIDE = 112;

/** A PNG file of one uint8 image [C, H, W] (C = 1 or 3). */
export async function writePng(image: Tensor, path: string): Promise<void> {
  writeFileAtomic(path, await pngOf(image), "writePng");
}

async function pngOf(image: Tensor, side?: number): Promise<Buffer> {
  const [channels = 0, height = 0, width = 0] = image.shape;
  const hwc = image.permute(1, 2, 0).contiguous();
  try {
    let pipeline = sharp(Buffer.from(hwc.toBytes()), { raw: { width, height, channels: channels as 1 | 3 } });
    if (side !== undefined && Math.max(width, height) > side) pipeline = pipeline.resize(side, side, { fit: "inside" });
    return await pipeline.png().toBuffer();
  } finally {
    hwc.dispose();
  }
}

/** A PNG data: URI of one uint8 image [C, H, W], at most `side` pixels on its longer side. */
export async function imageDataUri(image: Tensor, side: number = THUMBNAIL_SIDE): Promise<string> {
  return `data:image/png;base64,${(await pngOf(image, side)).toString("base64")}`;
}

/** A PNG data: URI of an image file (any format sharp reads), at most `side` pixels on its longer side. */
export async function fileDataUri(path: string, side: number = THUMBNAIL_SIDE): Promise<string> {
  try {
    const png = await sharp(path)
      .rotate() // as the camera held it (EXIF orientation)
      .resize(side, side, { fit: "inside", withoutEnlargement: true })
      .png()
      .toBuffer();
    return `data:image/png;base64,${png.toString("base64")}`;
  } catch (error) {
    throw new Error(`search page: cannot read image ${path}: ${(error as Error).message}`, { cause: error });
  }
}

export interface PageOptions {
  title: string;
  results: readonly SearchResult[];
  outDir: string;
  /** The image of an index row: a file, or a function returning the uint8 image [C, H, W] (freed by the page). */
  thumbnail: (id: string, index: number) => { file: string } | { image: () => Promise<Tensor> };
  /** Classes of the index and queries, when the data is labeled. */
  classes?: IndexClasses | null;
}

/** Precision@k of one query: the share of its hits of the query's class (null when unknown). */
export function precisionAtK(
  result: SearchResult,
  classes: IndexClasses | null | undefined,
): { queryClass: string | null; precision: number | null } {
  const queryClass = classes?.ofQuery(result.query) ?? null;
  if (classes === null || classes === undefined || queryClass === null || result.hits.length === 0)
    return { queryClass, precision: null };
  const same = result.hits.filter((hit) => classes.ofRow(hit.index) === queryClass).length;
  return { queryClass, precision: same / result.hits.length };
}

/** Writes results.html into outDir; returns the page's path. */
export async function writeResultsPage(options: PageOptions): Promise<string> {
  const { outDir, classes } = options;
  mkdirSync(outDir, { recursive: true });
  const uris = new Map<string, string>();
  const srcOf = async (id: string, index: number): Promise<string> => {
    const key = `#${index}`;
    const done = uris.get(key);
    if (done !== undefined) return done;
    const source = options.thumbnail(id, index);
    let uri: string;
    if ("file" in source) {
      uri = await fileDataUri(source.file);
    } else {
      const image = await source.image();
      try {
        uri = await imageDataUri(image);
      } finally {
        image.dispose();
      }
    }
    uris.set(key, uri);
    return uri;
  };
  const rows: string[] = [];
  const precisions: number[] = [];
  for (const result of options.results) {
    const { queryClass, precision } = precisionAtK(result, classes);
    if (precision !== null) precisions.push(precision);
    const summary =
      precision === null
        ? ""
        : `<br><span class="p">precision@${result.hits.length} ${(precision * 100).toFixed(0)}%</span>`;
    const cells = [
      `<figure class="query"><img src="${await fileDataUri(result.query)}" alt="query"><figcaption>query${
        queryClass === null ? "" : `<br><b class="cls">${escapeHtml(queryClass)}</b>`
      }${summary}<br><span class="id">${escapeHtml(result.query)}</span></figcaption></figure>`,
    ];
    for (const hit of result.hits) {
      const src = await srcOf(hit.id, hit.index);
      const name = classes?.ofRow(hit.index) ?? null;
      const mark = queryClass === null || name === null ? "" : name === queryClass ? " same" : " other";
      cells.push(
        `<figure class="hit${mark}"><img src="${src}" title="${escapeHtml(hit.id)}" alt="${escapeHtml(name ?? hit.id)}"><figcaption>${hit.similarity.toFixed(4)}${
          name === null ? "" : `<br><b class="cls">${escapeHtml(name)}</b>${mark === " same" ? " ✓" : ""}`
        }<br><span class="id">${escapeHtml(hit.id)}</span></figcaption></figure>`,
      );
    }
    rows.push(`<section>${cells.join("")}</section>`);
  }
  const overall =
    precisions.length === 0
      ? ""
      : `<p class="overall">Mean precision@k over ${precisions.length} labeled quer${precisions.length === 1 ? "y" : "ies"}: <b>${(
          (precisions.reduce((a, b) => a + b, 0) / precisions.length) *
          100
        ).toFixed(1)}%</b> (share of hits of the query's class; green: same class, red: another).</p>`;
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${escapeHtml(options.title)}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 1em; }
section { display: flex; gap: 8px; align-items: flex-start; margin-bottom: 16px; }
figure { margin: 0; width: 112px; text-align: center; }
figure img { width: 106px; height: 106px; object-fit: contain; image-rendering: pixelated; background: #eee; border: 3px solid transparent; }
figcaption { word-break: break-all; color: #444; }
.id { color: #888; font-size: 11px; }
.query img { border-color: #36c; } .same img { border-color: #2a2; } .other img { border-color: #d44; }
.p { color: #225; }
</style></head>
<body><h1>${escapeHtml(options.title)}</h1>
${overall}
${rows.join("\n")}
</body></html>
`;
  const path = join(outDir, "results.html");
  writeFileAtomic(path, page, "writeResultsPage");
  return path;
}
