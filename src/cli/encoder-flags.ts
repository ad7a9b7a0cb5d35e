// The flags every command that reads a pretrained encoder shares, and loading it from them.
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname } from "node:path";

import { loadEncoder, type Encoder } from "../encoder/encoder.js";
import type { EncoderPart } from "../encoder/sources.js";
import { setNumThreads } from "../torch/index.js";
import { writeJsonAtomic } from "../util/atomic-file.js";
import { UsageError, type Flag, type FlagReader } from "./flags.js";

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
    help: "refuse a checkpoint of any other architecture (default: read from the checkpoint)",
  },
  { flag: "part", kind: "string", help: "MoCo checkpoints: query | key encoder", default: "query" },
];

/** Loads --pretrained (or `fallback`, e.g. the file a resumed run names; checked against --arch) and applies --threads. */
export function encoderFromFlags(
  flags: FlagReader,
  log: (line: string) => void,
  fallback: string | null = null,
): Encoder {
  const path = flags.optionalString("pretrained") ?? fallback;
  if (path === null) throw new UsageError("--pretrained FILE is required");
  const threads = flags.optionalNumber("threads");
  if (threads !== null && threads < 1) throw new UsageError(`--threads must be >= 1, got ${threads}`);
  setNumThreads(threads ?? availableParallelism());
  const part = flags.choice<EncoderPart>("part", ["query", "key"]);
  const arch = flags.optionalString("arch");
  const encoder = loadEncoder(path, { part, ...(arch === null ? {} : { arch }) });
  log(`encoder: ${encoder.describe()}`);
  return encoder;
}

/** Writes JSON atomically (src/util/atomic-file.ts), creating the folder. */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeJsonAtomic(path, value, "writeJson");
}
