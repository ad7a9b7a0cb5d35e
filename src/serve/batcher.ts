// Micro-batching with a bounded queue. Requests that arrive within `windowMs` of each other go
// through the encoder as one batch (one forward pass over B images costs far less than B passes of
// one), at most `maxBatch` at a time: a batch runs synchronously, so the event loop is held for at
// most one batch, and between batches it yields (setImmediate) so other requests are answered.
// Every job holds a slot from admission (before its image is decoded) to its answer; with all
// `capacity` slots taken a new job is refused at once (503 + Retry-After), so memory stays bounded
// whatever the load.
import { setImmediate as yieldToEventLoop } from "node:timers/promises";

import { QueueFullError, ShuttingDownError } from "./errors.js";

export interface BatcherOptions {
  /** Most items per batch. */
  maxBatch: number;
  /** How long the first item of a batch waits for company, in milliseconds. */
  windowMs: number;
  /** Most jobs admitted at once (decoding, queued or running). */
  capacity: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (error: unknown) => void;
}

export class MicroBatcher<I, O> {
  readonly options: BatcherOptions;
  readonly #run: (items: I[]) => O[];
  #queue: Waiting<I, O>[] = [];
  #admitted = 0;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Sizes of the batches run so far (for /v1/info and the tests). */
  readonly stats = { batches: 0, items: 0, largestBatch: 0, refused: 0 };

  /** `run` maps a batch of items to their results, in order; it throws to fail the whole batch. */
  constructor(run: (items: I[]) => O[], options: BatcherOptions) {
    for (const key of ["maxBatch", "capacity"] as const)
      if (!(Number.isSafeInteger(options[key]) && options[key] >= 1))
        throw new RangeError(`MicroBatcher: ${key} must be a positive integer, got ${options[key]}`);
    if (!(options.windowMs >= 0)) throw new RangeError(`MicroBatcher: windowMs must be >= 0, got ${options.windowMs}`);
    this.#run = run;
    this.options = options;
  }

  /** Jobs admitted and not yet answered. */
  get pending(): number {
    return this.#admitted;
  }

  /**
   * Admits a job (or throws QueueFullError / ShuttingDownError at once), awaits `prepare` (e.g. the
   * image decode, on libuv's threads), then queues its item for the next batch.
   */
  async submit(prepare: () => Promise<I>): Promise<O> {
    if (this.#closed) throw new ShuttingDownError();
    if (this.#admitted >= this.options.capacity) {
      this.stats.refused += 1;
      throw new QueueFullError(this.options.capacity);
    }
    this.#admitted += 1;
    try {
      const item = await prepare();
      return await new Promise<O>((resolve, reject) => {
        this.#queue.push({ item, resolve, reject });
        this.#schedule();
      });
    } finally {
      this.#admitted -= 1;
      if (this.#admitted === 0) for (const done of this.#idle.splice(0)) done();
    }
  }

  /** Stops admitting; resolves when every admitted job has been answered. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#admitted === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #schedule(): void {
    if (this.#running || this.#timer !== null) return;
    const wait = this.#queue.length >= this.options.maxBatch ? 0 : this.options.windowMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#drain();
    }, wait);
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.options.maxBatch);
        try {
          const outputs = this.#run(batch.map((w) => w.item));
          batch.forEach((w, i) => w.resolve(outputs[i] as O));
        } catch (error) {
          for (const w of batch) w.reject(error);
        }
        this.stats.batches += 1;
        this.stats.items += batch.length;
        this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
        // Lets the answers go out and new requests in before the next batch holds the thread.
        await yieldToEventLoop();
      }
    } finally {
      this.#running = false;
    }
  }
}
