// The precision decision of a run: which dtype autocast computes in, and whether activations and
// conv weights are channels-last. bfloat16 pays only where the CPU computes it natively: oneDNN runs
// bf16 convolutions and matrix products with AVX512-BF16 or AMX instructions, and elsewhere emulates
// them more slowly than float32. Measured on an AMD EPYC Zen 5 (avx512_bf16), 2 threads, official MoCo
// code, issue #15: the MoCo step 2.1× faster with bf16 autocast + channels_last, the
// plain supervised step 5.3×, channels_last alone 1.6× in float32; the kNN after 5 epochs unchanged.
//
// It lives beside autocast (src/torch) because every layer that runs a network applies it: the MoCo
// step (src/train), the feature extractor's users (src/encoder, src/eval) and the CLI.
import { readFileSync } from "node:fs";

import { MocoError } from "../errors.js";
import { autocast } from "./autocast.js";
import type { Tensor } from "./tensor.js";

export type PrecisionSetting = "auto" | "fp32" | "bf16" | "fp16";
export type ChannelsLastSetting = "auto" | "on" | "off";

export interface PrecisionOptions {
  precision: PrecisionSetting;
  channelsLast: ChannelsLastSetting;
  /** Where the network runs ("cpu", "cuda", "cuda:N"; absent: "cpu"): a GPU decides differently. */
  device?: string;
}

export const PRECISION_SETTINGS: readonly PrecisionSetting[] = ["auto", "fp32", "bf16", "fp16"];
export const CHANNELS_LAST_SETTINGS: readonly ChannelsLastSetting[] = ["auto", "on", "off"];

/** What the decision needs to know of the CPU (from /proc/cpuinfo; injectable for tests). */
export interface CpuCapabilities {
  /** The model name, for the reason sentence ("AMD EPYC 9R45 ..."), or null when unknown. */
  model: string | null;
  /** The feature flags the kernel reports (`avx512_bf16`, `amx_bf16`, `avx512f`, ...). */
  flags: ReadonlySet<string>;
}

export interface ResolvedPrecision {
  /** The dtype autocast computes in; float32 means no autocast; float16 (GPU only) adds loss scaling. */
  dtype: "float32" | "bfloat16" | "float16";
  channelsLast: boolean;
  /** One sentence for the run header: what was chosen and why. */
  reason: string;
}

/** A precision or channels-last setting that is not one of the accepted values. */
export class PrecisionError extends MocoError {
  override name = "PrecisionError";
  constructor(message: string) {
    super("ERR_PRECISION", message);
  }
}

/** The flags that mean native bf16 arithmetic: AVX512-BF16 (dot products) or AMX's bf16 tiles. */
const NATIVE_BF16_FLAGS = ["avx512_bf16", "amx_bf16"] as const;

/** Parses /proc/cpuinfo's text (first processor's "model name" and "flags" lines). */
export function parseCpuInfo(text: string): CpuCapabilities {
  const field = (name: string): string | null => {
    const match = new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(text);
    return match === null ? null : (match[1] ?? "").trim();
  };
  const flags = field("flags");
  return { model: field("model name"), flags: new Set(flags === null ? [] : flags.split(/\s+/).filter(Boolean)) };
}

/** This machine's CPU, from /proc/cpuinfo (no flags where it cannot be read, e.g. off Linux). */
export function readCpuCapabilities(path = "/proc/cpuinfo"): CpuCapabilities {
  try {
    return parseCpuInfo(readFileSync(path, "utf8"));
  } catch {
    return { model: null, flags: new Set() };
  }
}

function nativeBf16Flag(cpu: CpuCapabilities): string | null {
  return NATIVE_BF16_FLAGS.find((f) => cpu.flags.has(f)) ?? null;
}

/**
 * Resolves "auto" settings for this CPU (or the one given). precision auto: bfloat16 autocast where
 * the CPU has avx512_bf16 or amx_bf16, float32 elsewhere. channelsLast auto: on with AVX-512 (where
 * it was measured faster, in float32 and bf16 alike), off elsewhere. Explicit settings are kept, and
 * the reason says when an explicit bf16 will be slow.
 */
export function resolvePrecision(
  options: PrecisionOptions,
  cpu: CpuCapabilities = readCpuCapabilities(),
): ResolvedPrecision {
  const { precision, channelsLast } = options;
  if (!PRECISION_SETTINGS.includes(precision)) {
    throw new PrecisionError(`precision must be "auto", "fp32", "bf16" or "fp16", got ${String(precision)}`);
  }
  if (channelsLast !== "auto" && channelsLast !== "on" && channelsLast !== "off") {
    throw new PrecisionError(`channelsLast must be "auto", "on" or "off", got ${String(channelsLast)}`);
  }
  if (options.device?.startsWith("cuda") === true) return resolveGpuPrecision(precision, channelsLast);
  if (precision === "fp16") {
    throw new PrecisionError(
      "--precision fp16 (float16 autocast with loss scaling) needs a CUDA device (--device cuda); on the CPU use bf16 or auto",
    );
  }
  const cpuName = cpu.model ?? "this CPU";
  const bf16Flag = nativeBf16Flag(cpu);
  let dtype: ResolvedPrecision["dtype"];
  let why: string;
  if (precision === "fp32") {
    dtype = "float32";
    why = "float32 (as asked)";
  } else if (precision === "bf16") {
    dtype = "bfloat16";
    why =
      bf16Flag === null
        ? `bfloat16 autocast as asked, although ${cpuName} has no native bf16 (no ${NATIVE_BF16_FLAGS.join(" or ")}): expect it slower than float32`
        : `bfloat16 autocast (as asked; ${cpuName} has ${bf16Flag})`;
  } else if (bf16Flag !== null) {
    dtype = "bfloat16";
    why = `bfloat16 autocast, because ${cpuName} computes bf16 natively (${bf16Flag})`;
  } else {
    dtype = "float32";
    why = `float32, because ${cpuName} has no native bf16 (no ${NATIVE_BF16_FLAGS.join(" or ")}), where bf16 would be emulated and slower`;
  }
  let layout: boolean;
  let layoutWhy: string;
  if (channelsLast !== "auto") {
    layout = channelsLast === "on";
    layoutWhy = `${layout ? "channels-last" : "NCHW"} (as asked)`;
  } else if (cpu.flags.has("avx512f")) {
    layout = true;
    layoutWhy = "channels-last, as oneDNN's AVX-512 convolutions prefer";
  } else {
    layout = false;
    layoutWhy = "NCHW, as channels-last was measured faster only with AVX-512";
  }
  return { dtype, channelsLast: layout, reason: `Precision: ${why}; layout: ${layoutWhy}.` };
}

/**
 * On a GPU: auto is bfloat16 autocast (tensor cores at float32's range, so no loss scaling; every GPU
 * since Ampere computes it natively) and channels-last (cuDNN's tensor-core convolutions run NHWC);
 * fp16 is float16 autocast, which the training step pairs with a GradScaler.
 */
function resolveGpuPrecision(precision: PrecisionSetting, channelsLast: ChannelsLastSetting): ResolvedPrecision {
  const chosen: Record<PrecisionSetting, [ResolvedPrecision["dtype"], string]> = {
    fp32: ["float32", "float32 on the GPU (as asked)"],
    bf16: ["bfloat16", "bfloat16 autocast on the GPU (as asked)"],
    fp16: ["float16", "float16 autocast with dynamic loss scaling on the GPU (as asked)"],
    auto: ["bfloat16", "bfloat16 autocast, as the GPU's tensor cores compute it at float32's range (no loss scaling)"],
  };
  const [dtype, why] = chosen[precision];
  const layout = channelsLast !== "off";
  const layoutWhy =
    channelsLast === "auto"
      ? "channels-last, as cuDNN's tensor-core convolutions prefer"
      : `${layout ? "channels-last" : "NCHW"} (as asked)`;
  return { dtype, channelsLast: layout, reason: `Precision: ${why}; layout: ${layoutWhy}.` };
}

/** A few words for headers: "bf16 autocast, channels-last", "fp32", "fp16 autocast + loss scaling". */
export function describePrecision(precision: Pick<ResolvedPrecision, "dtype" | "channelsLast">): string {
  const dtype = { float32: "fp32", bfloat16: "bf16 autocast", float16: "fp16 autocast + loss scaling" }[
    precision.dtype
  ];
  return precision.channelsLast ? `${dtype}, channels-last` : dtype;
}

/**
 * Runs `fn` (a forward pass, with its loss when training) under the resolved precision: inside a
 * bfloat16 autocast region for the device type `device` names, or as is in float32. The backward
 * pass belongs outside (torch's AMP recipe): it then runs in the dtypes the forward pass chose.
 */
export function withPrecision<T>(precision: Pick<ResolvedPrecision, "dtype">, device: string, fn: () => T): T {
  if (precision.dtype === "float32") return fn();
  return autocast({ deviceType: device.startsWith("cuda") ? "cuda" : "cpu", dtype: precision.dtype }, fn);
}

/**
 * A network's input in the resolved layout: a channels-last copy of a 4-d batch when the policy says
 * so (the input itself is left alone and stays the caller's), else the input. The caller disposes
 * the result when it differs from `input`.
 */
export function inLayout(precision: Pick<ResolvedPrecision, "channelsLast">, input: Tensor): Tensor {
  if (!precision.channelsLast || input.ndim !== 4 || input.isContiguousIn("channelsLast")) return input;
  return input.contiguous({ memoryFormat: "channelsLast" });
}

/** Features as float32 (autocast's matrix products give bfloat16): what banks, norms and files hold. */
export function asFloat32(features: Tensor): Tensor {
  if (features.dtype === "float32") return features;
  const cast = features.float();
  features.dispose();
  return cast;
}
