// Pretraining checkpoints in the official MoCo layout (main_moco.py's save_checkpoint): `epoch`
// (completed epochs), `arch`, `state_dict` with `module.`-prefixed keys as DistributedDataParallel
// writes them, `optimizer`. What moco-ts needs to resume exactly sits under its own key.
import { existsSync } from "node:fs";

import type { RandomState } from "../data/random.js";
import type { EncoderInput } from "../encoder/input.js";
import { removeStaleTemporaries } from "../util/stale-temporaries.js";
import type { GradScalerState, SGDStateDict } from "../optim/index.js";
import { load, save, type Saveable, type Tensor } from "../torch/index.js";
import { pretrainConfigSchema, type PretrainConfig } from "./config.js";
import { MocoError, type MocoErrorOptions } from "../errors.js";

export const CHECKPOINT_FORMAT = 1;
export const STATE_DICT_PREFIX = "module.";

export interface ResumeState {
  format: number;
  config: PretrainConfig;
  /** Steps done in all. */
  step: number;
  /** Steps done in epoch `epoch` (0 when the checkpoint was written at an epoch's end). */
  epochStep: number;
  /** libtorch's CPU generator (model init, batch shuffles). */
  torchRng: Tensor;
  /** The augmentation generator (rank 0's in a distributed run). */
  augmentRng: RandomState;
  /** Every rank's augmentation generator, in rank order (distributed runs only). */
  augmentRngByRank?: RandomState[];
  /** What the network was fed (size, channels, mean, std): loadEncoder and the exports read it. */
  input?: EncoderInput;
  /** The loss scaler of a float16 run (torch.amp.GradScaler's state_dict fields). */
  gradScaler?: GradScalerState;
}

export interface PretrainCheckpoint {
  epoch: number;
  arch: string;
  state_dict: Map<string, Tensor>;
  optimizer: SGDStateDict;
  moco_ts: ResumeState;
}

export class CheckpointError extends MocoError {
  override name = "CheckpointError";
  constructor(message: string, options?: MocoErrorOptions) {
    super("ERR_CHECKPOINT", message, options);
  }
}

/**
 * Writes atomically (temp file + rename): an interrupted write leaves the previous file intact, and
 * the temporary file of a write that was killed is removed by the next write or resume.
 */
export function writeCheckpoint(path: string, checkpoint: PretrainCheckpoint): void {
  // The official layout has standard (row-major) strides: a channels-last run's conv weights and
  // their momentum buffers are saved as dense NCHW copies, so the file is what PyTorch users expect.
  const copies: Tensor[] = [];
  const standard = (tensor: Tensor): Tensor => {
    if (tensor.isContiguous) return tensor;
    const dense = tensor.contiguous();
    copies.push(dense);
    return dense;
  };
  const stateDict = new Map<string, Tensor>();
  for (const [key, tensor] of checkpoint.state_dict) stateDict.set(STATE_DICT_PREFIX + key, standard(tensor));
  const optimizer: SGDStateDict = {
    ...checkpoint.optimizer,
    state: new Map(
      [...checkpoint.optimizer.state].map(([index, { momentum_buffer }]) => [
        index,
        { momentum_buffer: momentum_buffer === null ? null : standard(momentum_buffer) },
      ]),
    ),
  };
  const { format, config, step, epochStep, torchRng, augmentRng, augmentRngByRank, input, gradScaler } =
    checkpoint.moco_ts;
  try {
    save(
      {
        epoch: checkpoint.epoch,
        arch: checkpoint.arch,
        state_dict: stateDict,
        optimizer: optimizer as unknown as Saveable,
        moco_ts: {
          format,
          config: config as unknown as Saveable,
          step,
          epoch_step: epochStep,
          torch_rng: torchRng,
          augment_rng: [...augmentRng],
          ...(augmentRngByRank === undefined ? {} : { augment_rng_ranks: augmentRngByRank.map((state) => [...state]) }),
          ...(input === undefined ? {} : { input: { ...input, mean: [...input.mean], std: [...input.std] } }),
          ...(gradScaler === undefined ? {} : { grad_scaler: { ...gradScaler } }),
        },
      },
      path,
    );
  } finally {
    for (const copy of copies) copy.dispose();
  }
}

function field<T>(
  object: Record<string, unknown>,
  key: string,
  check: (v: unknown) => v is T,
  what: string,
  path: string,
): T {
  const value = object[key];
  if (!check(value))
    throw new CheckpointError(`${path}: not a moco-ts pretraining checkpoint (${key}: expected ${what})`);
  return value;
}

const isNumber = (v: unknown): v is number => typeof v === "number";
const isString = (v: unknown): v is string => typeof v === "string";
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** The run's saved configuration, checked against the schema a run is started with (never cast). */
function savedConfig(value: Record<string, unknown>, path: string): PretrainConfig {
  const parsed = pretrainConfigSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(top level)"}: ${issue.message}`);
  throw new CheckpointError(`${path}: the saved configuration (moco_ts.config) is invalid: ${problems.join("; ")}`);
}

/** Reads a checkpoint written by writeCheckpoint, with the `module.` prefix removed from the keys. */
export function readCheckpoint(path: string): PretrainCheckpoint {
  if (!existsSync(path)) throw new CheckpointError(`${path}: no such checkpoint`);
  removeStaleTemporaries(path);
  const root = load(path);
  if (!isObject(root)) throw new CheckpointError(`${path}: not a pretraining checkpoint (expected a dict at the top)`);
  const rawState = root["state_dict"];
  const entries =
    rawState instanceof Map ? [...rawState.entries()] : isObject(rawState) ? Object.entries(rawState) : null;
  if (entries === null) throw new CheckpointError(`${path}: not a pretraining checkpoint (no state_dict)`);
  const stateDict = new Map<string, Tensor>();
  for (const [key, value] of entries) {
    const name = String(key);
    stateDict.set(name.startsWith(STATE_DICT_PREFIX) ? name.slice(STATE_DICT_PREFIX.length) : name, value as Tensor);
  }
  const ours = field(root, "moco_ts", isObject, "moco-ts resume state", path);
  const format = field(ours, "format", isNumber, "a format number", path);
  if (format !== CHECKPOINT_FORMAT)
    throw new CheckpointError(`${path}: checkpoint format ${format}, this moco-ts reads ${CHECKPOINT_FORMAT}`);
  const augmentRng = field(ours, "augment_rng", Array.isArray, "the augmentation RNG state", path) as number[];
  const isState = (v: unknown): v is RandomState => Array.isArray(v) && v.length === 4 && v.every(isNumber);
  if (!isState(augmentRng)) throw new CheckpointError(`${path}: bad augmentation RNG state`);
  const byRank = ours["augment_rng_ranks"];
  if (byRank !== undefined && !(Array.isArray(byRank) && byRank.every(isState))) {
    throw new CheckpointError(`${path}: bad per-rank augmentation RNG states`);
  }
  const scaler = ours["grad_scaler"];
  const scalerKeys = ["scale", "growth_factor", "backoff_factor", "growth_interval", "_growth_tracker"] as const;
  if (scaler !== undefined && !(isObject(scaler) && scalerKeys.every((k) => isNumber(scaler[k])))) {
    throw new CheckpointError(`${path}: bad loss scaler state (moco_ts.grad_scaler)`);
  }
  return {
    epoch: field(root, "epoch", isNumber, "a number", path),
    arch: field(root, "arch", isString, "a string", path),
    state_dict: stateDict,
    optimizer: field(root, "optimizer", isObject, "an optimizer state dict", path) as unknown as SGDStateDict,
    moco_ts: {
      format,
      config: savedConfig(field(ours, "config", isObject, "the run's configuration", path), path),
      step: field(ours, "step", isNumber, "a number", path),
      epochStep: field(ours, "epoch_step", isNumber, "a number", path),
      torchRng: ours["torch_rng"] as Tensor,
      augmentRng,
      ...(byRank === undefined ? {} : { augmentRngByRank: byRank }),
      ...(scaler === undefined ? {} : { gradScaler: scaler as unknown as GradScalerState }),
    },
  };
}

/** Frees the tensors a checkpoint holds. */
export function disposeCheckpoint(checkpoint: PretrainCheckpoint): void {
  for (const tensor of checkpoint.state_dict.values()) tensor.dispose();
  checkpoint.moco_ts.torchRng.dispose();
  const state = (checkpoint.optimizer as { state?: unknown }).state;
  if (state instanceof Map) {
    for (const entry of state.values()) {
      const buffer = (entry as { momentum_buffer?: Tensor | null }).momentum_buffer;
      buffer?.dispose();
    }
  }
}
