// The search results as a page of thumbnails: each query with its neighbours and their cosine
// similarity. Image files are linked where they are; images that only exist inside a dataset file
// (IDX, CIFAR) are written out as small PNGs beside the page.
import { mkdirSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";

import sharp from "sharp";

import type { Tensor } from "../torch/index.js";
import { writeFileAtomic } from "../util/atomic-file.js";

export interface SearchResult {
  query: string;
  hits: { id: string; index: number; similarity: number }[];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A PNG file of one uint8 image [C, H, W] (C = 1 or 3). */
export async function writePng(image: Tensor, path: string): Promise<void> {
  const [channels = 0, height = 0, width = 0] = image.shape;
  const hwc = image.permute(1, 2, 0).contiguous();
  try {
    await sharp(Buffer.from(hwc.toBytes()), { raw: { width, height, channels: channels as 1 | 3 } })
      .png()
      .toFile(path);
  } finally {
    hwc.dispose();
  }
}

/** Link to an image from the page's folder: relative for files, as given otherwise. */
export function imageLink(source: string, pageDir: string): string {
  const absolute = isAbsolute(source) ? source : resolve(source);
  return relative(resolve(pageDir), absolute).split("\\").join("/");
}

export interface PageOptions {
  title: string;
  results: readonly SearchResult[];
  outDir: string;
  /** The image source of an id: a file path (linked), or a function writing a PNG. */
  thumbnail: (id: string, index: number) => { file: string } | { write: (path: string) => Promise<void> };
}

/** Writes results.html (and thumbs/ when needed) into outDir; returns the page's path. */
export async function writeResultsPage(options: PageOptions): Promise<string> {
  const { outDir } = options;
  mkdirSync(outDir, { recursive: true });
  const thumbs = join(outDir, "thumbs");
  const written = new Map<number, string>();
  const srcOf = async (id: string, index: number): Promise<string> => {
    const source = options.thumbnail(id, index);
    if ("file" in source) return imageLink(source.file, outDir);
    const done = written.get(index);
    if (done !== undefined) return done;
    mkdirSync(thumbs, { recursive: true });
    await source.write(join(thumbs, `${index}.png`));
    const link = `thumbs/${index}.png`;
    written.set(index, link);
    return link;
  };
  const rows: string[] = [];
  for (const result of options.results) {
    const cells = [
      `<figure class="query"><img src="${escapeHtml(imageLink(result.query, outDir))}"><figcaption>query<br>${escapeHtml(result.query)}</figcaption></figure>`,
    ];
    for (const hit of result.hits) {
      const src = await srcOf(hit.id, hit.index);
      cells.push(
        `<figure><img src="${escapeHtml(src)}" title="${escapeHtml(hit.id)}"><figcaption>${hit.similarity.toFixed(4)}<br>${escapeHtml(hit.id)}</figcaption></figure>`,
      );
    }
    rows.push(`<section>${cells.join("")}</section>`);
  }
  const page = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(options.title)}</title>
<style>
body { font: 13px system-ui, sans-serif; margin: 1em; }
section { display: flex; gap: 8px; align-items: flex-start; margin-bottom: 16px; }
figure { margin: 0; width: 112px; text-align: center; }
figure img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; background: #eee; }
figcaption { word-break: break-all; color: #444; }
.query img { outline: 3px solid #36c; }
</style></head>
<body><h1>${escapeHtml(options.title)}</h1>
${rows.join("\n")}
</body></html>
`;
  const path = join(outDir, "results.html");
  writeFileAtomic(path, page, "writeResultsPage");
  return path;
}
