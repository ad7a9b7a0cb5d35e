// The report's charts: vega-lite specifications compiled by vega-lite and rendered to SVG strings
// by vega without a browser (renderer "none" + toSVG), so the page holds plain inline SVG and
// needs no script or network to show them. Each function returns the specification; `renderSvg`
// draws any of them.
import type { TopLevelSpec } from "vega-lite";

import type { ClassResults, KnnPoint, RunRecord, StepPoint } from "./run.js";

export type ChartSpec = TopLevelSpec;

const WIDTH = 520;
const HEIGHT = 220;

/** SVG text of a vega-lite specification. */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  // Loaded on first use: they take ~0.2 s to import, which every other command would pay.
  const [vega, { compile }] = await Promise.all([import("vega"), import("vega-lite")]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** At most `max` points per run: means over runs of consecutive steps, so long runs stay light. */
export function thinSteps(steps: readonly StepPoint[], max = 400): StepPoint[] {
  if (steps.length <= max) return [...steps];
  const bin = Math.ceil(steps.length / max);
  const out: StepPoint[] = [];
  for (let start = 0; start < steps.length; start += bin) {
    const chunk = steps.slice(start, start + bin);
    const mean = (pick: (p: StepPoint) => number) => {
      const values = chunk.map(pick).filter(Number.isFinite);
      return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
    };
    const last = chunk[chunk.length - 1] as StepPoint;
    out.push({
      step: last.step,
      epoch: last.epoch,
      loss: mean((p) => p.loss),
      top1: mean((p) => p.top1),
      lr: mean((p) => p.lr),
      imagesPerSec: mean((p) => p.imagesPerSec),
    });
  }
  return out;
}

type StepField = "loss" | "top1" | "lr" | "imagesPerSec";

/** One line per run of a per-step quantity. */
export function stepChart(runs: readonly RunRecord[], field: StepField, title: string, yTitle: string): ChartSpec {
  const values = runs.flatMap((run) =>
    thinSteps(run.steps)
      .filter((p) => Number.isFinite(p[field]))
      .map((p) => ({ run: run.name, step: p.step, value: p[field] })),
  );
  return {
    title,
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: "line", interpolate: "linear", strokeWidth: 1.5 },
    encoding: {
      x: { field: "step", type: "quantitative", title: "step" },
      y: { field: "value", type: "quantitative", title: yTitle, scale: { zero: false } },
      color: { field: "run", type: "nominal", title: "run" },
    },
  };
}

/** The kNN monitor's top-1 over epochs, with each run's random-init and raw-pixel baselines as rules. */
export function knnChart(runs: readonly RunRecord[], against: "epoch" | "minutes" = "epoch"): ChartSpec {
  const trained: { run: string; epoch: number; minutes: number | null; top1: number }[] = [];
  const baselines: { run: string; baseline: string; top1: number }[] = [];
  for (const run of runs) {
    const encoderPoints = run.knn.filter((p: KnnPoint) => p.features !== "pixels");
    for (const p of encoderPoints) trained.push({ run: run.name, epoch: p.epoch, minutes: p.minutes, top1: p.top1 });
    const pixels = run.knn.find((p) => p.features === "pixels");
    if (pixels !== undefined) baselines.push({ run: run.name, baseline: "raw pixels", top1: pixels.top1 });
    const initial = encoderPoints.find((p) => p.step === 0);
    if (initial !== undefined) baselines.push({ run: run.name, baseline: "random init", top1: initial.top1 });
  }
  return {
    title: `kNN top-1 (%) of the encoder against ${against === "epoch" ? "epochs" : "wall time"}, with its baselines`,
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values: trained },
        mark: { type: "line", point: true },
        encoding: {
          x:
            against === "epoch"
              ? { field: "epoch", type: "quantitative", title: "epoch" }
              : {
                  field: "minutes",
                  type: "quantitative",
                  title: "wall time (minutes, pauses between resumes left out)",
                },
          y: { field: "top1", type: "quantitative", title: "kNN top-1 (%)", scale: { zero: false } },
          color: { field: "run", type: "nominal", title: "run" },
        },
      },
      {
        data: { values: baselines },
        mark: { type: "rule", strokeWidth: 1.5 },
        encoding: {
          y: { field: "top1", type: "quantitative" },
          color: { field: "run", type: "nominal" },
          strokeDash: {
            field: "baseline",
            type: "nominal",
            title: "baseline",
            scale: {
              domain: ["random init", "raw pixels"],
              range: [
                [2, 2],
                [6, 3],
              ],
            },
          },
        },
      },
    ],
  };
}

/** Linear evaluation's validation top-1 per epoch, one line per run. */
export function linclsChart(runs: readonly RunRecord[]): ChartSpec {
  const values = runs.flatMap((run) =>
    run.lincls.flatMap((curve) => curve.epochs.map((e) => ({ run: run.name, epoch: e.epoch, top1: e.valTop1 }))),
  );
  return {
    title: "Linear evaluation: validation top-1 (%)",
    width: WIDTH,
    height: HEIGHT,
    data: { values },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "epoch", type: "quantitative", title: "epoch" },
      y: { field: "top1", type: "quantitative", title: "top-1 (%)", scale: { zero: false } },
      color: { field: "run", type: "nominal", title: "run" },
    },
  };
}

/** Accuracy per class, one bar per class and result set (run × evaluation). */
export function perClassChart(results: readonly { label: string; classes: ClassResults }[]): ChartSpec {
  const values = results.flatMap(({ label, classes }) =>
    classes.perClass.map((c) => ({ result: label, class: c.name, accuracy: c.accuracy ?? 0 })),
  );
  return {
    title: "Accuracy per class (%)",
    width: WIDTH,
    data: { values },
    mark: "bar",
    encoding: {
      y: { field: "class", type: "nominal", title: null, sort: null },
      yOffset: { field: "result", type: "nominal" },
      x: { field: "accuracy", type: "quantitative", title: "accuracy (%)", scale: { domain: [0, 100] } },
      color: { field: "result", type: "nominal", title: "evaluation" },
    },
  };
}

/** The confusion matrix as a heat map with counts (rows: true class, columns: predicted). */
export function confusionChart(classes: ClassResults, title: string): ChartSpec {
  const names = classes.classNames;
  const values = classes.confusion.flatMap((row, i) =>
    row.map((count, j) => {
      const total = row.reduce((a, b) => a + b, 0);
      return { truth: names[i], predicted: names[j], count, share: total === 0 ? 0 : count / total };
    }),
  );
  const side = Math.min(560, Math.max(200, 28 * names.length));
  return {
    title,
    width: side,
    height: side,
    data: { values },
    encoding: {
      x: { field: "predicted", type: "ordinal", sort: names, title: "predicted" },
      y: { field: "truth", type: "ordinal", sort: names, title: "true class" },
    },
    layer: [
      {
        mark: "rect",
        encoding: {
          color: {
            field: "share",
            type: "quantitative",
            title: "share of row",
            scale: { scheme: "blues", domain: [0, 1] },
          },
        },
      },
      ...(names.length <= 20
        ? [
            {
              mark: { type: "text" as const, fontSize: 9 },
              encoding: {
                text: { field: "count", type: "quantitative" as const },
                color: { condition: { test: "datum.share > 0.5", value: "white" }, value: "black" },
              },
            },
          ]
        : []),
    ],
  };
}

export interface MapPoint {
  x: number;
  y: number;
  /** Index into the page's thumbnails (what the hover shows). */
  id: number;
  label: string;
}

/** The 2-D map of the embeddings (UMAP), coloured by class; each point's description is "#<id>". */
export function embeddingChart(points: readonly MapPoint[], title: string): ChartSpec {
  return {
    title,
    width: 460,
    height: 400,
    data: { values: points.map((p) => ({ ...p, ref: `#${p.id}` })) },
    mark: { type: "circle", size: 22, opacity: 0.8 },
    encoding: {
      x: { field: "x", type: "quantitative", axis: null, scale: { zero: false } },
      y: { field: "y", type: "quantitative", axis: null, scale: { zero: false } },
      color: { field: "label", type: "nominal", title: "class" },
      // Becomes each circle's aria-label: the page's hover script finds the thumbnail by it.
      description: { field: "ref", type: "nominal" },
    },
  };
}
