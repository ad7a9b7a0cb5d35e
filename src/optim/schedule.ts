// Learning-rate schedules as pure functions of the (possibly fractional) epoch, so that a resumed run
// gets exactly the learning rate it would have had: nothing is stepped, nothing is stored.
//
// Epochs count from 0, as in the official MoCo code (`adjust_learning_rate(optimizer, epoch, args)`
// is called at the start of epoch `epoch`). For a per-iteration schedule pass the fractional epoch
// `epoch + iteration / itersPerEpoch` (see `fractionalEpoch`).

/** The learning rate at an epoch (a whole number for per-epoch schedules, fractional per iteration). */
export type LrSchedule = (epoch: number) => number;

function checkFinite(value: unknown, what: string, op: string): number {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new TypeError(`${op}: ${what} must be a finite number, got ${String(value)}`);
  }
  return value;
}

function checkEpoch(epoch: unknown, op: string): number {
  const e = checkFinite(epoch, "epoch", op);
  if (e < 0) throw new RangeError(`${op}: epoch must be >= 0, got ${e}`);
  return e;
}

function checkBaseLr(lr: unknown, op: string): number {
  const value = checkFinite(lr, "lr", op);
  if (value < 0) throw new RangeError(`${op}: lr must be >= 0, got ${value}`);
  return value;
}

/** `epoch + iteration / itersPerEpoch`: the argument of a per-iteration schedule. */
export function fractionalEpoch(epoch: number, iteration: number, itersPerEpoch: number): number {
  const op = "fractionalEpoch";
  if (!Number.isSafeInteger(itersPerEpoch) || itersPerEpoch < 1) {
    throw new RangeError(`${op}: itersPerEpoch must be an integer >= 1, got ${itersPerEpoch}`);
  }
  if (!Number.isSafeInteger(iteration) || iteration < 0 || iteration >= itersPerEpoch) {
    throw new RangeError(`${op}: iteration must be an integer in [0, ${itersPerEpoch}), got ${iteration}`);
  }
  return checkEpoch(epoch, op) + iteration / itersPerEpoch;
}

/** The same learning rate at every epoch. */
export function constantSchedule(lr: number): LrSchedule {
  const base = checkBaseLr(lr, "constantSchedule");
  return (epoch) => {
    checkEpoch(epoch, "constantSchedule");
    return base;
  };
}

export interface StepScheduleOptions {
  /** The initial learning rate. */
  lr: number;
  /** Epochs at which the rate is multiplied by `gamma` (MoCo v1: [120, 160]). */
  milestones: readonly number[];
  /** The factor at each milestone (default 0.1). */
  gamma?: number;
}

/**
 * Multiplies the rate by `gamma` at each milestone reached (epoch >= milestone). Computed as the
 * official MoCo `adjust_learning_rate` does, `lr *= gamma` once per milestone passed, which is also
 * what torch.optim.lr_scheduler.MultiStepLR produces for distinct milestones.
 */
export function stepSchedule(options: StepScheduleOptions): LrSchedule {
  const op = "stepSchedule";
  const base = checkBaseLr(options.lr, op);
  const gamma = checkFinite(options.gamma ?? 0.1, "gamma", op);
  if (gamma < 0) throw new RangeError(`${op}: gamma must be >= 0, got ${gamma}`);
  if (!Array.isArray(options.milestones)) throw new TypeError(`${op}: milestones must be an array of epochs`);
  const milestones = options.milestones.map((m, i) => {
    const v = checkFinite(m, `milestones[${i}]`, op);
    if (v < 0) throw new RangeError(`${op}: milestones[${i}] must be >= 0, got ${v}`);
    return v;
  });
  return (epoch) => {
    const e = checkEpoch(epoch, op);
    let lr = base;
    for (const milestone of milestones) lr *= e >= milestone ? gamma : 1;
    return lr;
  };
}

export interface CosineScheduleOptions {
  /** The initial learning rate. */
  lr: number;
  /** Total epochs: the rate reaches `minLr` at `epochs`. */
  epochs: number;
  /** The floor (default 0, as MoCo v2 and CosineAnnealingLR's eta_min). */
  minLr?: number;
}

/**
 * Half a cosine from `lr` at epoch 0 to `minLr` at `epochs`: with minLr 0 this is the official MoCo v2
 * `lr *= 0.5 * (1. + math.cos(math.pi * epoch / args.epochs))`, evaluated in the same order; otherwise
 * CosineAnnealingLR's closed form `minLr + (lr - minLr) * (1 + cos(pi * epoch / epochs)) / 2`.
 * Epochs beyond `epochs` stay at `minLr`.
 */
export function cosineSchedule(options: CosineScheduleOptions): LrSchedule {
  const op = "cosineSchedule";
  const base = checkBaseLr(options.lr, op);
  const epochs = checkFinite(options.epochs, "epochs", op);
  if (epochs <= 0) throw new RangeError(`${op}: epochs must be > 0, got ${epochs}`);
  const minLr = checkBaseLr(options.minLr ?? 0, op);
  if (minLr > base) throw new RangeError(`${op}: minLr (${minLr}) must not exceed lr (${base})`);
  return (epoch) => {
    const e = Math.min(checkEpoch(epoch, op), epochs);
    if (minLr === 0) return base * (0.5 * (1 + Math.cos((Math.PI * e) / epochs)));
    return minLr + ((base - minLr) * (1 + Math.cos((Math.PI * e) / epochs))) / 2;
  };
}

export interface WarmupOptions {
  /** Length of the warmup in epochs (may be fractional). */
  epochs: number;
  /** The factor at epoch 0 (default 0); it rises linearly to 1 at `epochs`, as LinearLR's start_factor. */
  startFactor?: number;
}

/**
 * Linear warmup on top of any schedule: `schedule(epoch) * factor(epoch)` with the factor rising
 * linearly from `startFactor` at epoch 0 to 1 at `epochs` (torch.optim.lr_scheduler.LinearLR with
 * end_factor 1, chained with the schedule). After the warmup the schedule is unchanged.
 */
export function withWarmup(schedule: LrSchedule, options: WarmupOptions): LrSchedule {
  const op = "withWarmup";
  if (typeof schedule !== "function") throw new TypeError(`${op}: schedule must be a function of the epoch`);
  const warm = checkFinite(options.epochs, "epochs", op);
  if (warm < 0) throw new RangeError(`${op}: epochs must be >= 0, got ${warm}`);
  const start = checkFinite(options.startFactor ?? 0, "startFactor", op);
  if (start < 0 || start > 1) throw new RangeError(`${op}: startFactor must be in [0, 1], got ${start}`);
  return (epoch) => {
    const e = checkEpoch(epoch, op);
    const lr = schedule(e);
    if (e >= warm) return lr;
    return lr * (start + ((1 - start) * e) / warm);
  };
}

/** The minimal view of an optimizer that setLr needs: SGD satisfies it. */
export interface HasParamGroups {
  paramGroups: readonly { lr: number }[];
}

/** Sets the learning rate of every parameter group (the official MoCo code does the same). */
export function setLr(optimizer: HasParamGroups, lr: number): void {
  const value = checkBaseLr(lr, "setLr");
  for (const group of optimizer.paramGroups) group.lr = value;
}
