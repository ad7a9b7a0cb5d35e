// A small index for the `moco serve` tests: a width-4 ResNet-18 (1 channel, CIFAR stem) saved as a
// torchvision state dict, 40 Fashion-MNIST test images as 32×32 PNGs in class folders, and the
// index `moco embed` makes of them (stored at 32, the 8/7 of its 28-pixel crop, so the PNGs need no
// resize: the page's in-browser decode is then exact). Built once per test file, in seconds.
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

import sharp from "sharp";

import { FASHION_MNIST_CLASSES, openFashionMnist } from "../../src/data/fashion-mnist.js";
import { resnet18 } from "../../src/nn/index.js";
import { manualSeed, save } from "../../src/torch/index.js";

export interface ServeFixture {
  checkpoint: string;
  folder: string;
  index: string;
  /** The indexed PNG files, in the index's row order (ids.json). */
  files: string[];
  /** PNGs of images that are not in the index (for adding). */
  extra: Buffer[];
}

export function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 300_000 });
}

/** PNG bytes of Fashion-MNIST test images, resized to `size`. */
export async function fashionPngs(indices: readonly number[], size = 32): Promise<{ png: Buffer; label: number }[]> {
  const dataset = openFashionMnist({ split: "test" });
  try {
    const out: { png: Buffer; label: number }[] = [];
    for (const i of indices) {
      const image = dataset.batch([i]);
      const pixels = Buffer.from(image.toBytes());
      image.dispose();
      const png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
        .resize(size, size, { kernel: "linear" })
        .png()
        .toBuffer();
      out.push({ png, label: dataset.labels === null ? -1 : (dataset.labels.select(0, i).item() as number) });
    }
    return out;
  } finally {
    dataset.dispose();
  }
}

/**
 * `precision` is `moco embed`'s: "auto" (the CLI's default: bf16 on a CPU with avx512_bf16) makes the
 * server embed queries in that precision too; the page test asks for "fp32", the precision in which
 * the browser runs the ONNX export, so that both embeddings can agree within 1e-4.
 */
export async function makeServeFixture(
  root: string,
  count = 40,
  precision: "auto" | "fp32" = "auto",
): Promise<ServeFixture> {
  const checkpoint = join(root, "encoder.pth");
  manualSeed(0);
  const model = resnet18({ numClasses: 0, width: 4, cifarStem: true, inChannels: 1 });
  save(model.stateDict(), checkpoint);
  model.dispose();
  const folder = join(root, "images");
  const images = await fashionPngs(Array.from({ length: count + 8 }, (_, i) => i));
  images.slice(0, count).forEach(({ png, label }, i) => {
    const dir = join(folder, FASHION_MNIST_CLASSES[label] ?? "unknown");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `item-${String(i).padStart(3, "0")}.png`), png);
  });
  const index = join(root, "index");
  const embedded = moco([
    "embed",
    "--pretrained",
    checkpoint,
    folder,
    "--image-size",
    "28",
    "--precision",
    precision,
    "--out",
    index,
  ]);
  assert.equal(embedded.status, 0, embedded.stderr);
  const ids = (await import("node:fs")).readFileSync(join(index, "ids.json"), "utf8");
  return {
    checkpoint,
    folder,
    index,
    files: JSON.parse(ids) as string[],
    extra: images.slice(count).map((image) => image.png),
  };
}

/** Resolves with the exit code (null after a signal) once `child` has exited, even if it already has. */
export function exitOf(child: ChildProcessWithoutNullStreams): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** `moco serve` as a child process; resolves with its URL once it prints "listening on". */
export async function spawnServe(
  args: string[],
): Promise<{ child: ChildProcessWithoutNullStreams; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, ["bin/moco.js", "serve", "--port", "0", ...args]);
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`moco serve did not start:\n${stderr}`)), 120_000);
    lines.on("line", (line) => {
      const match = /^listening on (http:\/\/\S+)/.exec(line);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`moco serve exited (${code}) before listening:\n${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}
