// One experiment of docs/recipe.md: the fashion-mnist preset with overrides, 1 thread, kNN against
// the first 2 000 test images. Usage: tsx bench/recipe-experiment.ts NAME '{"maxSteps":300,"lr":0.03}'
import { resolveConfig } from "../src/train/config.js";
import { pretrain } from "../src/train/pretrain.js";

const [name = "run", overrides = "{}"] = process.argv.slice(2);
const config = resolveConfig("fashion-mnist", [
  {
    source: "command line",
    values: {
      threads: 1,
      knnEvery: 0,
      knnTest: 2000,
      out: `runs/recipe-${name}`,
      ...(JSON.parse(overrides) as object),
    },
  },
]);
const started = Date.now();
// An experiment is rerun by design: its folder, named after it, holds only its own last result.
const result = await pretrain(config, { overwrite: true });
const show = (v: number | null) => (v === null ? "n/a" : v.toFixed(2));
console.log(
  `${name} ${overrides} trained ${show(result.knn.trained)} random ${show(result.knn.random)} ` +
    `pixels ${show(result.knn.pixels)} steps ${result.steps} ${((Date.now() - started) / 1000).toFixed(0)}s`,
);
