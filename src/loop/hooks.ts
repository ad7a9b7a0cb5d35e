// Hooks of the training loop (loop.ts) that any configuration uses: the learning-rate schedule, the
// non-finite-loss guard, checkpoints, and rank-0-only work. Each receives only what it needs.
import { MocoError } from "../errors.js";
import { setLr, type HasParamGroups, type LrSchedule } from "../optim/index.js";
import type { LoopHooks, LoopPosition, StopReason } from "./loop.js";

/** The loss became NaN or infinite: the run stops; the last checkpoint written is intact. */
export class NonFiniteLossError extends MocoError {
  override name = "NonFiniteLossError";
  readonly value: number;
  constructor(value: number, message: string) {
    super("ERR_NON_FINITE_LOSS", message);
    this.value = value;
  }
}

/**
 * Sets the lr from `schedule` at each epoch's start (main_moco.py's adjust_learning_rate) or, with
 * `perStep`, before every step at the fractional epoch epoch + stepInEpoch / stepsPerEpoch (warmup).
 */
export function lrScheduleHook(
  optimizer: HasParamGroups,
  schedule: LrSchedule,
  options: { perStep: boolean; stepsPerEpoch: number },
): LoopHooks<unknown> {
  return {
    epochStarted(epoch) {
      setLr(optimizer, schedule(epoch));
    },
    iterationStarted(position) {
      if (options.perStep) setLr(optimizer, schedule(position.epoch + position.epochStep / options.stepsPerEpoch));
    },
  };
}

/** The lr a scheduled optimizer runs at (its first group's). */
export function currentLr(optimizer: HasParamGroups): number {
  return optimizer.paramGroups[0]?.lr ?? NaN;
}

/**
 * Stops the run with a NonFiniteLossError when a step's loss is NaN or infinite, before any later hook
 * (metrics, checkpoint) records it. `describe` words the message from the value and the position.
 */
export function nonFiniteLossGuard<Output>(
  loss: (output: Output) => number,
  describe: (value: number, position: LoopPosition) => string,
): LoopHooks<Output> {
  return {
    iterationCompleted(position, output) {
      const value = loss(output);
      if (!Number.isFinite(value)) throw new NonFiniteLossError(value, describe(value, position));
    },
  };
}

/**
 * Saves the state at each epoch's end and, with `onStop`, when the run stops inside an epoch (Ctrl-C,
 * the step budget), so that it resumes from there. `save` may be collective (every rank calls it).
 */
export function checkpointHook(
  save: (position: LoopPosition) => void,
  options: { onStop: boolean } = { onStop: true },
): LoopHooks<unknown> {
  return {
    epochCompleted(position) {
      save(position);
    },
    stopped(position: LoopPosition, _reason: StopReason) {
      if (options.onStop) save(position);
    },
  };
}

/** The hooks of work only rank 0 does (logs, metrics, the kNN monitor); none on other ranks. */
export function onRank0<Output>(rank: number, ...hooks: LoopHooks<Output>[]): LoopHooks<Output>[] {
  return rank === 0 ? hooks : [];
}
