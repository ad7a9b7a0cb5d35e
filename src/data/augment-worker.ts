// The body of one loader worker thread (augment-workers.ts): for each job, the batch's crops decoded
// and cut (decodeFileCrops), the rest of the augmentation applied with the parameters drawn on the
// loader's thread (applyParams), and both views sent back as float32 buffers.
import { parentPort } from "node:worker_threads";

import { scope, setThreadNumThreads, type Tensor } from "../torch/index.js";
import { applyParams } from "./augment/apply.js";
import type { AugmentJob, AugmentResult, WorkerError } from "./augment-workers.js";
import { decodeFileCrops } from "./image-folder.js";

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

async function augment(job: AugmentJob): Promise<AugmentResult> {
  const crops = await decodeFileCrops(job.sources, [job.query, job.key], job.size);
  try {
    return scope(() => {
      const query = applyParams(job.settings, crops[0] as Tensor, job.query.rest);
      const key = applyParams(job.settings, crops[1] as Tensor, job.key.rest);
      const shape = query.shape as [number, number, number, number];
      // toBytes' buffers are the engine's copies, of exactly the tensor's bytes: transferable.
      return {
        id: job.id,
        shape,
        query: query.toBytes().buffer as ArrayBuffer,
        key: key.toBytes().buffer as ArrayBuffer,
      };
    });
  } finally {
    for (const t of crops) t.dispose();
  }
}

port.on("message", (job: AugmentJob) => {
  augment(job).then(
    (result) => port.postMessage(result, "error" in result ? [] : [result.query, result.key]),
    (error: unknown) => port.postMessage({ id: job.id, error: describe(error) } satisfies AugmentResult),
  );
});
