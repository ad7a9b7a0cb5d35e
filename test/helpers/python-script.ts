// Runs one of the test/py scripts with Debian's Python PyTorch (the tests' reference): a failure
// of the script fails the test with its stderr.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

import { PYTHON } from "./python.js";

/** A runner for test/py/<script>: `run(command, ...args)` returns the script's stdout. */
export function pythonScript(script: string): (...args: string[]) => string {
  const path = fileURLToPath(new URL(`../py/${script}`, import.meta.url));
  return (...args) => {
    const run = spawnSync(PYTHON, [path, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
    if (run.status !== 0) throw new Error(`${script} ${args[0] ?? ""} failed (${run.status}): ${run.stderr}`);
    return run.stdout;
  };
}
