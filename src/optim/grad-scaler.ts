// Loss scaling for float16 autocast, as torch.amp.GradScaler: float16's narrow range flushes small
// gradients to zero, so the loss is multiplied by a large scale before backward, the gradients are
// divided by it before the step, and a step whose gradients overflowed is skipped and the scale
// halved; after `growthInterval` clean steps the scale doubles. bfloat16 has float32's range and
// needs none of this.
//
// On a GPU the two fused ops PyTorch's scaler uses do the work (_amp_foreach_non_finite_check_and_
// unscale_, _amp_update_scale_), so nothing leaves the device until step() reads the overflow flag,
// the one synchronisation torch's scaler makes too. libtorch 1.13 has no CPU kernels for them: on the
// CPU the same arithmetic runs through ordinary ops (float32 multiply by float32(1/scale), the same
// growth and backoff rules), which keeps the scaler testable without a GPU.
import { cuda, foreachMul_, gradsOf, keep, noGrad, scope, tensor, type Tensor } from "../torch/index.js";
import type { SGD } from "./sgd.js";

export interface GradScalerOptions {
  /** The first scale (torch: 2**16). */
  initScale?: number;
  /** Factor applied after `growthInterval` steps without overflow (torch: 2). */
  growthFactor?: number;
  /** Factor applied on an overflow (torch: 0.5). */
  backoffFactor?: number;
  /** Clean steps between two growths (torch: 2000). */
  growthInterval?: number;
  /** false: scale() returns the loss as is and step() always steps (torch's enabled=False). */
  enabled?: boolean;
}

/** torch.amp.GradScaler.state_dict()'s fields and names. */
export interface GradScalerState {
  scale: number;
  growth_factor: number;
  backoff_factor: number;
  growth_interval: number;
  _growth_tracker: number;
}

function positive(value: number, what: string, orEqualOne: "above" | "below"): number {
  const ok = Number.isFinite(value) && (orEqualOne === "above" ? value > 1 : value > 0 && value < 1);
  if (!ok)
    throw new RangeError(`GradScaler: ${what} must be ${orEqualOne === "above" ? "> 1" : "in (0, 1)"}, got ${value}`);
  return value;
}

export class GradScaler {
  readonly enabled: boolean;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  #initScale: number;
  #initTracker = 0;
  /** float32 [1] and int32 [1] on the gradients' device, made on the first scale(). */
  #scale: Tensor | null = null;
  #growthTracker: Tensor | null = null;
  /** This step's overflow flag (float32 [1]) once unscale_ ran, else null. */
  #foundInf: Tensor | null = null;

  constructor(options: GradScalerOptions = {}) {
    this.enabled = options.enabled ?? true;
    this.#initScale = options.initScale ?? 2 ** 16;
    if (!(Number.isFinite(this.#initScale) && this.#initScale > 0)) {
      throw new RangeError(`GradScaler: initScale must be a positive number, got ${this.#initScale}`);
    }
    this.growthFactor = positive(options.growthFactor ?? 2, "growthFactor", "above");
    this.backoffFactor = positive(options.backoffFactor ?? 0.5, "backoffFactor", "below");
    this.growthInterval = options.growthInterval ?? 2000;
    if (!Number.isSafeInteger(this.growthInterval) || this.growthInterval < 1) {
      throw new RangeError(`GradScaler: growthInterval must be a positive integer, got ${this.growthInterval}`);
    }
  }

  /** loss × scale (a new tensor), for backward(); the loss itself when disabled. */
  scale(loss: Tensor): Tensor {
    if (!this.enabled) return loss;
    if (this.#scale === null) {
      this.#scale = keep(tensor([this.#initScale], { dtype: "float32", device: loss.device }));
      this.#growthTracker = keep(tensor([this.#initTracker], { dtype: "int32", device: loss.device }));
    }
    return loss.mul(this.#scale.to(loss.dtype));
  }

  /** Divides the optimizer's gradients by the scale, in place, and notes whether any overflowed. */
  unscale_(optimizer: SGD): void {
    if (!this.enabled) return;
    if (this.#scale === null) throw new Error("GradScaler.unscale_: call scale() on the loss first");
    if (this.#foundInf !== null) throw new Error("GradScaler.unscale_: already called since the last update()");
    const scaleTensor = this.#scale;
    const grads = gradsOf(optimizer.paramGroups.flatMap((g) => g.params)).filter((g): g is Tensor => g !== null);
    this.#foundInf = keep(tensor([0], { dtype: "float32", device: scaleTensor.device }));
    const foundInf = this.#foundInf;
    noGrad(() =>
      scope(() => {
        // As torch: the reciprocal in float64, then float32.
        const invScale = scaleTensor.double().reciprocal().float();
        if (scaleTensor.device === "cpu") {
          for (const g of grads) if (!g.isfinite().all().item()) foundInf.fill_(1);
          foreachMul_(grads, invScale.item() as number);
        } else if (grads.length > 0) {
          cuda.ampForeachNonFiniteCheckAndUnscale_(grads, foundInf, invScale);
        }
      }),
    );
    for (const g of grads) g.dispose();
  }

  /** Unscales (if not done yet) and steps the optimizer unless a gradient overflowed; true if it stepped. */
  step(optimizer: SGD): boolean {
    if (!this.enabled) {
      optimizer.step();
      return true;
    }
    if (this.#foundInf === null) this.unscale_(optimizer);
    const overflow = (this.#foundInf as Tensor).item() !== 0;
    if (!overflow) optimizer.step();
    return !overflow;
  }

  /** Backs the scale off after an overflow, grows it after growthInterval clean steps; ends the step. */
  update(): void {
    if (!this.enabled || this.#scale === null) return;
    const foundInf = this.#foundInf;
    if (foundInf === null) throw new Error("GradScaler.update: no step was unscaled since the last update()");
    const scale = this.#scale;
    const tracker = this.#growthTracker as Tensor;
    if (scale.device === "cpu") {
      noGrad(() => {
        if (foundInf.item() !== 0) {
          scale.mul_(this.backoffFactor);
          tracker.fill_(0);
        } else {
          const successful = (tracker.item() as number) + 1;
          if (successful === this.growthInterval) {
            const grown = Math.fround((scale.item() as number) * this.growthFactor);
            if (Number.isFinite(grown)) scale.fill_(grown);
            tracker.fill_(0);
          } else tracker.fill_(successful);
        }
      });
    } else {
      cuda.ampUpdateScale_(scale, tracker, foundInf, this.growthFactor, this.backoffFactor, this.growthInterval);
    }
    foundInf.dispose();
    this.#foundInf = null;
  }

  /** The current scale (reads the device). */
  getScale(): number {
    if (!this.enabled) return 1;
    return this.#scale === null ? this.#initScale : (this.#scale.item() as number);
  }

  /** torch.amp.GradScaler.state_dict(): what a checkpoint keeps to resume the scaling exactly. */
  stateDict(): GradScalerState {
    return {
      scale: this.getScale(),
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.#growthTracker === null ? this.#initTracker : (this.#growthTracker.item() as number),
    };
  }

  /** Restores a stateDict() (ours or torch's); the tensors are made again on the next scale(). */
  loadStateDict(state: GradScalerState): void {
    if (!(Number.isFinite(state.scale) && state.scale > 0) || !Number.isSafeInteger(state._growth_tracker)) {
      throw new RangeError("GradScaler.loadStateDict: scale must be positive and _growth_tracker an integer");
    }
    this.dispose();
    this.#initScale = state.scale;
    this.#initTracker = state._growth_tracker;
  }

  dispose(): void {
    this.#scale?.dispose();
    this.#growthTracker?.dispose();
    this.#foundInf?.dispose();
    this.#scale = null;
    this.#growthTracker = null;
    this.#foundInf = null;
  }
}
