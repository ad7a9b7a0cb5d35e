// Image folders of generated JPEGs with varied content (a gradient, overlapping shapes, a grain of
// noise: edges, flat areas and texture, as photographs have), the same bytes for the same seed. Used by
// the folder-crop tests and the folder-pipeline benchmark (both sides read the same files).
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import sharp from "sharp";

import { Random } from "../../src/data/random.js";

export interface JpegFolderOptions {
  /** Images in all. */
  images: number;
  /** Class sub-folders (class_0, class_1, ...); the images go round them. */
  classes: number;
  width: number;
  height: number;
  seed: number;
  /** JPEG quality, default 90. */
  quality?: number;
}

function colour(rng: Random): string {
  return `rgb(${rng.int(0, 256)},${rng.int(0, 256)},${rng.int(0, 256)})`;
}

/** One image as SVG: a gradient, 6–14 shapes, turbulence noise; every parameter drawn from `rng`. */
export function imageSvg(rng: Random, width: number, height: number): string {
  const shapes: string[] = [];
  const count = rng.int(6, 15);
  for (let s = 0; s < count; s++) {
    const fill = `fill="${colour(rng)}" fill-opacity="${(0.4 + 0.6 * rng.random()).toFixed(2)}"`;
    const x = rng.int(0, width);
    const y = rng.int(0, height);
    const size = rng.int(10, Math.max(11, Math.floor(Math.min(width, height) / 2)));
    switch (rng.int(0, 3)) {
      case 0:
        shapes.push(`<ellipse cx="${x}" cy="${y}" rx="${size}" ry="${rng.int(5, size + 1)}" ${fill}/>`);
        break;
      case 1:
        shapes.push(
          `<rect x="${x - size}" y="${y - size}" width="${2 * size}" height="${rng.int(5, 2 * size)}" ` +
            `transform="rotate(${rng.int(0, 90)} ${x} ${y})" ${fill}/>`,
        );
        break;
      default: {
        const points = Array.from({ length: 3 }, () => `${rng.int(0, width)},${rng.int(0, height)}`).join(" ");
        shapes.push(`<polygon points="${points}" ${fill}/>`);
      }
    }
  }
  const angle = rng.int(0, 360);
  const noise = rng.int(1, 100000);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<defs><linearGradient id="g" gradientTransform="rotate(${angle} 0.5 0.5)">` +
    `<stop offset="0" stop-color="${colour(rng)}"/><stop offset="1" stop-color="${colour(rng)}"/></linearGradient>` +
    `<filter id="n"><feTurbulence type="fractalNoise" baseFrequency="0.7" seed="${noise}"/>` +
    `<feColorMatrix type="saturate" values="0"/></filter></defs>` +
    `<rect width="100%" height="100%" fill="url(#g)"/>${shapes.join("")}` +
    `<rect width="100%" height="100%" filter="url(#n)" opacity="0.12"/></svg>`
  );
}

/** Writes the folder (ROOT/class_k/image_i.jpg) and returns the files in ImageFolder's order. */
export async function writeJpegFolder(root: string, options: JpegFolderOptions): Promise<string[]> {
  const rng = new Random(options.seed);
  const files: string[] = [];
  for (let i = 0; i < options.images; i++) {
    const dir = join(root, `class_${i % options.classes}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `image_${String(i).padStart(5, "0")}.jpg`);
    await sharp(Buffer.from(imageSvg(rng, options.width, options.height)))
      .flatten({ background: "#808080" })
      .jpeg({ quality: options.quality ?? 90 })
      .toFile(file);
    files.push(file);
  }
  return files.sort();
}
