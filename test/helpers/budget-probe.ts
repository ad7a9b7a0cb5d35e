// Reads one file in a fresh process and reports the peak resident memory it took (VmHWM after
// minus before) and the time: `node --import tsx budget-probe.ts <checkpoint|idx> <path>`.
// Prints one JSON line: {"peakMB", "ms", "error"}.
import { readFileSync } from "node:fs";

import { readIdx } from "../../src/data/idx.js";
import { collectTensors } from "../../src/encoder/sources.js";
import { load, ones } from "../../src/torch/index.js";

const peak = (): number => Number(/VmHWM:\s+(\d+)/.exec(readFileSync("/proc/self/status", "utf8"))![1]) / 1024;

const [kind, path] = process.argv.slice(2);
ones([1]).dispose(); // the native library's own start-up memory is not the file's
const before = peak();
const started = performance.now();
let error: string | null = null;
try {
  if (kind === "checkpoint") for (const tensor of collectTensors(load(path!), path)) tensor.dispose();
  else readIdx(path!);
} catch (e) {
  error = (e as Error).message;
}
console.log(JSON.stringify({ peakMB: peak() - before, ms: performance.now() - started, error }));
