// `writeRunReport(runDirs, { out })`: one self-contained HTML page about one or more pretraining
// runs — loss, lr, pretext accuracy and images/s per step; the kNN curve with its random-init and
// raw-pixel baselines; linear evaluation; accuracy per class and confusion matrices; a map of the
// embedding space and a grid of nearest neighbours. Several runs share each chart (one colour per
// run). `moco report` calls it; so can the end of a training run.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";

import { writeFileAtomic } from "../util/atomic-file.js";
import {
  confusionChart,
  embeddingChart,
  knnChart,
  linclsChart,
  perClassChart,
  renderSvg,
  stepChart,
  type ChartSpec,
} from "./charts.js";
import { embeddingViews, type EmbeddingViewOptions } from "./embedding.js";
import { escapeHtml, mapFigure, neighbourGrid, reportPage, runTable, scopeSvgIds, type ReportSection } from "./page.js";
import { attachEvaluation, readRuns, type RunRecord } from "./run.js";

export { ReportInputError, readRuns, readRun, attachEvaluation, folderKind, type RunRecord } from "./run.js";
export { embeddingViews, thumbnailUri, type EmbeddingViews, type EmbeddingViewOptions } from "./embedding.js";
export { renderSvg, type ChartSpec } from "./charts.js";

export interface RunReportOptions extends Omit<EmbeddingViewOptions, "log"> {
  /** The HTML file to write. */
  out: string;
  /** Title of the page (default: "MoCo runs: " and the run names). */
  title?: string;
  /** Compute the embedding map and neighbour grid from each run's checkpoint (default true). */
  embedding?: boolean;
  /** Extra kNN/lincls outputs per run folder (by index into runDirs), beside those found inside them. */
  evaluations?: readonly (readonly string[])[];
  log?: (line: string) => void;
}

export interface RunReport {
  path: string;
  runs: RunRecord[];
  /** Charts on the page (SVGs rendered). */
  charts: number;
  /** Bytes written. */
  bytes: number;
}

/** Writes the report of `runDirs` (run folders, optionally each followed by its evaluation folders). */
export async function writeRunReport(runDirs: readonly string[], options: RunReportOptions): Promise<RunReport> {
  if (typeof options.out !== "string" || options.out === "")
    throw new TypeError("writeRunReport: options.out must be the HTML file to write");
  const runs = readRuns(runDirs);
  options.evaluations?.forEach((paths, i) => {
    const run = runs[i];
    if (run === undefined) throw new RangeError(`writeRunReport: evaluations[${i}] has no run (${runs.length} runs)`);
    for (const path of paths) attachEvaluation(run, path);
  });
  let charts = 0;
  const svg = async (spec: ChartSpec): Promise<string> => {
    charts += 1;
    return `<figure class="chart">${scopeSvgIds(await renderSvg(spec), `c${charts}`)}</figure>`;
  };
  const sections: ReportSection[] = [];
  const withSteps = runs.filter((r) => r.steps.length > 0);
  if (withSteps.length > 0) {
    sections.push({
      title: "Training",
      body: `<div class="charts">${[
        await svg(stepChart(withSteps, "loss", "InfoNCE loss", "loss")),
        await svg(stepChart(withSteps, "top1", "Pretext top-1 (%): the positive key ranked first", "top-1 (%)")),
        await svg(stepChart(withSteps, "lr", "Learning rate", "lr")),
        await svg(stepChart(withSteps, "imagesPerSec", "Throughput (images/s)", "images/s")),
      ].join(
        "",
      )}</div><p class="note">The pretext accuracy starts near 100% against a random queue and drops as the queue fills with real keys; the loss rises at first for the same reason.</p>`,
    });
  }
  if (runs.some((r) => r.knn.length > 0)) {
    sections.push({
      title: "kNN monitor",
      body: `<div class="charts">${await svg(knnChart(runs))}${await svg(knnChart(runs, "minutes"))}</div><p class="note">Weighted kNN top-1 on held-out images with a bank of training images; dotted: the same network at random initialisation, dashed: raw pixels.</p>`,
    });
  }
  if (runs.some((r) => r.lincls.some((l) => l.epochs.length > 0))) {
    sections.push({ title: "Linear evaluation", body: `<div class="charts">${await svg(linclsChart(runs))}</div>` });
  }
  const results = runs.flatMap((run) =>
    run.classResults.map((classes) => ({
      label: runs.length > 1 ? `${run.name}: ${classes.source}` : classes.source,
      classes,
    })),
  );
  if (results.length > 0) {
    const parts = [await svg(perClassChart(results))];
    for (const { label, classes } of results)
      parts.push(await svg(confusionChart(classes, `Confusion matrix, ${label} (top-1 ${classes.top1.toFixed(2)}%)`)));
    sections.push({ title: "Per class", body: `<div class="charts">${parts.join("")}</div>` });
  }
  if (options.embedding ?? true) {
    for (const run of runs) {
      if (run.checkpoint === null) continue;
      let views: Awaited<ReturnType<typeof embeddingViews>>;
      try {
        views = await embeddingViews(run, { ...options, ...(options.log === undefined ? {} : { log: options.log }) });
      } catch (error) {
        // A run folder moved away from its data still gets its curves; the page says what is missing.
        const reason = `${run.name}: no embedding map: ${(error as Error).message}`;
        options.log?.(reason);
        sections.push({
          title: `Embedding space: ${run.name}`,
          body: `<p class="note unavailable">${escapeHtml(reason)}</p>`,
        });
        continue;
      }
      const map = await svg(embeddingChart(views.points, `UMAP of the embeddings (${run.name})`));
      const precision =
        views.precisionAtK === null
          ? ""
          : ` Precision@${options.neighbours ?? 8} over the whole sample (neighbours of the query's class): <b>${(views.precisionAtK * 100).toFixed(1)}%</b>.`;
      sections.push({
        title: `Embedding space: ${run.name}`,
        body: `<p class="note">${escapeHtml(views.description)}; ${escapeHtml(views.encoder)}. Hover a point for its image.${precision}</p>
<div class="charts">${mapFigure(map, views)}<div><h3>Nearest neighbours (cosine similarity; green: same class as the query, red: another)</h3>${neighbourGrid(views)}</div></div>`,
      });
    }
  }
  const title = options.title ?? `MoCo runs: ${runs.map((r) => r.name).join(", ")}`;
  const intro = `<p class="note">Written by moco report on ${new Date().toISOString()}.</p>${runTable(runs)}`;
  const html = reportPage(title, intro, sections);
  mkdirSync(dirname(options.out), { recursive: true });
  const bytes = new TextEncoder().encode(html);
  writeFileAtomic(options.out, bytes, "report");
  return { path: options.out, runs, charts, bytes: bytes.length };
}
