// What a classifier's predictions say beyond one number: accuracy per class and the confusion
// matrix (rows: true class, columns: predicted class), in files people open in a spreadsheet.
import { join } from "node:path";

import type { Tensor } from "../torch/index.js";
import { writeFileAtomic } from "../util/atomic-file.js";

export interface ClassAccuracy {
  name: string;
  count: number;
  correct: number;
  /** Fraction in [0, 1]; null for a class without test samples. */
  accuracy: number | null;
}

export interface ClassificationReport {
  total: number;
  correct: number;
  top1: number;
  perClass: ClassAccuracy[];
  /** confusion[trueClass][predictedClass] = count. */
  confusion: number[][];
}

/** Builds the report from int64 predictions and labels of the same length. */
export function classificationReport(
  predictions: Tensor,
  labels: Tensor,
  classNames: readonly string[],
): ClassificationReport {
  if (predictions.numel !== labels.numel)
    throw new RangeError(`report: ${predictions.numel} predictions for ${labels.numel} labels`);
  const numClasses = classNames.length;
  const predicted = predictions.toArray();
  const truth = labels.toArray();
  const confusion = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let i = 0; i < truth.length; i += 1) {
    const row = confusion[truth[i] as number];
    const p = predicted[i] as number;
    if (row === undefined || p < 0 || p >= numClasses)
      throw new RangeError(`report: class ${truth[i]} / prediction ${p} outside [0, ${numClasses})`);
    row[p] = (row[p] ?? 0) + 1;
  }
  const perClass = confusion.map((row, c) => {
    const count = row.reduce((a, b) => a + b, 0);
    const correct = row[c] ?? 0;
    return { name: classNames[c] ?? String(c), count, correct, accuracy: count === 0 ? null : correct / count };
  });
  const correct = perClass.reduce((a, c) => a + c.correct, 0);
  return { total: truth.length, correct, top1: truth.length === 0 ? 0 : correct / truth.length, perClass, confusion };
}

function csvField(value: string): string {
  return /[",\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Writes per-class.csv and confusion.csv into `dir`; returns their paths. */
export function writeClassificationCsv(report: ClassificationReport, dir: string): string[] {
  const perClassPath = join(dir, "per-class.csv");
  const perClass = [
    "class,count,correct,accuracy",
    ...report.perClass.map(
      (c) => `${csvField(c.name)},${c.count},${c.correct},${c.accuracy === null ? "" : c.accuracy.toFixed(6)}`,
    ),
  ];
  writeFileAtomic(perClassPath, `${perClass.join("\n")}\n`, "writeClassificationCsv");
  const confusionPath = join(dir, "confusion.csv");
  const names = report.perClass.map((c) => csvField(c.name));
  const confusion = [
    `true \\ predicted,${names.join(",")}`,
    ...report.confusion.map((row, i) => `${names[i]},${row.join(",")}`),
  ];
  writeFileAtomic(confusionPath, `${confusion.join("\n")}\n`, "writeClassificationCsv");
  return [perClassPath, confusionPath];
}
