// nn.BatchNorm2d with PyTorch's forward (num_batches_tracked, momentum=null as a cumulative
// average), and the split BatchNorm of the official MoCo CIFAR-10 demo (the official CIFAR-10 demo).
import { F, cat, noGrad, ones, zeros, type Tensor } from "../torch/index.js";
import { Module } from "./module.js";

export interface BatchNormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /**
   * Weight of the new batch statistic in the running average (default 0.1); null makes it a cumulative
   * moving average (factor 1/num_batches_tracked), as PyTorch's momentum=None.
   */
  momentum?: number | null;
  /** Learnable weight and bias (default true). */
  affine?: boolean;
  /** Keep running_mean/running_var/num_batches_tracked buffers (default true). */
  trackRunningStats?: boolean;
}

function checkInput(input: Tensor, numFeatures: number, op: string): void {
  const shape = input.shape;
  if (shape.length !== 4) throw new RangeError(`${op}: expected 4-d input (N, C, H, W), got ${shape.length}-d input`);
  if (shape[1] !== numFeatures) {
    throw new RangeError(`${op}: expected ${numFeatures} channels, got input of shape [${shape.join(", ")}]`);
  }
}

function checkBatch(input: Tensor, op: string): void {
  const shape = input.shape;
  const perChannel = (shape[0] as number) * shape.slice(2).reduce((a, b) => a * b, 1);
  if (perChannel === 1) {
    throw new RangeError(
      `${op}: expected more than 1 value per channel when training, got input of shape [${shape.join(", ")}]`,
    );
  }
}

/**
 * nn.BatchNorm2d. Parameters `weight` (ones), `bias` (zeros); buffers `running_mean` (zeros),
 * `running_var` (ones), `num_batches_tracked` (int64 scalar, incremented by each training forward).
 */
export class BatchNorm2d extends Module {
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(numFeatures: number, options: BatchNormOptions = {}) {
    super();
    const op = this.constructor.name;
    if (!Number.isSafeInteger(numFeatures) || numFeatures < 1) {
      throw new RangeError(`${op}: numFeatures must be a positive integer, got ${numFeatures}`);
    }
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.affine = options.affine ?? true;
    this.trackRunningStats = options.trackRunningStats ?? true;
    if (!(this.eps > 0)) throw new RangeError(`${op}: eps must be positive, got ${this.eps}`);
    if (this.momentum !== null && !(this.momentum >= 0 && this.momentum <= 1)) {
      throw new RangeError(`${op}: momentum must be in [0, 1] or null, got ${this.momentum}`);
    }
    this.registerParameter("weight", this.affine ? ones([numFeatures]) : null);
    this.registerParameter("bias", this.affine ? zeros([numFeatures]) : null);
    if (this.trackRunningStats) {
      this.registerBuffer("running_mean", zeros([numFeatures]));
      this.registerBuffer("running_var", ones([numFeatures]));
      this.registerBuffer("num_batches_tracked", zeros([], { dtype: "int64" }));
    } else {
      this.registerBuffer("running_mean", null);
      this.registerBuffer("running_var", null);
      this.registerBuffer("num_batches_tracked", null);
    }
  }

  get weight(): Tensor | null {
    return this.optionalParam("weight");
  }
  get bias(): Tensor | null {
    return this.optionalParam("bias");
  }
  get runningMean(): Tensor | null {
    return this.optionalBuffer("running_mean");
  }
  get runningVar(): Tensor | null {
    return this.optionalBuffer("running_var");
  }
  get numBatchesTracked(): Tensor | null {
    return this.optionalBuffer("num_batches_tracked");
  }

  /** running stats to 0/1, num_batches_tracked to 0. */
  resetRunningStats(): void {
    noGrad(() => {
      this.runningMean?.zero_();
      this.runningVar?.fill_(1);
      this.numBatchesTracked?.zero_();
    });
  }

  /** Running stats reset, weight 1, bias 0 (PyTorch's reset_parameters). */
  resetParameters(): void {
    this.resetRunningStats();
    noGrad(() => {
      this.weight?.fill_(1);
      this.bias?.zero_();
    });
  }

  forward(input: Tensor): Tensor {
    const op = this.typeName;
    checkInput(input, this.numFeatures, op);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      const nbt = this.numBatchesTracked;
      if (nbt !== null) {
        nbt.add_(1); // a buffer: no autograd involved
        factor = this.momentum ?? 1 / nbt.item();
      }
    }
    const useBatchStats = this.training || (this.runningMean === null && this.runningVar === null);
    if (useBatchStats) checkBatch(input, op);
    const track = !this.training || this.trackRunningStats;
    return F.batchNorm(input, track ? this.runningMean : null, track ? this.runningVar : null, {
      weight: this.weight,
      bias: this.bias,
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    const py = (b: boolean) => (b ? "True" : "False");
    return `${this.numFeatures}, eps=${this.eps}, momentum=${this.momentum ?? "None"}, affine=${py(this.affine)}, track_running_stats=${py(this.trackRunningStats)}`;
  }
}

/**
 * Which samples of a batch of N form each of the S splits. "interleaved": split s holds the samples n
 * with n mod S = s, as the official demo's `view(-1, C*S, H, W)` groups them. "consecutive": split s
 * holds samples s·N/S … (s+1)·N/S − 1, so that each split of a channels-last batch is one contiguous
 * block: the interleaved grouping cannot be viewed in that layout, and its copies to NCHW and back
 * cost more than the normalisation itself in bfloat16 (docs/recipe.md, issue #15). A ResNet whose
 * split layers all have S splits puts them in "consecutive" order and reorders its batch so that the
 * splits hold the official samples: see `ResNet.forward`.
 */
export type SplitOrder = "interleaved" | "consecutive";

/**
 * The split BatchNorm of the official MoCo CIFAR-10 demo (colab notebook `SplitBatchNorm`): in
 * training, each of the S splits of the batch is normalised with its own statistics and updates its
 * own copy of the running stats, which are then averaged over the S splits; num_batches_tracked is
 * not incremented, as in the demo. Which samples form a split: `order` (the demo's "interleaved" by
 * default). In eval mode it is plain BatchNorm2d. Its state-dict keys are BatchNorm2d's. Needs N
 * divisible by S and a numeric momentum.
 */
export class SplitBatchNorm extends BatchNorm2d {
  readonly numSplits: number;
  /** Set by the ResNet that owns the layer when it reorders its batch (see SplitOrder). */
  order: SplitOrder = "interleaved";

  constructor(numFeatures: number, numSplits: number, options: BatchNormOptions = {}) {
    super(numFeatures, options);
    if (!Number.isSafeInteger(numSplits) || numSplits < 1) {
      throw new RangeError(`SplitBatchNorm: numSplits must be a positive integer, got ${numSplits}`);
    }
    if (this.momentum === null)
      throw new RangeError("SplitBatchNorm: momentum must be a number (null is not supported)");
    this.numSplits = numSplits;
  }

  override forward(input: Tensor): Tensor {
    if (!this.training && this.trackRunningStats) return super.forward(input);
    const op = "SplitBatchNorm";
    checkInput(input, this.numFeatures, op);
    const [n, c, h, w] = input.shape as [number, number, number, number];
    const s = this.numSplits;
    if (n % s !== 0) throw new RangeError(`${op}: the batch size (${n}) must be divisible by numSplits (${s})`);
    if ((n / s) * h * w === 1) {
      throw new RangeError(
        `${op}: expected more than 1 value per channel in each split, got input of shape [${n}, ${c}, ${h}, ${w}] and ${s} splits`,
      );
    }
    // One running-stat copy per split, updated by the split's batch_norm, averaged afterwards.
    const meanSplit = this.runningMean?.repeat(s) ?? null;
    const varSplit = this.runningVar?.repeat(s) ?? null;
    const out =
      this.order === "consecutive"
        ? this.normaliseConsecutive(input, meanSplit, varSplit)
        : this.normaliseInterleaved(input, meanSplit, varSplit);
    noGrad(() => {
      for (const [target, split] of [
        [this.runningMean, meanSplit],
        [this.runningVar, varSplit],
      ] as const) {
        if (target === null || split === null) continue;
        const folded = split.view(s, c);
        const averaged = folded.mean(0);
        target.copy_(averaged);
        averaged.dispose();
        folded.dispose();
        split.dispose();
      }
    });
    return out;
  }

  /** The demo's: the batch viewed as (N/S, C·S, H, W), the per-split parameters repeated S times. */
  private normaliseInterleaved(input: Tensor, meanSplit: Tensor | null, varSplit: Tensor | null): Tensor {
    const [n, c, h, w] = input.shape as [number, number, number, number];
    const s = this.numSplits;
    const weightSplit = this.weight?.repeat(s) ?? null;
    const biasSplit = this.bias?.repeat(s) ?? null;
    const grouped = input.reshape(-1, c * s, h, w);
    const normed = F.batchNorm(grouped, meanSplit, varSplit, {
      weight: weightSplit,
      bias: biasSplit,
      training: true,
      momentum: this.momentum ?? 0.1,
      eps: this.eps,
    });
    const out = normed.view(n, c, h, w);
    for (const t of [weightSplit, biasSplit, grouped, normed]) if (t !== null && t !== input) t.dispose();
    return out;
  }

  /** One batch_norm per block of N/S samples (each in the input's layout), concatenated. */
  private normaliseConsecutive(input: Tensor, meanSplit: Tensor | null, varSplit: Tensor | null): Tensor {
    const [n, c] = input.shape as [number, number];
    const s = this.numSplits;
    const size = n / s;
    const parts: Tensor[] = [];
    for (let i = 0; i < s; i++) {
      const block = input.narrow(0, i * size, size);
      const mean = meanSplit?.narrow(0, i * c, c) ?? null;
      const variance = varSplit?.narrow(0, i * c, c) ?? null;
      parts.push(
        F.batchNorm(block, mean, variance, {
          weight: this.weight,
          bias: this.bias,
          training: true,
          momentum: this.momentum ?? 0.1,
          eps: this.eps,
        }),
      );
      for (const t of [block, mean, variance]) t?.dispose();
    }
    const out = cat(parts, 0);
    for (const part of parts) part.dispose();
    return out;
  }

  override extraRepr(): string {
    return `${super.extraRepr()}, num_splits=${this.numSplits}`;
  }
}

/** Makes the normalisation layer after a conv with `numFeatures` channels (torchvision's norm_layer). */
export type NormLayerFactory = (numFeatures: number) => BatchNorm2d;

/** A norm-layer factory: SplitBatchNorm with `numSplits` splits (extra options go to each layer). */
export function splitBatchNorm(numSplits: number, options: BatchNormOptions = {}): NormLayerFactory {
  if (!Number.isSafeInteger(numSplits) || numSplits < 1) {
    throw new RangeError(`splitBatchNorm: numSplits must be a positive integer, got ${numSplits}`);
  }
  return (numFeatures) => new SplitBatchNorm(numFeatures, numSplits, options);
}

/** The default norm-layer factory: BatchNorm2d with PyTorch's defaults (or the given options). */
export function batchNorm2d(options: BatchNormOptions = {}): NormLayerFactory {
  return (numFeatures) => new BatchNorm2d(numFeatures, options);
}
