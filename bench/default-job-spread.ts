// The default job's run-to-run spread (issue #13): `moco pretrain` exactly as the README's first
// command runs it, once per seed, then the kNN of the trained encoder against raw pixels and random
// initialisation on each run's own bank and queries (the seed also draws the 10 000-image subset).
// Usage: tsx bench/default-job-spread.ts [SEEDS, default 0,1,2] [-- extra pretrain flags]
// Writes runs/spread/seed-S (one run folder each) and runs/spread/summary.json; prints a table.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

interface Summary {
  knn: { trained: number | null; random: number | null; pixels: number | null } | null;
  seconds: number;
}

const args = process.argv.slice(2);
const dashes = args.indexOf("--");
const extra = dashes === -1 ? [] : args.slice(dashes + 1);
const seeds = (args[0] !== undefined && args[0] !== "--" ? args[0] : "0,1,2").split(",").map(Number);
const root = "runs/spread";
mkdirSync(root, { recursive: true });

const rows: { seed: number; trained: number; random: number; pixels: number; minutes: number }[] = [];
for (const seed of seeds) {
  const out = join(root, `seed-${seed}`);
  const flags = ["bin/moco.js", "pretrain", "--seed", String(seed), "--out", out, "--overwrite", ...extra];
  console.log(`node ${flags.join(" ")}`);
  const run = spawnSync(process.execPath, flags, { stdio: ["ignore", "ignore", "inherit"] });
  if (run.status !== 0) throw new Error(`seed ${seed}: moco pretrain exited with ${run.status ?? run.signal}`);
  const summary = JSON.parse(readFileSync(join(out, "summary.json"), "utf8")) as Summary;
  const { trained, random, pixels } = summary.knn ?? {};
  if (trained == null || random == null || pixels == null) throw new Error(`seed ${seed}: no kNN in summary.json`);
  rows.push({ seed, trained, random, pixels, minutes: summary.seconds / 60 });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => {
  const m = mean(xs);
  return xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
};
const f = (x: number) => x.toFixed(2);
console.log(`\nCPU: ${cpus()[0]?.model ?? "unknown"}, ${cpus().length} cores`);
console.log("| seed | trained | random init | raw pixels | trained − pixels | trained − random | minutes |");
console.log("| --- | --- | --- | --- | --- | --- | --- |");
for (const r of rows) {
  const cells = [r.trained, r.random, r.pixels, r.trained - r.pixels, r.trained - r.random].map(f);
  console.log(`| ${r.seed} | ${cells.join(" | ")} | ${r.minutes.toFixed(1)} |`);
}
const column = (pick: (r: (typeof rows)[number]) => number) => rows.map(pick);
const stats = {
  trained: { mean: mean(column((r) => r.trained)), sd: sd(column((r) => r.trained)) },
  marginOverPixels: { mean: mean(column((r) => r.trained - r.pixels)), sd: sd(column((r) => r.trained - r.pixels)) },
  marginOverRandom: { mean: mean(column((r) => r.trained - r.random)), sd: sd(column((r) => r.trained - r.random)) },
};
console.log(
  `| mean ± sd | ${f(stats.trained.mean)} ± ${f(stats.trained.sd)} | | | ` +
    `${f(stats.marginOverPixels.mean)} ± ${f(stats.marginOverPixels.sd)} | ` +
    `${f(stats.marginOverRandom.mean)} ± ${f(stats.marginOverRandom.sd)} | |`,
);
writeFileSync(join(root, "summary.json"), JSON.stringify({ seeds, extra, rows, stats }, null, 2) + "\n");
