// The loader's worker threads (LoaderOptions.workers), PyTorch DataLoader's num_workers for image
// folders: each batch's two training views are decoded, cut and augmented in a worker thread, beside
// the thread that trains, and come back as the finished float views.
//
// Why threads: on the training thread, the augmentation of a folder batch (colour jitter, blur,
// normalise on 224×224 views) waits for the step and the step waits for it, and libtorch's threads
// for those small ops spend a third of their time spinning. A worker runs libtorch with one thread of
// its own (OpenMP's thread count belongs to the calling thread), as a DataLoader worker process does.
//
// What stays on the loader's thread: every random draw (the views' stream, in batch order, so that
// a run draws the same parameters whatever the number of workers) and the images' sizes. A job is
// plain data (files, sizes, drawn parameters); a result is each view's float32 bytes in parts,
// transferred, joined here into the batch.
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

import { cat, fromBytes, scope, type Tensor } from "../torch/index.js";
import type { ApplySettings } from "./augment/apply.js";
import type { DecodeParams } from "./augment/sampling.js";
import type { TwoViews } from "./augment/two-view.js";
import { DatasetError, type CropSources } from "./dataset.js";

/** One batch for a worker: its files, and both views' parameters drawn on the loader's thread. */
export interface AugmentJob {
  id: number;
  sources: CropSources;
  query: DecodeParams;
  key: DecodeParams;
  /** [height, width] the crops are cut at. */
  size: [number, number];
  settings: ApplySettings;
}

/** An error as it crosses from a worker: enough to raise the same error again. */
export interface WorkerError {
  name: string;
  message: string;
  code?: string;
  path?: string;
}

/**
 * A worker's answer: both views as float32 [B, C, h, w], each as the bytes of consecutive parts of
 * the batch (in image order), or the error that stopped the batch.
 */
export type AugmentResult =
  | { id: number; shape: [number, number, number, number]; query: ArrayBuffer[]; key: ArrayBuffer[] }
  | { id: number; error: WorkerError };

/** The error a worker sent, raised again here with its class, code and file. */
function reviveError(e: WorkerError): Error {
  if (e.name === "DatasetError" && e.path !== undefined && e.code !== undefined) {
    const prefix = `${e.path}: `;
    const detail = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    return new DatasetError(e.code as ConstructorParameters<typeof DatasetError>[0], e.path, detail);
  }
  const Kind = e.name === "RangeError" ? RangeError : e.name === "TypeError" ? TypeError : Error;
  const error = new Kind(e.message);
  if (Kind === Error && e.name !== "Error") error.name = e.name;
  return error;
}

/** A batch [B, C, h, w] of float32 from the bytes of its consecutive parts (along B). */
function joinParts(parts: readonly ArrayBuffer[], [, c, h, w]: readonly [number, number, number, number]): Tensor {
  const perImage = c * h * w * 4;
  return scope(() =>
    cat(
      parts.map((bytes) => fromBytes(new Uint8Array(bytes), "float32", [bytes.byteLength / perImage, c, h, w])),
      0,
    ),
  );
}

interface Pending {
  resolve: (views: TwoViews) => void;
  reject: (error: Error) => void;
  thread: Thread;
}

interface Thread {
  worker: Worker;
  jobs: number;
}

/** A new worker thread running augment-worker: the compiled module, or its TypeScript source under tsx. */
function startWorker(): Worker {
  const ext = extname(fileURLToPath(import.meta.url));
  const entry = new URL(`./augment-worker${ext}`, import.meta.url);
  if (ext !== ".ts") return new Worker(entry);
  // A development checkout run through tsx: a worker does not inherit tsx's loader (nor does
  // `--import tsx` in its execArgv reach its entry module), so the worker registers it first.
  const api = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true });
}

/** A fixed set of worker threads that augment batches of image-folder views (AugmentJob). */
export class AugmentWorkers {
  readonly count: number;
  readonly #threads: Thread[];
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  /** Why the pool can take no more jobs (a worker failed, or close()), or null. */
  #stopped: Error | null = null;

  constructor(count: number) {
    if (!Number.isSafeInteger(count) || count < 1)
      throw new RangeError(`AugmentWorkers: count must be a positive integer, got ${String(count)}`);
    this.count = count;
    this.#threads = Array.from({ length: count }, () => {
      const worker = startWorker();
      // An idle worker does not keep the process alive; one with a job does (run, #settle).
      worker.unref();
      const thread: Thread = { worker, jobs: 0 };
      worker.on("message", (result: AugmentResult) => this.#settle(result));
      worker.on("error", (error: Error) => this.#fail(new Error(`a loader worker failed: ${error.message}`)));
      worker.on("exit", (code) => {
        if (this.#stopped === null) this.#fail(new Error(`a loader worker exited (code ${code})`));
      });
      return thread;
    });
  }

  /** Both views of one batch, decoded and augmented in the least busy worker. Tensors are the caller's. */
  run(job: Omit<AugmentJob, "id">): Promise<TwoViews> {
    if (this.#stopped !== null) return Promise.reject(this.#stopped);
    const thread = this.#threads.reduce((a, b) => (b.jobs < a.jobs ? b : a));
    const id = this.#nextId++;
    return new Promise<TwoViews>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, thread });
      if (thread.jobs++ === 0) thread.worker.ref();
      thread.worker.postMessage({ ...job, id } satisfies AugmentJob);
    });
  }

  #settle(result: AugmentResult): void {
    const pending = this.#pending.get(result.id);
    if (pending === undefined) return;
    this.#pending.delete(result.id);
    if (--pending.thread.jobs === 0) pending.thread.worker.unref();
    if ("error" in result) {
      pending.reject(reviveError(result.error));
      return;
    }
    let query: Tensor | null = null;
    try {
      query = joinParts(result.query, result.shape);
      const key = joinParts(result.key, result.shape);
      pending.resolve({ query, key });
    } catch (error) {
      query?.dispose();
      pending.reject(error as Error);
    }
  }

  /** Rejects every job in flight and takes no more (a worker died: its jobs cannot be recovered). */
  #fail(error: Error): void {
    if (this.#stopped === null) this.#stopped = error;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(error);
    }
    void this.close();
  }

  /** Stops the workers; jobs in flight are rejected. */
  async close(): Promise<void> {
    this.#stopped ??= new Error("the loader's workers were closed");
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      pending.reject(this.#stopped);
    }
    await Promise.all(this.#threads.map((t) => t.worker.terminate()));
  }
}
