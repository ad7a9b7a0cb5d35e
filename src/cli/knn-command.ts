// `moco knn`: weighted kNN evaluation of any checkpoint on a labeled dataset.
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { writeClassificationCsv } from "../eval/classification-report.js";
import { evaluateEncoderKnn } from "../eval/encoder-knn.js";
import { KNN_DEFAULTS } from "../eval/knn.js";
import type { FeatureKind } from "../encoder/encoder.js";
import { DATA_FLAGS, openEvalData } from "./eval-data.js";
import { ENCODER_FLAGS, encoderFromFlags, precisionPolicy, writeJson } from "./encoder-flags.js";
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
  ...DATA_FLAGS,
  DEVICE_FLAG,
  PRECISION_FLAG,
  CHANNELS_LAST_FLAG,
  { flag: "knn-k", kind: "int", help: "neighbours that vote", default: KNN_DEFAULTS.k, bounds: { min: 1 } },
  {
    flag: "knn-t",
    kind: "float",
    help: "temperature of the vote weights",
    default: KNN_DEFAULTS.t,
    bounds: { min: 0, minExclusive: true },
  },
  { flag: "features", kind: "string", choices: ["backbone", "head"], help: "backbone | head", default: "backbone" },
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

Weighted kNN (the MoCo monitor: cosine similarity, top k neighbours weighted by exp(sim / t)) of an
encoder's L2-normalised features: the training split is the bank, the test split is classified.
Writes knn.json (top-1, top-5, per-class accuracy, confusion matrix), per-class.csv and
confusion.csv into --out.

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
  const log = (line: string) => console.error(line);
  const encoder = encoderFromFlags(flags, log);
  const policy = precisionPolicy(flags, log);
  try {
    if (features === "head" && !encoder.hasHead)
      throw new UsageError(`${encoder.info.path} has no head: --features backbone`);
    const data = await openEvalData(flags, encoder, positionals[0], ["train", "test"], log);
    try {
      const bank = data.splits.get("train");
      const test = data.splits.get("test");
      if (bank === undefined || test === undefined) throw new Error("knn: no train or test split");
      log(`kNN: bank ${bank.name} (${bank.length} images), queries ${test.name} (${test.length} images)`);
      const started = performance.now();
      const result = await evaluateEncoderKnn(encoder, {
        bank,
        test,
        k: flags.number("knn-k"),
        t: flags.number("knn-t"),
        features,
        size: data.imageSize,
        batchSize: flags.number("batch-size"),
        device: flags.optionalString("device") ?? "cpu",
        ...policy,
        onNote: log,
      });
      const out = flags.string("out");
      mkdirSync(out, { recursive: true });
      const summary = {
        checkpoint: encoder.info.path,
        encoder: encoder.describe(),
        dataset: data.kind,
        bank: { name: bank.name, images: bank.length },
        test: { name: test.name, images: test.length },
        k: flags.number("knn-k"),
        t: flags.number("knn-t"),
        features,
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
      console.log(`kNN top-1 ${(result.top1 * 100).toFixed(2)}%  top-5 ${(result.top5 * 100).toFixed(2)}%`);
      console.log(`wrote ${[join(out, "knn.json"), ...files].join(", ")}`);
      return 0;
    } finally {
      data.dispose();
    }
  } finally {
    encoder.dispose();
  }
}
