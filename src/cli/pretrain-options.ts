// The `moco pretrain` flags: names follow the official main_moco.py where it has one. Each maps to
// one key of the configuration; the help text and the parser are both made from this table.
import type { PretrainConfig } from "../train/config.js";

type Kind = "int" | "float" | "bool" | "string" | "list" | "nullableInt";

interface FlagSpec {
  flag: string;
  key: keyof PretrainConfig;
  kind: Kind;
  help: string;
  short?: string;
}

export const PRETRAIN_FLAGS: readonly FlagSpec[] = [
  { flag: "dataset", key: "dataset", kind: "string", help: "fashion-mnist | mnist | cifar10 | cifar100 | folder" },
  { flag: "out", key: "out", kind: "string", help: "run folder (config, metrics.jsonl, checkpoints)" },
  { flag: "subset", key: "subset", kind: "nullableInt", help: "train on the first N training images" },
  {
    flag: "image-size",
    key: "imageSize",
    kind: "nullableInt",
    help: "crop size fed to the network (none: the images' own size; for folders 224, or 64 with --cifar-stem)",
  },
  { flag: "crop-min-scale", key: "cropMinScale", kind: "float", help: "RandomResizedCrop's smallest area fraction" },
  { flag: "aug-plus", key: "augPlus", kind: "bool", help: "MoCo v2 augmentation (jitter p 0.8, blur)" },
  {
    flag: "skip-bad-images",
    key: "skipBadImages",
    kind: "bool",
    help: "leave out unreadable images of a folder (reported)",
  },
  {
    flag: "arch",
    key: "arch",
    kind: "string",
    help: "resnet18 | resnet34 | resnet50 | resnet101 | resnet152",
    short: "a",
  },
  { flag: "width", key: "width", kind: "int", help: "base width of the ResNet (64 = torchvision's)" },
  { flag: "cifar-stem", key: "cifarStem", kind: "bool", help: "3x3 stride-1 stem without max-pool, for small images" },
  {
    flag: "pretrained",
    key: "pretrained",
    kind: "string",
    help: "start the backbone from a checkpoint (MoCo, lincls, torchvision .pth, safetensors) instead of random weights",
  },
  { flag: "moco-dim", key: "mocoDim", kind: "int", help: "feature dimension" },
  { flag: "moco-k", key: "mocoK", kind: "int", help: "queue size (negative keys)" },
  { flag: "moco-m", key: "mocoM", kind: "float", help: "key encoder momentum" },
  { flag: "moco-t", key: "mocoT", kind: "float", help: "softmax temperature" },
  { flag: "mlp", key: "mlp", kind: "bool", help: "MoCo v2 MLP head" },
  { flag: "symmetric", key: "symmetric", kind: "bool", help: "symmetric loss (the official CIFAR demo's option)" },
  {
    flag: "bn-splits",
    key: "bnSplits",
    kind: "int",
    help: "split BN: BN statistics per batch/N samples (shuffle BN in one process)",
  },
  { flag: "epochs", key: "epochs", kind: "int", help: "epochs to train" },
  { flag: "batch-size", key: "batchSize", kind: "int", help: "images per step", short: "b" },
  { flag: "lr", key: "lr", kind: "float", help: "initial learning rate" },
  {
    flag: "schedule",
    key: "schedule",
    kind: "list",
    help: "epochs where the lr drops x0.1 (without --cos), e.g. 120,160",
  },
  { flag: "cos", key: "cos", kind: "bool", help: "cosine learning-rate schedule" },
  { flag: "warmup-epochs", key: "warmupEpochs", kind: "float", help: "linear lr warmup (epochs)" },
  { flag: "momentum", key: "momentum", kind: "float", help: "SGD momentum" },
  { flag: "wd", key: "wd", kind: "float", help: "weight decay" },
  { flag: "knn-k", key: "knnK", kind: "int", help: "kNN monitor: neighbours" },
  { flag: "knn-t", key: "knnT", kind: "float", help: "kNN monitor: temperature" },
  { flag: "knn-every", key: "knnEvery", kind: "int", help: "kNN monitor every N epochs (0: at the end only)" },
  { flag: "knn-features", key: "knnFeatures", kind: "string", help: "backbone | head" },
  { flag: "knn-bank", key: "knnBank", kind: "nullableInt", help: "training images in the kNN bank (default: all)" },
  {
    flag: "knn-test",
    key: "knnTest",
    kind: "nullableInt",
    help: "test images the kNN monitor classifies (default: all)",
  },
  { flag: "print-freq", key: "printFreq", kind: "int", help: "log a line every N steps when not on a terminal" },
  { flag: "seed", key: "seed", kind: "int", help: "seed of every random stream" },
  { flag: "threads", key: "threads", kind: "nullableInt", help: "intra-op threads (default: all cores)" },
  { flag: "max-steps", key: "maxSteps", kind: "nullableInt", help: "stop after N steps (quick trials)" },
];

export class FlagError extends Error {}

/** parseArgs options: value flags take strings; booleans also have a --no- form. */
export function parseArgsOptions(): Record<string, { type: "string" | "boolean"; short?: string }> {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const spec of PRETRAIN_FLAGS) {
    options[spec.flag] = {
      type: spec.kind === "bool" ? "boolean" : "string",
      ...(spec.short ? { short: spec.short } : {}),
    };
    if (spec.kind === "bool") options[`no-${spec.flag}`] = { type: "boolean" };
  }
  return options;
}

function convert(spec: FlagSpec, raw: string): unknown {
  const number = () => {
    const n = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(n)) throw new FlagError(`--${spec.flag} expects a number, got '${raw}'`);
    if ((spec.kind === "int" || spec.kind === "nullableInt") && !Number.isSafeInteger(n)) {
      throw new FlagError(`--${spec.flag} expects an integer, got '${raw}'`);
    }
    return n;
  };
  switch (spec.kind) {
    case "int":
    case "float":
      return number();
    case "nullableInt":
      return raw === "none" ? null : number();
    case "list":
      return raw
        .split(",")
        .filter((part) => part.trim() !== "")
        .map((part) => {
          const n = Number(part);
          if (!Number.isFinite(n))
            throw new FlagError(`--${spec.flag} expects numbers separated by commas, got '${raw}'`);
          return n;
        });
    default:
      return raw;
  }
}

/** The configuration values the user gave on the command line (flags not given are absent). */
export function flagValues(
  values: Record<string, string | boolean | undefined>,
): Partial<Record<keyof PretrainConfig, unknown>> {
  const result: Partial<Record<keyof PretrainConfig, unknown>> = {};
  for (const spec of PRETRAIN_FLAGS) {
    const value = values[spec.flag];
    if (spec.kind === "bool") {
      if (value === true && values[`no-${spec.flag}`] === true)
        throw new FlagError(`--${spec.flag} and --no-${spec.flag} both given`);
      if (value === true) result[spec.key] = true;
      if (values[`no-${spec.flag}`] === true) result[spec.key] = false;
    } else if (typeof value === "string") {
      result[spec.key] = convert(spec, value);
    }
  }
  return result;
}

function showDefault(value: unknown): string {
  if (value === null) return "none";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

/** Help lines, each option with its default under the given preset. */
export function flagHelp(defaults: Omit<PretrainConfig, "out"> & { out?: string }): string {
  const rows = PRETRAIN_FLAGS.map((spec) => {
    const name = `${spec.short ? `-${spec.short}, ` : "    "}--${spec.kind === "bool" ? `[no-]${spec.flag}` : `${spec.flag} ${spec.kind === "list" ? "LIST" : spec.kind === "string" ? "NAME" : "N"}`}`;
    const value = spec.key === "out" ? (defaults.out ?? "runs/PRESET") : defaults[spec.key as keyof typeof defaults];
    return `  ${name.padEnd(30)} ${spec.help} (default: ${showDefault(value)})`;
  });
  return rows.join("\n");
}

// ---- launching several processes (like torchrun) ---------------------------------------------------

/** Options of the launcher and of the distributed job; not part of the run's configuration. */
export interface LaunchValues {
  /** Workers to start on this machine; null: run here (one process, or a worker of a job set up by env://). */
  nprocPerNode: number | null;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** Seconds a collective waits for the other processes before the run stops. */
  distTimeout: number;
}

interface LaunchFlag {
  flag: string;
  help: string;
  /** Only the launcher reads it (removed from the workers' arguments). */
  launcherOnly: boolean;
}

const LAUNCH_FLAGS: readonly LaunchFlag[] = [
  { flag: "nproc-per-node", help: "start N worker processes on this machine (like torchrun)", launcherOnly: true },
  { flag: "nnodes", help: "machines in the job (default: 1)", launcherOnly: true },
  { flag: "node-rank", help: "this machine's index in [0, nnodes) (default: 0)", launcherOnly: true },
  { flag: "master-addr", help: "address of the node-rank-0 machine (default: 127.0.0.1)", launcherOnly: true },
  { flag: "master-port", help: "a free TCP port on that machine (default: 29500)", launcherOnly: true },
  {
    flag: "dist-timeout",
    help: "seconds a worker waits for the others before stopping (default: 300)",
    launcherOnly: false,
  },
];

export function launchParseOptions(): Record<string, { type: "string" }> {
  return Object.fromEntries(LAUNCH_FLAGS.map((spec) => [spec.flag, { type: "string" as const }]));
}

export function launchHelp(): string {
  return LAUNCH_FLAGS.map(
    (spec) => `  ${`    --${spec.flag} ${spec.flag === "master-addr" ? "HOST" : "N"}`.padEnd(30)} ${spec.help}`,
  ).join("\n");
}

/** The launcher's options from parseArgs values (strings), checked. */
export function launchValues(values: Record<string, unknown>): LaunchValues {
  const integer = (flag: string, min: number, max: number, fallback: number | null): number | null => {
    const raw = values[flag];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (typeof raw !== "string" || raw.trim() === "" || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new FlagError(`--${flag} expects an integer in [${min}, ${max}], got '${String(raw)}'`);
    }
    return n;
  };
  const nnodes = integer("nnodes", 1, 65536, 1) as number;
  const masterAddr = values["master-addr"];
  if (masterAddr !== undefined && (typeof masterAddr !== "string" || masterAddr.trim() === "")) {
    throw new FlagError("--master-addr expects a host name or address");
  }
  const nprocPerNode = integer("nproc-per-node", 1, 4096, null);
  const launcherFlagsGiven = LAUNCH_FLAGS.filter((s) => s.launcherOnly && values[s.flag] !== undefined);
  if (nprocPerNode === null && launcherFlagsGiven.length > 0) {
    throw new FlagError(`--${launcherFlagsGiven[0]?.flag} needs --nproc-per-node (the launcher)`);
  }
  const timeout = values["dist-timeout"];
  const distTimeout = timeout === undefined ? 300 : Number(timeout);
  if (!(distTimeout > 0) || !Number.isFinite(distTimeout)) {
    throw new FlagError(`--dist-timeout expects a number of seconds > 0, got '${String(timeout)}'`);
  }
  return {
    nprocPerNode,
    nnodes,
    nodeRank: integer("node-rank", 0, nnodes - 1, 0) as number,
    masterAddr: typeof masterAddr === "string" ? masterAddr.trim() : "127.0.0.1",
    masterPort: integer("master-port", 1, 65535, 29500) as number,
    distTimeout,
  };
}

/** The arguments minus the launcher-only flags (both `--flag value` and `--flag=value`). */
export function stripLaunchFlags(argv: readonly string[]): string[] {
  const names = new Set(LAUNCH_FLAGS.filter((s) => s.launcherOnly).map((s) => `--${s.flag}`));
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (names.has(arg)) i++;
    else if (!names.has(arg.split("=", 1)[0] as string)) out.push(arg);
  }
  return out;
}
