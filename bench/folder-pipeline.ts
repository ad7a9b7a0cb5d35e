// Issue #15's image-folder benchmark: the data pipeline of a MoCo v2 run on an image folder, alone
// (no training step): 512 JPEGs of 500×375 in 4 class sub-folders (generated once, seeded, varied
// content: test/helpers/jpeg-folder.ts; kept in the temp folder and reused), two views at 224, batch 64.
//
// Ours: the loader with the crops cut while decoding (each view decoded straight to 224×224 with
// sharp), then the rest of MoCo v2's augmentation on tensors. How it parallelises: libuv's thread
// pool decodes (UV_THREADPOOL_SIZE, one image per thread), the JS thread runs the tensor steps on
// libtorch's threads. "N threads" is both at N, in a process of its own (bench/folder-pipeline-worker.ts).
// Python: torchvision's ImageFolder + DataLoader with the official TwoCropsTransform and v2
// augmentation on PIL images, num_workers 0, 1 and 2 (bench/py/folder-pipeline.py).
//
// Rows: ours at 1 thread next to 0 workers (everything in the main process) and next to 1 worker;
// ours at 2 threads next to 2 workers; ours alone with 2 decoding threads and 1 libtorch thread; and
// ours alone, at 1 and 2 threads, with the pipeline as it was before the change (every image decoded
// to 256×256, the centre square, views cropped on tensors).
// The JSON adds each run's images per CPU-second (all threads), which background load moves less.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { readCpuCapabilities } from "../src/torch/index.js";
import { writeJpegFolder, type JpegFolderOptions } from "../test/helpers/jpeg-folder.js";
import type { WorkerPlan, WorkerReport } from "./folder-pipeline-worker.js";
import type { BenchEntry } from "./framework.js";

const here = dirname(fileURLToPath(import.meta.url));
const BATCH = 64;
const IMAGES: JpegFolderOptions = { images: 512, classes: 4, width: 500, height: 375, seed: 15, quality: 90 };
/** The generated folder: named by what is in it, so that a folder of other images is never reused. */
export const FOLDER = join(
  tmpdir(),
  `moco-bench-jpegs-${IMAGES.images}x${IMAGES.width}x${IMAGES.height}-seed${IMAGES.seed}-q${IMAGES.quality}`,
);
const COMPLETE = join(FOLDER, ".complete");
const WORKER_TIMEOUT_MS = 5 * 60_000;

/** Generates the JPEGs unless a complete folder is already there. */
async function ensureFolder(): Promise<void> {
  if (existsSync(COMPLETE) && readFileSync(COMPLETE, "utf8") === JSON.stringify(IMAGES)) return;
  rmSync(FOLDER, { recursive: true, force: true });
  await writeJpegFolder(FOLDER, IMAGES);
  writeFileSync(COMPLETE, JSON.stringify(IMAGES));
}

function runWorker(plan: WorkerPlan, poolThreads: number): WorkerReport {
  const n = String(plan.threads);
  const result = spawnSync(
    process.execPath,
    ["--import", "tsx", join(here, "folder-pipeline-worker.ts"), JSON.stringify(plan)],
    {
      encoding: "utf8",
      timeout: WORKER_TIMEOUT_MS,
      env: {
        ...process.env,
        UV_THREADPOOL_SIZE: String(poolThreads),
        OMP_NUM_THREADS: n,
        MKL_NUM_THREADS: n,
        OPENBLAS_NUM_THREADS: n,
      },
    },
  );
  if (result.status !== 0)
    throw new Error(`folder-pipeline worker (${JSON.stringify(plan)}) failed: ${result.stderr.slice(-2000)}`);
  return JSON.parse(result.stdout.trim().split("\n").pop() ?? "") as WorkerReport;
}

/** The CPU as `lscpu` names it and the flags that matter for these figures. */
function cpuLine(): string {
  const cpu = readCpuCapabilities();
  const flags = ["avx2", "avx512f", "avx512_bf16", "amx_bf16"].filter((f) => cpu.flags.has(f));
  return `${cpu.model ?? "unknown CPU"} (${flags.join(", ") || "none of avx2/avx512f/avx512_bf16/amx_bf16"})`;
}

export const folderPipeline: BenchEntry = {
  name: "folder-pipeline",
  description: `image folder: ${IMAGES.images} JPEGs of ${IMAGES.width}×${IMAGES.height}, two MoCo v2 views at 224, batch ${BATCH} (vs ImageFolder + DataLoader)`,
  python: "folder-pipeline.py",
  pythonArgs: [FOLDER],
  rounds: 2,
  metrics: [
    {
      key: "images_per_s_w0",
      label: "ours 1 thread vs DataLoader num_workers=0",
      unit: "images/s",
      better: "higher",
      digits: 1,
      informational: true,
    },
    {
      key: "images_per_s_1",
      label: "ours 1 thread vs num_workers=1",
      unit: "images/s",
      better: "higher",
      target: 1.0,
      digits: 1,
    },
    {
      key: "images_per_s_2",
      label: "ours 2 threads vs num_workers=2",
      unit: "images/s",
      better: "higher",
      target: 1.0,
      digits: 1,
    },
    {
      key: "images_per_s_2_decoding_1",
      label: "ours 2 decoding threads + 1 libtorch thread",
      unit: "images/s",
      better: "higher",
      digits: 1,
      oursOnly: true,
    },
    {
      key: "images_per_s_working_size_1",
      label: "ours before (256² then crops on tensors), 1 thread",
      unit: "images/s",
      better: "higher",
      digits: 1,
      oursOnly: true,
    },
    {
      key: "images_per_s_working_size_2",
      label: "ours before (256² then crops on tensors), 2 threads",
      unit: "images/s",
      better: "higher",
      digits: 1,
      oursOnly: true,
    },
  ],
  async prepare() {
    await ensureFolder();
  },
  runOurs({ quick }) {
    const common = { folder: FOLDER, batch: BATCH, warmup: 2, batches: quick ? 3 : 16 };
    // Alternating the two pipelines, so that a change of background load hits both alike.
    const one = runWorker({ ...common, mode: "decode", threads: 1 }, 1);
    const beforeOne = runWorker({ ...common, mode: "working-size", threads: 1 }, 1);
    const two = runWorker({ ...common, mode: "decode", threads: 2 }, 2);
    const before = runWorker({ ...common, mode: "working-size", threads: 2 }, 2);
    // Decoding on 2 pool threads while the tensor steps keep to 1: no libtorch thread waits for a core.
    const twoOne = runWorker({ ...common, mode: "decode", threads: 1 }, 2);
    return {
      values: {
        images_per_s_w0: one.imagesPerSecond,
        images_per_s_1: one.imagesPerSecond,
        images_per_s_2: two.imagesPerSecond,
        images_per_s_2_decoding_1: twoOne.imagesPerSecond,
        images_per_s_working_size_1: beforeOne.imagesPerSecond,
        images_per_s_working_size_2: before.imagesPerSecond,
      },
      details: {
        cpu: cpuLine(),
        folder: FOLDER,
        images: IMAGES,
        batch: BATCH,
        batches: common.batches,
        warmup_batches: common.warmup,
        one_thread: one,
        two_threads: two,
        two_decoding_one_libtorch: twoOne,
        working_size_one_thread: beforeOne,
        working_size_two_threads: before,
      },
    };
  },
};
