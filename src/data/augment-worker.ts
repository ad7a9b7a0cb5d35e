// The body of one loader worker thread (augment-workers.ts): for each job, the batch's crops decoded
// and cut (decodeFileCropList), the rest of the augmentation applied with the parameters drawn on the
// loader's thread (applyParams), and both views sent back as float32 buffers, part by part.
import { parentPort } from "node:worker_threads";

import { scope, setThreadNumThreads, stack, type Tensor } from "../torch/index.js";
import { applyParams, imagesPerGroup } from "./augment/apply.js";
import { sliceParams } from "./augment/sampling.js";
import type { AugmentJob, AugmentResult, WorkerError } from "./augment-workers.js";
import { decodeFileCropList } from "./image-folder.js";

const port = parentPort;
if (port === null) throw new Error("augment-worker runs as a worker thread of the loader (AugmentWorkers)");

// One libtorch thread for this worker's ops, beside the training thread's and the other workers';
// the process-wide count (the training thread's) is left alone.
setThreadNumThreads(1);

function describe(error: unknown): WorkerError {
  if (!(error instanceof Error)) return { name: "Error", message: String(error) };
  const out: WorkerError = { name: error.name, message: error.message };
  const { code, path } = error as { code?: unknown; path?: unknown };
  if (typeof code === "string") out.code = code;
  if (typeof path === "string") out.path = path;
  return out;
}

/**
 * Both views of the job's batch, in parts of imagesPerGroup images as applyParams takes them: each
 * part is stacked from its crops, augmented, and its bytes sent as they are; the loader's thread
 * joins them into the batch. (Whole batches here would mean a batch-sized tensor and buffer per view
 * and step, fresh pages from the kernel each time.)
 */
async function augment(job: AugmentJob): Promise<AugmentResult> {
  const crops = await decodeFileCropList(job.sources, [job.query, job.key], job.size);
  try {
    const n = job.sources.files.length;
    const group = imagesPerGroup(job.settings, job.sources.channels);
    const parts: { query: ArrayBuffer[]; key: ArrayBuffer[] } = { query: [], key: [] };
    let shape: [number, number, number, number] = [n, 0, 0, 0];
    for (let start = 0; start < n; start += group) {
      const end = Math.min(n, start + group);
      scope(() => {
        const views = [
          ["query", crops[0] as Tensor[], job.query.rest],
          ["key", crops[1] as Tensor[], job.key.rest],
        ] as const;
        for (const [name, cut, rest] of views) {
          const images = stack(cut.slice(start, end), 0);
          const out = applyParams(job.settings, images, sliceParams(rest, start, end));
          shape = [n, ...(out.shape.slice(1) as [number, number, number])];
          // toBytes' buffers are the engine's copies, of exactly the tensor's bytes: transferable.
          parts[name].push(out.toBytes().buffer as ArrayBuffer);
        }
      });
    }
    return { id: job.id, shape, query: parts.query, key: parts.key };
  } finally {
    for (const cut of crops) for (const t of cut) t.dispose();
  }
}

port.on("message", (job: AugmentJob) => {
  augment(job).then(
    (result) => port.postMessage(result, "error" in result ? [] : [...result.query, ...result.key]),
    (error: unknown) => port.postMessage({ id: job.id, error: describe(error) } satisfies AugmentResult),
  );
});
