// `moco knn`: kNN evaluation of any checkpoint on a labeled dataset, or of a baseline (raw pixels, the
// same network at random initialisation) on the same splits.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { writeClassificationCsv } from "../eval/classification-report.js";
import { evaluateEncoderKnn, evaluatePixelKnn } from "../eval/encoder-knn.js";
import { KNN_DEFAULTS, KNN_VOTES, type KnnVote } from "../eval/knn.js";
import { Encoder, type FeatureKind } from "../encoder/encoder.js";
import { BASELINE_FLAGS, subjectFromFlags } from "./baseline.js";
import { DATA_FLAGS, openEvalData } from "./eval-data.js";
import { ENCODER_FLAGS, precisionPolicy, writeJson } from "./encoder-flags.js";
import {
  CHANNELS_LAST_FLAG,
  DEVICE_FLAG,
  PRECISION_FLAG,
  UsageError,
  flagHelp,
  parseCommand,
  type Flag,
} from "./flags.js";

const KNN_FLAGS: readonly Flag[] = [
  ...ENCODER_FLAGS,
  ...BASELINE_FLAGS,
  ...DATA_FLAGS,
  DEVICE_FLAG,
  PRECISION_FLAG,
  CHANNELS_LAST_FLAG,
  { flag: "knn-k", kind: "int", help: "neighbours that vote", default: KNN_DEFAULTS.k, bounds: { min: 1 } },
  {
    flag: "knn-t",
    kind: "float",
    help: "temperature of the weighted vote's weights",
    default: KNN_DEFAULTS.t,
    bounds: { min: 0, minExclusive: true },
  },
  {
    flag: "vote",
    kind: "string",
    choices: KNN_VOTES,
    help: "weighted: exp(sim / t) per neighbour (the MoCo monitor) | majority: one vote each, a tie to the nearest",
    default: KNN_DEFAULTS.vote,
  },
  { flag: "features", kind: "string", choices: ["backbone", "head"], help: "backbone | head", default: "backbone" },
  {
    flag: "seed",
    kind: "int",
    help: "seed of --subset's sample and of --baseline random's initialisation",
    default: 0,
    bounds: { min: 0 },
  },
  {
    flag: "batch-size",
    short: "b",
    kind: "int",
    help: "images per forward pass",
    default: 256,
    bounds: { min: 1 },
  },
  {
    flag: "out",
    kind: "string",
    meta: "DIR",
    help: "where knn.json, per-class.csv and confusion.csv go",
    default: "runs/knn",
  },
];

export const KNN_HELP = `Usage: moco knn --pretrained FILE [DATA] [options]
       moco knn --baseline pixels [--pretrained FILE] [DATA] [options]
       moco knn --baseline random (--pretrained FILE | --preset NAME) [DATA] [options]

kNN of an encoder's L2-normalised features by cosine similarity: the training split is the bank,
the test split is classified. --vote weighted (default) is the MoCo monitor: the top k neighbours
vote with weight exp(sim / t); --vote majority is plain kNN: one vote each, a tie going to the class
of the nearest neighbour among the tied. Baselines on the same splits: --baseline pixels (the images
at the crop size, normalised per channel, as pretraining's pixel line), --baseline random (the same
network at its random initialisation, manualSeed(--seed): with a preset and its seed, the network
moco pretrain starts from). Writes knn.json (top-1, top-5, per-class accuracy, confusion matrix),
per-class.csv and confusion.csv into --out.

${flagHelp(KNN_FLAGS)}`;

export async function runKnn(argv: string[]): Promise<number> {
  const command = parseCommand(argv, {
    name: "knn",
    flags: KNN_FLAGS,
    help: KNN_HELP,
    positionals: { max: 1, what: "one data folder" },
  });
  if (command === null) return 0;
  const { flags, positionals } = command;
  const features = flags.choice<FeatureKind>("features", ["backbone", "head"]);
  const vote = flags.choice<KnnVote>("vote", KNN_VOTES);
  if (vote === "majority" && flags.given("knn-t"))
    throw new UsageError("--knn-t is the weighted vote's temperature: --vote majority has none");
  if (flags.optionalString("baseline") === "pixels" && flags.given("features"))
    throw new UsageError("--features: raw pixels (--baseline pixels) have no backbone or head");
  const log = (line: string) => console.error(line);
  const subject = subjectFromFlags(flags, log, { seed: flags.number("seed") });
  try {
    if (features === "head" && subject.defaults instanceof Encoder && !subject.defaults.hasHead)
      throw new UsageError(`${subject.defaults.info.path} has no head: --features backbone`);
    const data = await openEvalData(flags, subject.defaults, positionals[0], ["train", "test"], log);
    try {
      const bank = data.splits.get("train");
      const test = data.splits.get("test");
      if (bank === undefined || test === undefined) throw new Error("knn: no train or test split");
      const input = subject.input(bank.channels);
      log(`kNN: bank ${bank.name} (${bank.length} images), queries ${test.name} (${test.length} images)`);
      const started = performance.now();
      const k = flags.number("knn-k");
      const t = flags.number("knn-t");
      const batchSize = flags.number("batch-size");
      const device = flags.optionalString("device") ?? "cpu";
      const result =
        input === "pixels"
          ? await evaluatePixelKnn({ bank, test, k, t, vote, size: data.imageSize, batchSize, device })
          : await evaluateEncoderKnn(input, {
              bank,
              test,
              k,
              t,
              vote,
              features,
              size: data.imageSize,
              batchSize,
              device,
              ...precisionPolicy(flags, log),
              onNote: log,
            });
      const out = flags.string("out");
      mkdirSync(out, { recursive: true });
      const summary = {
        checkpoint: subject.source,
        baseline: subject.baseline?.kind ?? null,
        ...(subject.baseline?.kind === "random" ? { seed: subject.baseline.seed } : {}),
        encoder:
          input === "pixels"
            ? `raw pixels (${bank.channels}×${data.imageSize ?? bank.height}×${data.imageSize ?? bank.width}, normalised per channel)`
            : input.describe(),
        dataset: data.kind,
        bank: { name: bank.name, images: bank.length },
        test: { name: test.name, images: test.length },
        k,
        vote,
        // The weighted vote's temperature; the majority vote has none.
        t: vote === "weighted" ? t : null,
        features: input === "pixels" ? "pixels" : features,
        imageSize: data.imageSize,
        // Percentages, as every accuracy in the files of moco (issue #16); full precision.
        top1: result.top1 * 100,
        top5: result.top5 * 100,
        perClass: result.report.perClass.map((c) => ({
          ...c,
          accuracy: c.accuracy === null ? null : c.accuracy * 100,
        })),
        confusion: result.report.confusion,
        seconds: (performance.now() - started) / 1000,
      };
      writeJson(join(out, "knn.json"), summary);
      if (data.subset !== null) writeJson(join(out, "subset.json"), data.subset);
      const files = writeClassificationCsv(result.report, out);
      for (const c of result.report.perClass) {
        const accuracy = c.accuracy === null ? "n/a" : `${(c.accuracy * 100).toFixed(2)}%`;
        console.log(`  ${c.name.padEnd(16)} ${accuracy.padStart(8)}  (${c.correct}/${c.count})`);
      }
      const what =
        subject.baseline === null ? "" : ` (${subject.baseline.kind === "pixels" ? "raw pixels" : "random init"})`;
      console.log(`kNN${what} top-1 ${(result.top1 * 100).toFixed(2)}%  top-5 ${(result.top5 * 100).toFixed(2)}%`);
      console.log(`wrote ${[join(out, "knn.json"), ...files].join(", ")}`);
      return 0;
    } finally {
      data.dispose();
    }
  } finally {
    subject.dispose();
  }
}
