// What `moco knn` and `moco lincls` evaluate: the --pretrained encoder, or a baseline measured by the
// same command on the same splits (issue #13) — `--baseline pixels` (the images' raw pixels) or
// `--baseline random` (the same network at its seeded random initialisation, the architecture of
// --pretrained's checkpoint or of a pretraining --preset).
import { availableParallelism } from "node:os";

import { loadEncoder, type Encoder, type TrainingData } from "../encoder/encoder.js";
import { randomEncoder } from "../encoder/random.js";
import type { EncoderPart } from "../encoder/sources.js";
import { setNumThreads } from "../torch/index.js";
import { PRESETS, type PresetName } from "../train/config.js";
import { queryEncoderLayout } from "../train/pretrain.js";
import { deviceFromFlags, encoderFromFlags } from "./encoder-flags.js";
import type { EvalDataDefaults } from "./eval-data.js";
import { UsageError, type Flag, type FlagReader } from "./flags.js";

export type Baseline = "pixels" | "random";
export const BASELINES: readonly Baseline[] = ["pixels", "random"];
const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

export const BASELINE_FLAGS: readonly Flag[] = [
  {
    flag: "baseline",
    kind: "string",
    choices: BASELINES,
    meta: "KIND",
    help:
      "a baseline instead of --pretrained's weights: pixels (raw pixels; --pretrained, if given, only sets the data) | " +
      "random (the same network at random initialisation, seeded by --seed; the architecture of --pretrained or --preset)",
  },
  {
    flag: "preset",
    kind: "string",
    choices: PRESET_NAMES,
    help: `--baseline random: the network (and data) of this moco pretrain preset: ${PRESET_NAMES.join(" | ")}`,
  },
];

/** A baseline as a lincls checkpoint records it (`moco_ts.baseline`), so that --resume rebuilds it. */
export interface BaselineRecord {
  kind: Baseline;
  /** The seed of the random initialisation (random only; 0 for pixels). */
  seed: number;
  /** The checkpoint that gave the architecture (random) or the data defaults (pixels); null: none. */
  pretrained: string | null;
  /** random: the preset that gave the architecture instead. */
  preset: PresetName | null;
}

/** What a command evaluates, before and after its data is opened. */
export interface EvaluationSubject {
  /** null: the --pretrained encoder's own weights. */
  baseline: BaselineRecord | null;
  /** For openEvalData: the checkpoint's or the preset's data, crop size and stem (none for bare pixels). */
  defaults: Encoder | EvalDataDefaults;
  /** The checkpoint path (or "preset NAME") the run is tied to; null for pixels without --pretrained. */
  source: string | null;
  /**
   * What the features come from, once the data's channel count is known: an encoder (on --device),
   * or "pixels". A preset's random network takes the data's channels, as `moco pretrain` builds it.
   */
  input(channels: number): Encoder | "pixels";
  dispose(): void;
}

/** Reads a baseline record back from a checkpoint's `moco_ts.baseline` (null: none or unreadable). */
export function baselineRecord(value: unknown): BaselineRecord | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const { kind, seed, pretrained, preset } = value as Record<string, unknown>;
  if (kind !== "pixels" && kind !== "random") return null;
  if (typeof seed !== "number") return null;
  return {
    kind,
    seed,
    pretrained: typeof pretrained === "string" ? pretrained : null,
    preset: typeof preset === "string" && (PRESET_NAMES as string[]).includes(preset) ? (preset as PresetName) : null,
  };
}

export interface SubjectOptions {
  /** The seed of a random initialisation (--seed). */
  seed: number;
  /** A resumed run's: the checkpoint it evaluated and its baseline (these win over the flags). */
  saved?: { pretrained: string; baseline: BaselineRecord | null } | null;
}

/**
 * The subject the flags name: --pretrained's encoder, or --baseline's. Every combination that cannot
 * mean anything is refused here, naming the flags, before any data is read.
 */
export function subjectFromFlags(
  flags: FlagReader,
  log: (line: string) => void,
  options: SubjectOptions,
): EvaluationSubject {
  const saved = options.saved ?? null;
  const given = flags.optionalString("baseline") as Baseline | null;
  if (saved !== null && given !== null && saved.baseline?.kind !== given)
    throw new UsageError(
      `--baseline ${given}: the run resumed evaluated ${saved.baseline === null ? "--pretrained's encoder" : `--baseline ${saved.baseline.kind}`}`,
    );
  const kind = given ?? saved?.baseline?.kind ?? null;
  const presetGiven = flags.optionalString("preset") as PresetName | null;
  if (presetGiven !== null && kind !== "random")
    throw new UsageError(
      `--preset ${presetGiven} is for --baseline random (the network to initialise)` +
        (kind === "pixels" ? "; --baseline pixels has no network" : ""),
    );
  if (kind === null) {
    const encoder = encoderFromFlags(flags, log, saved?.pretrained ?? null);
    return {
      baseline: null,
      defaults: encoder,
      source: encoder.info.path,
      input: () => encoder,
      dispose: () => encoder.dispose(),
    };
  }
  const device = deviceFromFlags(flags);
  setNumThreads(flags.optionalNumber("threads") ?? availableParallelism());
  const pretrained = flags.optionalString("pretrained") ?? saved?.baseline?.pretrained ?? null;
  const preset = presetGiven ?? saved?.baseline?.preset ?? null;
  const part = flags.choice<EncoderPart>("part", ["query", "key"]);
  const arch = flags.optionalString("arch");
  /** The checkpoint's facts; its weights are freed at once. */
  const readCheckpoint = (path: string) => {
    const loaded = loadEncoder(path, { part, ...(arch === null ? {} : { arch }) });
    const facts = {
      layout: loaded.info.layout,
      trainedOn: loaded.info.trainedOn,
      input: loaded.info.input ?? null,
      cifarStem: loaded.info.layout.cifarStem,
    };
    loaded.dispose();
    return facts;
  };

  if (kind === "pixels") {
    const facts = pretrained === null ? null : readCheckpoint(pretrained);
    log(`raw pixels${pretrained === null ? "" : ` (the data of ${pretrained})`}: no network`);
    return {
      baseline: { kind, seed: 0, pretrained, preset: null },
      defaults: { trainedOn: facts?.trainedOn ?? null, cifarStem: facts?.cifarStem ?? false },
      source: pretrained,
      input: () => "pixels",
      dispose: () => undefined,
    };
  }

  if (pretrained !== null && preset !== null)
    throw new UsageError("--baseline random takes its network from --pretrained or from --preset, not both");
  if (pretrained === null && preset === null)
    throw new UsageError(
      `--baseline random needs the network to initialise: --pretrained FILE (its architecture) or --preset ${PRESET_NAMES.join("|")}`,
    );
  const seed = saved?.baseline?.seed ?? options.seed;
  const baseline: BaselineRecord = { kind, seed, pretrained, preset };
  const place = (encoder: Encoder): Encoder => {
    if (device !== "cpu") encoder.model.toDevice(device);
    log(`encoder: ${encoder.describe()}`);
    return encoder;
  };
  if (pretrained !== null) {
    const facts = readCheckpoint(pretrained);
    const encoder = place(
      randomEncoder(facts.layout, { seed, from: pretrained, trainedOn: facts.trainedOn, input: facts.input }),
    );
    return { baseline, defaults: encoder, source: pretrained, input: () => encoder, dispose: () => encoder.dispose() };
  }
  const config = PRESETS[preset as PresetName];
  const trainedOn: TrainingData = { dataset: config.dataset, data: null, imageSize: config.imageSize };
  let built: Encoder | null = null;
  return {
    baseline,
    defaults: { trainedOn, cifarStem: config.cifarStem },
    source: `preset ${preset}`,
    input: (channels) => {
      built ??= place(
        randomEncoder(queryEncoderLayout(config, channels), { seed, from: `the ${preset} preset`, trainedOn }),
      );
      return built;
    },
    dispose: () => built?.dispose(),
  };
}
