// The phases of a MoCo training step, for a profiler: the step tells an optional PhaseTimer when
// each phase ends. Absent (the default), a step pays one `undefined` check per phase.

/**
 * The phases of one training step, in the order a non-symmetric step runs them: the two views of a
 * batch, then Algorithm 1 (momentum update, query forward, key forward with the batch shuffle,
 * logits, enqueue), then the trainer's loss, backward pass and optimizer step. With the symmetric loss,
 * query, key and logits run twice (once per direction).
 */
export const STEP_PHASES = [
  "data",
  "momentum",
  "query",
  "key",
  "logits",
  "enqueue",
  "loss",
  "backward",
  "optimizer",
] as const;

export type StepPhase = (typeof STEP_PHASES)[number];

/** Told each time a phase of the step has just ended (the next one starts at once). */
export interface PhaseTimer {
  lap(phase: StepPhase): void;
}

/**
 * A PhaseTimer that sums the wall-clock time of each phase: the time from the previous lap (or from
 * `start`) to this one. Ops on the CPU are synchronous, so that time is the phase's; on a device whose
 * ops are queued (CUDA), pass `sync` (waits for the device) and it is called before each reading.
 */
export class PhaseClock implements PhaseTimer {
  /** Seconds per phase, summed over every lap of that phase since construction or `reset`. */
  readonly seconds = new Map<StepPhase, number>();
  /** Laps per phase. */
  readonly laps = new Map<StepPhase, number>();
  readonly #sync: (() => void) | undefined;
  #last = 0;

  constructor(options: { sync?: () => void } = {}) {
    this.#sync = options.sync;
  }

  /** Marks the start of a step (or of whatever the next lap measures). */
  start(): void {
    this.#sync?.();
    this.#last = performance.now();
  }

  lap(phase: StepPhase): void {
    this.#sync?.();
    const t = performance.now();
    this.seconds.set(phase, (this.seconds.get(phase) ?? 0) + (t - this.#last) / 1000);
    this.laps.set(phase, (this.laps.get(phase) ?? 0) + 1);
    this.#last = t;
  }

  reset(): void {
    this.seconds.clear();
    this.laps.clear();
  }
}
