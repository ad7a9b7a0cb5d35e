// MoCo's hyper-parameters and the checks that make impossible settings clear errors.
import { MocoError } from "../errors.js";

/** The method's own settings (the encoder and the optimisation are configured elsewhere). */
export interface MoCoSettings {
  /** Feature dimension of q and k (`--moco-dim`, 128). */
  dim: number;
  /** Queue size: number of negative keys (`--moco-k`, 65536). */
  K: number;
  /** Momentum of the key encoder's moving average (`--moco-m`, 0.999). */
  m: number;
  /** Softmax temperature τ (`--moco-t`, 0.07 for v1, 0.2 for v2). */
  T: number;
  /** MoCo v2's 2-layer MLP head instead of v1's linear one (`--mlp`). */
  mlp: boolean;
  /** The official CIFAR demo's symmetric loss: both views serve as query and as key. */
  symmetric: boolean;
}

/** Official defaults (facebookresearch/moco main_moco.py). */
export const MOCO_DEFAULTS: MoCoSettings = { dim: 128, K: 65536, m: 0.999, T: 0.07, mlp: false, symmetric: false };

export class MoCoSettingsError extends MocoError {
  override name = "MoCoSettingsError";
  constructor(message: string) {
    super("ERR_MOCO_SETTINGS", message);
  }
}

function fail(message: string): never {
  throw new MoCoSettingsError(message);
}

/** Checks the settings that do not depend on the batch. */
export function checkMoCoSettings(s: MoCoSettings): void {
  if (!Number.isSafeInteger(s.dim) || s.dim < 1) fail(`moco dim must be an integer >= 1, got ${s.dim}`);
  if (!Number.isSafeInteger(s.K) || s.K < 1) fail(`moco K (queue size) must be an integer >= 1, got ${s.K}`);
  if (!(s.m >= 0 && s.m < 1)) fail(`moco m (key encoder momentum) must be in [0, 1), got ${s.m}`);
  if (!(s.T > 0) || !Number.isFinite(s.T)) fail(`moco T (temperature) must be > 0, got ${s.T}`);
}

/**
 * Checks the settings against the batch: each step enqueues `keysPerStep` keys (the global batch,
 * twice that with the symmetric loss), and the queue must hold a whole number of such steps so that
 * enqueueing never straddles its end (the official code asserts the same).
 */
export function checkBatchAgainstSettings(s: MoCoSettings, batchSize: number, bnSplits = 1): void {
  checkMoCoSettings(s);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) fail(`batch size must be an integer >= 1, got ${batchSize}`);
  const keysPerStep = s.symmetric ? 2 * batchSize : batchSize;
  if (s.K % keysPerStep !== 0) {
    fail(
      `moco K (${s.K}) must be a multiple of the ${s.symmetric ? "keys enqueued per step (2 × batch size with the symmetric loss)" : "batch size"} (${keysPerStep})`,
    );
  }
  if (!Number.isSafeInteger(bnSplits) || bnSplits < 1) fail(`BN splits must be an integer >= 1, got ${bnSplits}`);
  if (batchSize % bnSplits !== 0) fail(`batch size (${batchSize}) must be divisible by the BN splits (${bnSplits})`);
}
