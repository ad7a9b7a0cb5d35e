// Image folders for tests, made of real Fashion-MNIST test images (Debian's dataset-fashion-mnist)
// written as 28×28 gray PNGs: the same data the default job uses, in the layout a user's folder has.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import sharp from "sharp";

import { openFashionMnist } from "../../src/data/index.js";

/**
 * Writes the first `perClass` test images of each class in `classes` ([label, folder name]) as
 * `<dir>/<index>.png`, where `placeOf(className, j)` says the folder of the class's j-th image.
 */
export async function writeFashionPngs(
  classes: readonly (readonly [number, string])[],
  perClass: number,
  placeOf: (className: string, j: number) => string,
): Promise<void> {
  const data = openFashionMnist({ split: "test" });
  try {
    const labels = data.labels?.toArray() ?? [];
    for (const [label, name] of classes) {
      const indices = labels.flatMap((l, i) => (l === label ? [i] : [])).slice(0, perClass);
      for (const [j, index] of indices.entries()) {
        const dir = placeOf(name, j);
        mkdirSync(dir, { recursive: true });
        const image = data.batch([index]);
        try {
          await sharp(Buffer.from(image.toBytes()), { raw: { width: 28, height: 28, channels: 1 } })
            .png()
            .toFile(join(dir, `${index}.png`));
        } finally {
          image.dispose();
        }
      }
    }
  } finally {
    data.dispose();
  }
}
