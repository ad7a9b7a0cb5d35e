// The one training loop (style point 11; after PyTorch Ignite's Engine, Keras/Lightning callbacks and
// torchtune's recipes). A `TrainingState` holds what a run must restore (model, optimizer, random
// streams, counters) and is a state dict in and out; `runLoop` runs one synchronous step function per
// batch inside a scope and tells hooks what happened. Pretraining (train/pretrain.ts) and linear
// evaluation (eval/lincls.ts) are two configurations of it: their own step function and hooks.
//
// Events, in order:
//   started                      once, before the first batch (baselines, logs)
//   epochStarted(epoch)          before an epoch's first batch (the lr of the epoch)
//   iterationStarted(position)   before each step (a per-step lr)
//   iterationCompleted(p, out)   after each step (non-finite guard, metrics, progress)
//   epochCompleted(position)     after an epoch's last batch (evaluation, checkpoint)
//   stopped(position, reason)    the run stops inside an epoch: Ctrl-C or the step budget (checkpoint)
//   completed(outcome)           once, at the end unless a step threw
import type { Module } from "../nn/index.js";
import type { SGD, SGDStateDict } from "../optim/index.js";
import { getRngState, scope, setRngState, type Tensor } from "../torch/index.js";

/** Where a run stands. `epochStep` counts the steps done in epoch `epoch` (0 at its start). */
export interface LoopPosition {
  /** Completed epochs (the index of the running one). */
  epoch: number;
  /** Steps done in the running epoch. */
  epochStep: number;
  /** Steps done in all. */
  step: number;
}

/** A random stream whose state round-trips through plain values (e.g. data/random.ts's `Random`). */
export interface RandomStream<S> {
  getState(): S;
  setState(state: S): void;
}

export interface TrainingStateDict<S = unknown> extends LoopPosition {
  model: Map<string, Tensor>;
  optimizer: SGDStateDict;
  /** libtorch's CPU generator (model init, the key shuffle), when the state carries it. */
  torchRng: Tensor | null;
  /** The states of the state's own streams (augmentation), by name. */
  streams: Record<string, S>;
}

/**
 * Everything a run must restore to continue exactly: model, optimizer, random streams and counters.
 * The loop advances the counters. As PyTorch's `state_dict()`, `stateDict()` hands out views of the
 * live tensors (save or clone them before training on; free the handles with disposeStateDict), and
 * `loadStateDict()` copies values in.
 */
export class TrainingState<S = unknown> implements LoopPosition {
  epoch = 0;
  epochStep = 0;
  step = 0;

  constructor(
    readonly model: Module<never[], unknown>,
    readonly optimizer: SGD,
    readonly streams: Readonly<Record<string, RandomStream<S>>> = {},
    /** Whether libtorch's global generator is part of the state (it is when the step draws from it). */
    readonly withTorchRng = true,
  ) {}

  get position(): LoopPosition {
    return { epoch: this.epoch, epochStep: this.epochStep, step: this.step };
  }

  stateDict(): TrainingStateDict<S> {
    const streams: Record<string, S> = {};
    for (const [name, stream] of Object.entries(this.streams)) streams[name] = stream.getState();
    return {
      ...this.position,
      model: this.model.stateDict(),
      optimizer: this.optimizer.stateDict(),
      torchRng: this.withTorchRng ? getRngState() : null,
      streams,
    };
  }

  /** Restores a state dict; streams it lacks keep their state (e.g. a run over a different world size). */
  loadStateDict(dict: TrainingStateDict<S>): void {
    this.model.loadStateDict(dict.model, { strict: true });
    this.optimizer.loadStateDict(dict.optimizer);
    if (this.withTorchRng && dict.torchRng !== null) setRngState(dict.torchRng);
    for (const [name, stream] of Object.entries(this.streams)) {
      const state = dict.streams[name];
      if (state !== undefined) stream.setState(state);
    }
    this.epoch = dict.epoch;
    this.epochStep = dict.epochStep;
    this.step = dict.step;
  }
}

/**
 * Frees the handles a TrainingState.stateDict() made (model views and the RNG state); the optimizer's
 * momentum buffers are its own live tensors and stay.
 */
export function disposeStateDict(dict: TrainingStateDict<unknown>): void {
  for (const tensor of dict.model.values()) tensor.dispose();
  dict.torchRng?.dispose();
}

export type StopReason = "signal" | "steps";

export interface LoopOutcome {
  /** Stopped by the signal (the run can resume from its state). */
  interrupted: boolean;
  /** Why the run ended before its last epoch, or null when it ran them all. */
  stoppedBy: StopReason | null;
  position: LoopPosition;
}

type Awaitable = void | Promise<void>;

/**
 * What a hook may listen to; each hook implements only its events. Per-step events are synchronous
 * (a step is a few milliseconds to seconds; awaiting between steps only lets Ctrl-C in).
 */
export interface LoopHooks<Output> {
  started?(position: LoopPosition): Awaitable;
  epochStarted?(epoch: number): Awaitable;
  iterationStarted?(position: LoopPosition): void;
  /** `position` already counts this step. */
  iterationCompleted?(position: LoopPosition, output: Output): void;
  /** `position.epoch` counts the epoch just completed; `epochStep` is 0. */
  epochCompleted?(position: LoopPosition): Awaitable;
  stopped?(position: LoopPosition, reason: StopReason): Awaitable;
  completed?(outcome: LoopOutcome): Awaitable;
}

/** What the loop needs of a batch: its index in the epoch, and a way to free it. */
export interface LoopBatch {
  step: number;
  dispose(): void;
}

export interface LoopSpec<Batch extends LoopBatch, Output> {
  /** The counters the loop advances (a TrainingState, resumed or fresh). */
  state: LoopPosition;
  epochs: number;
  /** Stop once this many steps are done in all (null: no budget). */
  maxSteps?: number | null;
  /** The batches of an epoch from its `startStep`-th on. */
  batches(epoch: number, startStep: number): AsyncIterable<Batch>;
  /**
   * One step, synchronous, run inside a scope: every tensor it makes is freed when it returns, so the
   * output should be plain numbers. `position` is before the step.
   */
  step(batch: Batch, position: LoopPosition): Output;
  hooks: readonly LoopHooks<Output>[];
  /** Aborting stops the run before the next step (or epoch, with `stopBetween: "epochs"`). */
  signal?: AbortSignal;
  /**
   * Where the signal may stop the run: between steps (default), or only between epochs, for a run
   * whose checkpoints record completed epochs alone (main_lincls.py's).
   */
  stopBetween?: "steps" | "epochs";
  /**
   * Turns the local abort flag into the run's decision; a data-parallel run makes every rank stop at
   * the same step (Ctrl-C reaches the ranks at different moments). Default: the flag itself.
   */
  agree?: (aborted: boolean) => boolean;
}

async function emit<Output>(hooks: readonly LoopHooks<Output>[], call: (hook: LoopHooks<Output>) => Awaitable) {
  for (const hook of hooks) await call(hook);
}

/** Runs epochs from the state's position until the last epoch, the step budget or the signal. */
export async function runLoop<Batch extends LoopBatch, Output>(spec: LoopSpec<Batch, Output>): Promise<LoopOutcome> {
  const { state, hooks } = spec;
  const maxSteps = spec.maxSteps ?? Infinity;
  const agree = spec.agree ?? ((aborted: boolean) => aborted);
  const position = (): LoopPosition => ({ epoch: state.epoch, epochStep: state.epochStep, step: state.step });
  let stoppedBy: StopReason | null = null;

  await emit(hooks, (h) => h.started?.(position()));
  const perStep = spec.stopBetween !== "epochs";
  epochs: while (stoppedBy === null && state.epoch < spec.epochs) {
    if (!perStep && agree(spec.signal?.aborted === true)) {
      stoppedBy = "signal";
      await emit(hooks, (h) => h.stopped?.(position(), "signal"));
      break;
    }
    await emit(hooks, (h) => h.epochStarted?.(state.epoch));
    for await (const batch of spec.batches(state.epoch, state.epochStep)) {
      try {
        // Checked once the batch is in hand, so an epoch whose last step is done still completes.
        const stop = perStep && agree(spec.signal?.aborted === true);
        if (stop || state.step >= maxSteps) {
          const reason: StopReason = stop ? "signal" : "steps";
          stoppedBy = reason;
          await emit(hooks, (h) => h.stopped?.(position(), reason));
          break epochs;
        }
        const before = position();
        for (const hook of hooks) hook.iterationStarted?.(before);
        const output = scope(() => spec.step(batch, before));
        state.step += 1;
        state.epochStep = batch.step + 1;
        const after = position();
        for (const hook of hooks) hook.iterationCompleted?.(after, output);
      } finally {
        batch.dispose();
      }
      // In-memory batches resolve as microtasks: without a turn of the event loop, Ctrl-C (and the
      // finalizers of forgotten tensors) would wait for the end of the run.
      await new Promise((resolve) => setImmediate(resolve));
    }
    state.epoch += 1;
    state.epochStep = 0;
    await emit(hooks, (h) => h.epochCompleted?.(position()));
    if (state.step >= maxSteps && state.epoch < spec.epochs) stoppedBy = "steps";
  }
  const outcome: LoopOutcome = { interrupted: stoppedBy === "signal", stoppedBy, position: position() };
  await emit(hooks, (h) => h.completed?.(outcome));
  return outcome;
}
