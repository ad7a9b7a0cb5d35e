// The metrics log: one JSON object per line (JSON Lines), easy to read back and to plot.
import { appendFileSync, existsSync, readFileSync } from "node:fs";

import { writeFileAtomic } from "../util/atomic-file.js";

export interface StepRecord {
  type: "step";
  epoch: number;
  /** Global step, from 1. */
  step: number;
  loss: number;
  /** Pretext accuracy: how often the positive key has the largest logit (%). */
  top1: number;
  top5: number;
  lr: number;
  imagesPerSec: number;
  time: string;
}

export interface EpochRecord {
  type: "epoch";
  /** Completed epochs. */
  epoch: number;
  step: number;
  loss: number;
  top1: number;
  top5: number;
  lr: number;
  seconds: number;
  imagesPerSec: number;
  time: string;
}

export interface KnnRecord {
  type: "knn";
  /** Completed epochs when measured (0 = the random initialisation). */
  epoch: number;
  step: number;
  top1: number;
  top5: number;
  features: string;
  time: string;
}

/**
 * A run continued from its checkpoint (`--resume`). What lies between the record before it and this
 * one is a pause, not training: readers of the log leave it out of the run's time.
 */
export interface ResumeRecord {
  type: "resume";
  /** Completed epochs and the global step of the checkpoint resumed from. */
  epoch: number;
  step: number;
  time: string;
}

export type MetricsRecord = StepRecord | EpochRecord | KnnRecord | ResumeRecord;

export class MetricsLog {
  constructor(readonly path: string) {}

  append(record: MetricsRecord): void {
    appendFileSync(this.path, JSON.stringify(record) + "\n");
  }

  read(): MetricsRecord[] {
    if (!existsSync(this.path)) return [];
    return readFileSync(this.path, "utf8")
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as MetricsRecord);
  }

  /**
   * Keeps what a checkpoint at global step `step` had seen, so that a resumed run appends after it
   * without the records of the steps it redoes.
   */
  truncateAfter(step: number): void {
    const kept = this.read().filter((r) => r.step <= step);
    writeFileAtomic(this.path, kept.map((r) => JSON.stringify(r) + "\n").join(""), "MetricsLog.truncateAfter");
  }
}
