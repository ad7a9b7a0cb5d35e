// The kNN curves of pretraining runs as two SVG files, against epochs and against wall time, with
// each run's raw-pixel and random-init lines (docs/results.md's plots).
// Usage: tsx scripts/plot-knn-curves.ts OUT_PREFIX RUN_DIR [RUN_DIR...]
//   writes OUT_PREFIX-epochs.svg and OUT_PREFIX-time.svg; a run's legend name is its folder's name.
import { writeFileSync } from "node:fs";

import { knnChart, renderSvg } from "../src/report/charts.js";
import { readRuns } from "../src/report/run.js";

const [prefix, ...dirs] = process.argv.slice(2);
if (prefix === undefined || dirs.length === 0) {
  console.error("usage: tsx scripts/plot-knn-curves.ts OUT_PREFIX RUN_DIR [RUN_DIR...]");
  process.exit(2);
}
const runs = readRuns(dirs);
for (const [suffix, against] of [
  ["epochs", "epoch"],
  ["time", "minutes"],
] as const) {
  const path = `${prefix}-${suffix}.svg`;
  writeFileSync(path, await renderSvg(knnChart(runs, against)));
  console.log(`wrote ${path}`);
}
