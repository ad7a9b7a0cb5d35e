// What an encoder's input must be: the side of the square images it was trained on, its channel
// count, and the normalisation (mean, std per channel). A pretraining run records it in its
// checkpoint (`moco_ts.input`); exports carry it as string metadata (ONNX metadata_props,
// safetensors __metadata__) under the keys below, so that whoever loads the file — loadEncoder,
// onnxruntime users, a Python script — feeds it what it saw in training.
import { MocoError } from "../errors.js";

export interface EncoderInput {
  /** Height = width of the images fed to the network in training. */
  size: number;
  channels: number;
  mean: readonly number[];
  std: readonly number[];
}

export class EncoderInputError extends MocoError {
  override name = "EncoderInputError";
  constructor(message: string) {
    super("ERR_ENCODER_INPUT", message);
  }
}

/** The metadata keys (shared by ONNX and safetensors exports). */
export const INPUT_METADATA_KEYS = {
  size: "image_size",
  channels: "in_channels",
  mean: "mean",
  std: "std",
  features: "features",
  layout: "input_layout",
} as const;

/** Checks an input description; `where` names its origin in errors. */
export function checkEncoderInput(value: unknown, where: string): EncoderInput {
  const fail = (what: string): never => {
    throw new EncoderInputError(`${where}: ${what}`);
  };
  if (typeof value !== "object" || value === null) return fail("the input description is not an object");
  const { size, channels, mean, std } = value as Record<string, unknown>;
  if (!(typeof size === "number" && Number.isSafeInteger(size) && size >= 1))
    fail(`image size must be a positive integer, got ${JSON.stringify(size)}`);
  if (!(typeof channels === "number" && Number.isSafeInteger(channels) && channels >= 1))
    fail(`channels must be a positive integer, got ${JSON.stringify(channels)}`);
  const numbers = (v: unknown, name: string, positive: boolean): number[] => {
    if (
      !Array.isArray(v) ||
      v.length !== channels ||
      !v.every((x) => typeof x === "number" && Number.isFinite(x) && (!positive || x > 0))
    )
      fail(`${name} must be ${String(channels)} finite number(s)${positive ? " > 0" : ""}, got ${JSON.stringify(v)}`);
    return v as number[];
  };
  return {
    size: size as number,
    channels: channels as number,
    mean: numbers(mean, "mean", false),
    std: numbers(std, "std", true),
  };
}

/** The export metadata of an input and the kind of features the file outputs. */
export function inputMetadata(input: EncoderInput, features: "backbone" | "head"): Record<string, string> {
  const k = INPUT_METADATA_KEYS;
  return {
    [k.size]: String(input.size),
    [k.channels]: String(input.channels),
    [k.mean]: JSON.stringify(input.mean),
    [k.std]: JSON.stringify(input.std),
    [k.features]: features,
    // How to get from an image to the input: pixels / 255, then (x - mean) / std per channel, NCHW.
    [k.layout]: "NCHW float32, (pixel/255 - mean) / std",
  };
}

/** The input an export's metadata declares, or null when it has none (files from other tools). */
export function inputFromMetadata(metadata: Readonly<Record<string, string>>, where: string): EncoderInput | null {
  const k = INPUT_METADATA_KEYS;
  if (metadata[k.size] === undefined || metadata[k.mean] === undefined) return null;
  const parse = (key: string): unknown => {
    const raw = metadata[key];
    if (raw === undefined) throw new EncoderInputError(`${where}: metadata "${key}" is missing`);
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new EncoderInputError(`${where}: metadata "${key}" is not JSON: ${JSON.stringify(raw)}`);
    }
  };
  return checkEncoderInput(
    { size: parse(k.size), channels: parse(k.channels), mean: parse(k.mean), std: parse(k.std) },
    `${where} (metadata)`,
  );
}
