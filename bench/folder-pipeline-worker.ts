// One measurement of the folder-pipeline bench (bench/folder-pipeline.ts), in a process of its own so
// that its thread pools are its own: libuv's (UV_THREADPOOL_SIZE, set by the parent: it is read once,
// when the pool starts) decodes, libtorch's (`threads`) runs the tensor steps. Runs the loader over the
// folder with MoCo v2's two views at 224 as `moco pretrain` feeds its step, and prints one JSON line
// (WorkerReport).
//
// mode "decode": the crops cut while decoding (the loader's `views`, each view decoded straight to
// 224×224), then the rest of the pipeline on tensors (applyDecoded), in the loader's `workers` worker
// threads (each with one libtorch thread) or, with none, in this thread.
// mode "working-size": the pipeline before issue #15's change, for comparison: every image decoded
// to 256×256 (shorter side to 256, centre square), then both views cropped, resized and augmented on
// tensors (apply).
//
// Argument: a WorkerPlan as JSON.
import { DataLoader, IMAGENET_STATS, TwoViewAugment, mocoV2Config, openImageFolder } from "../src/data/index.js";
import { getNumThreads, setNumThreads } from "../src/torch/index.js";
import { peakRssMiB } from "./framework.js";

export interface WorkerPlan {
  folder: string;
  mode: "decode" | "working-size";
  /** libtorch threads of this thread (UV_THREADPOOL_SIZE is the parent's to set). */
  threads: number;
  /** The loader's worker threads (mode "decode"; 0: the pipeline runs in this thread). */
  workers: number;
  batch: number;
  warmup: number;
  batches: number;
}

export interface WorkerReport {
  imagesPerSecond: number;
  /** Source images per CPU-second of the whole process (every thread), over the timed batches. */
  imagesPerCpuSecond: number;
  threads: number;
  poolThreads: number;
  workers: number;
  peakRssMiB: number;
}

async function main(plan: WorkerPlan): Promise<WorkerReport> {
  setNumThreads(plan.threads);
  const size = 224;
  const dataset = await openImageFolder({ root: plan.folder, size: Math.round((size * 8) / 7) });
  const views = new TwoViewAugment(mocoV2Config({ size, stats: IMAGENET_STATS, scale: [0.2, 1] }), { seed: 0 });
  const loader = new DataLoader(dataset, {
    batchSize: plan.batch,
    seed: 0,
    ...(plan.mode === "decode" ? { views, workers: plan.workers } : {}),
  });
  let done = 0;
  let start = 0;
  let cpu0 = process.cpuUsage();
  for (let epoch = 0; done < plan.warmup + plan.batches; epoch++) {
    for await (const batch of loader.batches(epoch)) {
      if (done === plan.warmup) {
        start = performance.now();
        cpu0 = process.cpuUsage();
      }
      const { query, key } = batch.views === undefined ? views.apply(batch.images) : views.applyDecoded(batch.views);
      if (query.shape[2] !== size || key.shape[3] !== size) throw new Error(`views of ${query.shape.join("×")}`);
      query.dispose();
      key.dispose();
      batch.dispose();
      if (++done === plan.warmup + plan.batches) break;
    }
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await loader.close();
  dataset.dispose();
  const images = plan.batches * plan.batch;
  return {
    imagesPerSecond: images / seconds,
    imagesPerCpuSecond: images / ((cpu.user + cpu.system) / 1e6),
    threads: getNumThreads(),
    poolThreads: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    workers: loader.workers,
    peakRssMiB: peakRssMiB(),
  };
}

main(JSON.parse(process.argv[2] ?? "{}") as WorkerPlan).then(
  (report) => process.stdout.write(`${JSON.stringify(report)}\n`),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
