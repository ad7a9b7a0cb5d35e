// The flags every command that reads a pretrained encoder shares, and loading it from them.
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname } from "node:path";

import { loadEncoder, type Encoder } from "../encoder/encoder.js";
import type { EncoderPart } from "../encoder/sources.js";
import { buildInfo, resolvePrecision, setNumThreads, type PrecisionOptions } from "../torch/index.js";
import { writeJsonAtomic } from "../util/atomic-file.js";
import { UsageError, precisionFromFlags, type Flag, type FlagReader } from "./flags.js";

export const ENCODER_FLAGS: readonly Flag[] = [
  {
    flag: "pretrained",
    kind: "string",
    meta: "FILE",
    help: "checkpoint: moco-ts or official MoCo (.pth.tar, zip or legacy format), lincls, torchvision state dict, or safetensors",
  },
  {
    flag: "arch",
    short: "a",
    kind: "string",
    help: "refuse a checkpoint of any other architecture",
    defaultText: "read from the checkpoint",
  },
  {
    flag: "part",
    kind: "string",
    choices: ["query", "key"],
    help: "MoCo checkpoints: query | key encoder",
    default: "query",
  },
];

/** --device, checked against this libtorch before any work; "cpu" when not given. */
export function deviceFromFlags(flags: FlagReader): string {
  const device = flags.optionalString("device") ?? "cpu";
  checkDevice(device);
  return device;
}

/** A CUDA device that this libtorch does not have is a usage error, found before any work. */
export function checkDevice(device: string): void {
  if (device !== "cpu") {
    const info = buildInfo();
    const index = device === "cuda" ? 0 : Number(device.slice("cuda:".length));
    if (!info.cudaAvailable)
      throw new UsageError(`--device ${device}: this libtorch has no CUDA device (use --device cpu)`);
    if (index >= info.cudaDeviceCount)
      throw new UsageError(
        `--device ${device}: there are ${info.cudaDeviceCount} CUDA device(s) (cuda:0 to cuda:${info.cudaDeviceCount - 1})`,
      );
  }
}

/**
 * Loads --pretrained (or `fallback`, e.g. the file a resumed run names; checked against --arch),
 * applies --threads, and moves the network to --device when the command has that flag.
 */
export function encoderFromFlags(
  flags: FlagReader,
  log: (line: string) => void,
  fallback: string | null = null,
): Encoder {
  const path = flags.optionalString("pretrained") ?? fallback;
  if (path === null) throw new UsageError("--pretrained FILE is required");
  const device = deviceFromFlags(flags);
  setNumThreads(flags.optionalNumber("threads") ?? availableParallelism());
  const part = flags.choice<EncoderPart>("part", ["query", "key"]);
  const arch = flags.optionalString("arch");
  const encoder = loadEncoder(path, { part, ...(arch === null ? {} : { arch }) });
  if (device !== "cpu") encoder.model.toDevice(device);
  log(`encoder: ${encoder.describe()}`);
  return encoder;
}

/** --precision and --channels-last, with the decision and its reason logged as the run starts. */
export function precisionPolicy(flags: FlagReader, log: (line: string) => void): PrecisionOptions {
  const policy = precisionFromFlags(flags);
  log(resolvePrecision(policy).reason);
  return policy;
}

/** Writes JSON atomically (src/util/atomic-file.ts), creating the folder. */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeJsonAtomic(path, value, "writeJson");
}
