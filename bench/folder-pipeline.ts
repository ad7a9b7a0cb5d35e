// Issue #15's image-folder benchmarks: the data pipeline of a MoCo v2 run on an image folder, alone
// (no training step), two views at 224. Two folders of generated JPEGs (seeded, varied content:
// test/helpers/jpeg-folder.ts; kept in the temp folder and reused):
// - folder-pipeline: 512 JPEGs of 500×375 (ImageNet's typical size), batch 64;
// - folder-pipeline-large: 48 JPEGs of 3000×2000 (a photo camera's), batch 16. Every crop of MoCo
//   v2's scale 0.2–1 at 224 shrinks 3× or more there, so each image is decoded reduced (JPEG
//   shrink-on-load) before its crops are cut; torchvision decodes it in full.
//
// Ours: the loader with the crops cut while decoding (each image decoded once with sharp, its two
// crops cut and resized with libtorch), then the rest of MoCo v2's augmentation on tensors. How it
// parallelises: libuv's thread pool decodes (UV_THREADPOOL_SIZE, one image per thread); the crops and
// the tensor steps run in the loader's worker threads (one libtorch thread each), or without workers
// in the loader's own thread on libtorch's threads. Each measurement in a process of its own
// (bench/folder-pipeline-worker.ts).
// Python: torchvision's ImageFolder + DataLoader with the official TwoCropsTransform and v2
// augmentation on PIL images, num_workers 0, 1 and 2 (bench/py/folder-pipeline.py).
//
// Rows: ours without workers at 1 thread (1 decoding, 1 libtorch) next to num_workers=0 (everything
// in the main process); ours with 1 and 2 workers (and libuv's default 4 decoding threads, as a run
// gets them) next to 1 and 2 DataLoader workers; ours without workers at 2 threads; and, on the 500×375 folder, ours at 1 and 2
// threads with the pipeline of before session 4 (every image decoded to 256×256, the centre square,
// views cropped on tensors). Ours with N workers may use N cores besides its decoding threads, as a
// DataLoader worker decodes in its own process: the JSON has each run's images per CPU-second (all
// threads), which background load also moves less.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { readCpuCapabilities } from "../src/torch/index.js";
import { writeJpegFolder, type JpegFolderOptions } from "../test/helpers/jpeg-folder.js";
import type { WorkerPlan, WorkerReport } from "./folder-pipeline-worker.js";
import type { BenchEntry, MetricSpec } from "./framework.js";

const here = dirname(fileURLToPath(import.meta.url));
/** libuv's thread pool when UV_THREADPOOL_SIZE is not set. */
const NODE_POOL_THREADS = 4;
const WORKER_TIMEOUT_MS = 5 * 60_000;

/** One folder to measure: its images, and the batches read from it. */
interface FolderPlan {
  images: JpegFolderOptions;
  batch: number;
  /** Timed batches (the quick mode's 3 otherwise). */
  batches: number;
}

/** The generated folder: named by what is in it, so that a folder of other images is never reused. */
function folderPath(images: JpegFolderOptions): string {
  const quality = images.quality ?? 90;
  return join(
    tmpdir(),
    `moco-bench-jpegs-${images.images}x${images.width}x${images.height}-seed${images.seed}-q${quality}`,
  );
}

/** Generates the JPEGs unless a complete folder is already there. */
async function ensureFolder(images: JpegFolderOptions): Promise<void> {
  const folder = folderPath(images);
  const complete = join(folder, ".complete");
  if (existsSync(complete) && readFileSync(complete, "utf8") === JSON.stringify(images)) return;
  rmSync(folder, { recursive: true, force: true });
  await writeJpegFolder(folder, images);
  writeFileSync(complete, JSON.stringify(images));
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

const THROUGHPUT = { unit: "images/s", better: "higher", digits: 1 } as const;

/** The rows both folders show. */
const COMMON_METRICS: MetricSpec[] = [
  {
    key: "images_per_s_w0",
    label: "ours, no workers, 1 thread vs DataLoader num_workers=0",
    ...THROUGHPUT,
    informational: true,
  },
  { key: "images_per_s_1", label: "ours 1 worker vs num_workers=1", ...THROUGHPUT, target: 1.0 },
  { key: "images_per_s_2", label: "ours 2 workers vs num_workers=2", ...THROUGHPUT, target: 1.0 },
  { key: "images_per_s_in_thread_2", label: "ours, no workers, 2 threads", ...THROUGHPUT, oursOnly: true },
];

/** The rows of the pipeline as it was before cutting crops while decoding (the 500×375 folder only). */
const BEFORE_METRICS: MetricSpec[] = [
  {
    key: "images_per_s_working_size_1",
    label: "ours before (256² then crops on tensors), 1 thread",
    ...THROUGHPUT,
    oursOnly: true,
  },
  {
    key: "images_per_s_working_size_2",
    label: "ours before (256² then crops on tensors), 2 threads",
    ...THROUGHPUT,
    oursOnly: true,
  },
];

function folderEntry(name: string, plan: FolderPlan, withBefore: boolean): BenchEntry {
  const { images, batch } = plan;
  const folder = folderPath(images);
  return {
    name,
    description: `image folder: ${images.images} JPEGs of ${images.width}×${images.height}, two MoCo v2 views at 224, batch ${batch} (vs ImageFolder + DataLoader)`,
    python: "folder-pipeline.py",
    pythonArgs: [folder, "--batch", String(batch), "--batches", String(plan.batches)],
    rounds: 2,
    metrics: withBefore ? [...COMMON_METRICS, ...BEFORE_METRICS] : COMMON_METRICS,
    async prepare() {
      await ensureFolder(images);
    },
    runOurs({ quick }) {
      const common = { folder, batch, warmup: 2, batches: quick ? 3 : plan.batches };
      // Alternating the pipelines, so that a change of background load hits them alike.
      const inThread = runWorker({ ...common, mode: "decode", threads: 1, workers: 0 }, 1);
      const beforeOne = withBefore ? runWorker({ ...common, mode: "working-size", threads: 1, workers: 0 }, 1) : null;
      // Workers as `moco pretrain --workers N` runs them: libuv's default pool of 4 decoding threads.
      const one = runWorker({ ...common, mode: "decode", threads: 1, workers: 1 }, NODE_POOL_THREADS);
      const two = runWorker({ ...common, mode: "decode", threads: 1, workers: 2 }, NODE_POOL_THREADS);
      const before = withBefore ? runWorker({ ...common, mode: "working-size", threads: 2, workers: 0 }, 2) : null;
      const inThreadTwo = runWorker({ ...common, mode: "decode", threads: 2, workers: 0 }, 2);
      return {
        values: {
          images_per_s_w0: inThread.imagesPerSecond,
          images_per_s_1: one.imagesPerSecond,
          images_per_s_2: two.imagesPerSecond,
          images_per_s_in_thread_2: inThreadTwo.imagesPerSecond,
          ...(beforeOne === null || before === null
            ? {}
            : {
                images_per_s_working_size_1: beforeOne.imagesPerSecond,
                images_per_s_working_size_2: before.imagesPerSecond,
              }),
        },
        details: {
          cpu: cpuLine(),
          folder,
          images,
          batch,
          batches: common.batches,
          warmup_batches: common.warmup,
          no_workers_one_thread: inThread,
          one_worker: one,
          two_workers: two,
          no_workers_two_threads: inThreadTwo,
          ...(beforeOne === null || before === null
            ? {}
            : { working_size_one_thread: beforeOne, working_size_two_threads: before }),
        },
      };
    },
  };
}

export const folderPipeline = folderEntry(
  "folder-pipeline",
  { images: { images: 512, classes: 4, width: 500, height: 375, seed: 15, quality: 90 }, batch: 64, batches: 16 },
  true,
);

export const folderPipelineLarge = folderEntry(
  "folder-pipeline-large",
  { images: { images: 48, classes: 4, width: 3000, height: 2000, seed: 16, quality: 90 }, batch: 16, batches: 4 },
  false,
);
