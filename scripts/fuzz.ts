// `npm run fuzz -- --seconds N [--seed S] [--targets checkpoint,idx]`: fuzzes every file reader for
// N seconds in all (split between the targets) with mutations of files Python writes, and saves
// each finding (crash, hang, memory excess) as a regression file under test/fuzz-regressions/,
// which test/fuzz.test.ts replays.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { runFuzz } from "../test/fuzz/run.js";
import { TARGETS } from "../test/fuzz/targets.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "60" },
    seed: { type: "string", default: String(Date.now() % 2 ** 31) },
    targets: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
if (!Number.isFinite(seconds) || seconds <= 0)
  throw new Error(`--seconds must be a positive number, got ${values.seconds}`);
if (!Number.isSafeInteger(seed)) throw new Error(`--seed must be an integer, got ${values.seed}`);
const targets = values.targets?.split(",") ?? TARGETS.map((t) => t.name);

const seedsDir = mkdtempSync(join(tmpdir(), "moco-fuzz-seeds-"));
try {
  const script = fileURLToPath(new URL("../test/py/file_safety.py", import.meta.url));
  const made = spawnSync("/usr/bin/python3", [script, "seeds", seedsDir], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`writing the seeds failed: ${made.stderr}`);
  const saveDir = fileURLToPath(new URL("../test/fuzz-regressions", import.meta.url));
  const result = await runFuzz({ seedsDir, targets, secondsPerTarget: seconds / targets.length, seed, saveDir });
  const total = Object.values(result.inputs).reduce((a, b) => a + b, 0);
  console.log(`fuzz: seed ${seed}, ${result.seconds.toFixed(0)} s, ${total} inputs`);
  for (const [name, n] of Object.entries(result.inputs)) console.log(`  ${name}: ${n} inputs`);
  for (const f of result.findings)
    console.log(`  FINDING ${f.kind} in ${f.target} #${f.iteration}: ${f.message} → ${f.saved ?? ""}`);
  console.log(result.findings.length === 0 ? "no findings" : `${result.findings.length} finding(s)`);
  process.exitCode = result.findings.length === 0 ? 0 : 1;
} finally {
  rmSync(seedsDir, { recursive: true, force: true });
}
