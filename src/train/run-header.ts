// The header of a pretraining run: what it trains on, with what network and method settings, for how
// many steps, where; and warnings for settings that make a run meaningless or misleading. Printed
// at the start and kept in the run folder (run.json), so a run says what it did before it spends
// hours doing it (issue #16, 3).
import type { PretrainConfig } from "./config.js";
import type { PretrainData } from "./data.js";
import { describePrecision, type ResolvedPrecision } from "../torch/index.js";
import { describeAugment } from "../data/augment.js";

export interface RunHeader {
  data: {
    /** The data folder (null: the dataset's default place). */
    path: string | null;
    kind: string;
    /** Images trained on, of `available`. */
    images: number;
    available: number;
    /** The subset's seed when `images` is a random sample (subset.json has the indices). */
    subsetSeed: number | null;
    classes: number;
    channels: number;
    imageSize: number;
    /** Unreadable images left out (--skip-bad-images). */
    skipped: number;
  };
  /** The two views' augmentation, in words. */
  augmentation: string;
  network: { arch: string; width: number; cifarStem: boolean; parameters: number };
  method: { dim: number; K: number; m: number; T: number; mlp: boolean; symmetric: boolean; bnSplits: number };
  schedule: { batchSize: number; epochs: number; stepsPerEpoch: number; totalSteps: number };
  threads: number;
  /** Loader worker threads decoding and augmenting batches (0: in the training thread). */
  workers: number;
  device: string;
  /** The compute precision when the configuration has one. */
  precision: string | null;
  warnings: string[];
}

/** Warnings about settings that waste a run or make its numbers mean little. */
export function headerWarnings(h: Omit<RunHeader, "warnings">, knnMonitor: boolean): string[] {
  const warnings: string[] = [];
  const { images } = h.data;
  if (h.method.K >= images)
    warnings.push(
      `the queue (--moco-k ${h.method.K}) is not smaller than the ${images} training images: it holds several ` +
        "keys of the same images, so a query's own image is among its negatives; use --moco-k below " +
        `${images} (a multiple of --batch-size) or more images`,
    );
  if (h.schedule.stepsPerEpoch < 10)
    warnings.push(
      `only ${h.schedule.stepsPerEpoch} step(s) per epoch (${images} images, batch ${h.schedule.batchSize}): ` +
        "lower --batch-size or use more images",
    );
  if (h.data.skipped > 0) warnings.push(`${h.data.skipped} unreadable image(s) left out (--skip-bad-images)`);
  if (!knnMonitor) warnings.push("no labels (or no test split): the kNN monitor is off");
  return warnings;
}

export function pretrainHeader(
  config: PretrainConfig,
  data: PretrainData,
  parameters: number,
  steps: { stepsPerEpoch: number; totalSteps: number },
  threads: number,
  /** What `--precision`/`--channels-last` resolved to on this machine (else the setting is shown). */
  resolved?: ResolvedPrecision,
  /** The loader's worker threads (DataLoader.workers). */
  workers = 0,
): RunHeader {
  // The precision is another option's (config.precision when present); the header only reports it.
  const setting = (config as { precision?: unknown }).precision;
  const precision =
    resolved !== undefined
      ? `${describePrecision(resolved)}${setting === "auto" ? " (auto)" : ""}`
      : setting === undefined || setting === null
        ? null
        : String(setting);
  const header: Omit<RunHeader, "warnings"> = {
    data: {
      path: config.data,
      kind: config.dataset,
      images: data.train.length,
      available: data.available,
      subsetSeed: data.subset === null ? null : data.subset.seed,
      classes: data.train.numClasses,
      channels: data.train.channels,
      imageSize: data.imageSize,
      skipped: data.skipped,
    },
    augmentation: describeAugment(data.augment),
    network: { arch: config.arch, width: config.width, cifarStem: config.cifarStem, parameters },
    method: {
      dim: config.mocoDim,
      K: config.mocoK,
      m: config.mocoM,
      T: config.mocoT,
      mlp: config.mlp,
      symmetric: config.symmetric,
      bnSplits: config.bnSplits,
    },
    schedule: { batchSize: config.batchSize, epochs: config.epochs, ...steps },
    threads,
    workers,
    device: config.device,
    precision,
  };
  return { ...header, warnings: headerWarnings(header, data.knnBank !== null && data.knnTest !== null) };
}

/** A count with thousands separators: 11,169,152. */
const count = (n: number) => n.toLocaleString("en-US");

/** The header as the lines printed at the start of a run. */
export function formatHeader(h: RunHeader): string[] {
  const d = h.data;
  const used =
    d.images === d.available
      ? `${count(d.images)} images`
      : `${count(d.images)} of ${count(d.available)} images (a random sample, seed ${d.subsetSeed ?? "?"}: subset.json)`;
  const m = h.method;
  return [
    `data: ${d.kind}${d.path === null ? "" : ` ${d.path}`}: ${used}, ${d.classes > 0 ? `${d.classes} classes` : "unlabeled"}, ` +
      `${d.channels} channel(s), ${d.imageSize}×${d.imageSize} crops` +
      (d.skipped > 0 ? `, ${d.skipped} unreadable skipped` : ""),
    `augmentation: ${h.augmentation}`,
    `network: ${h.network.arch} width ${h.network.width}${h.network.cifarStem ? " (CIFAR stem)" : ""}, ` +
      `${count(h.network.parameters)} parameters (query encoder)`,
    `MoCo: dim ${m.dim}, K ${count(m.K)}, m ${m.m}, T ${m.T}, ${m.mlp ? "MLP head" : "linear head"}, ` +
      `${m.symmetric ? "symmetric loss, " : ""}BN splits ${m.bnSplits}`,
    `schedule: batch ${h.schedule.batchSize}, ${h.schedule.stepsPerEpoch} steps per epoch, ${h.schedule.epochs} epoch(s), ` +
      `${count(h.schedule.totalSteps)} steps in all`,
    `running on ${h.device}${h.precision === null ? "" : ` in ${h.precision}`}, ${h.threads} thread(s)` +
      (h.workers > 0 ? `, ${h.workers} loader worker thread(s) decoding and augmenting` : ""),
    ...h.warnings.map((w) => `warning: ${w}`),
  ];
}
