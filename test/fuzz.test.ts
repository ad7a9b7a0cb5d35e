// Fuzzing in the suite (issue #11): a few seconds per file reader of mutations of real files that
// Python wrote, with a per-input time limit and a memory limit (test/fuzz/run.ts); and every input
// a longer run (`npm run fuzz -- --seconds N`) found, replayed from test/fuzz-regressions/.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, it } from "node:test";

import { runFuzz } from "./fuzz/run.js";
import { TARGETS } from "./fuzz/targets.js";
import { unclean } from "./fuzz/worker.js";
import { pythonScript } from "./helpers/python-script.js";

const SECONDS_PER_TARGET = 2;
const REGRESSIONS = fileURLToPath(new URL("./fuzz-regressions", import.meta.url));

const dir = mkdtempSync(join(tmpdir(), "moco-fuzz-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const seedsDir = join(dir, "seeds");
mkdirSync(seedsDir);
pythonScript("file_safety.py")("seeds", seedsDir);

describe("fuzzing the file readers", () => {
  it(`${SECONDS_PER_TARGET} s per reader: no crash, hang or memory excess`, async () => {
    const result = await runFuzz({ seedsDir, secondsPerTarget: SECONDS_PER_TARGET, seed: Date.now() % 2 ** 31 });
    for (const target of TARGETS) assert.ok((result.inputs[target.name] ?? 0) > 0, `${target.name} ran no input`);
    assert.deepEqual(result.findings, [], JSON.stringify(result.findings, null, 2));
  });

  it("every regression input found by a longer run is read or refused cleanly, in time", () => {
    const work = join(dir, "replay");
    for (const file of readdirSync(REGRESSIONS).filter((f) => f.endsWith(".bin"))) {
      const target = TARGETS.find((t) => file.startsWith(`${t.name}-`));
      assert.ok(target !== undefined, `${file}: no target of that name`);
      if (target.derive !== undefined) target.derive(new Uint8Array(readFileSync(join(seedsDir, target.seeds[0]!))));
      const started = performance.now();
      try {
        target.run(new Uint8Array(readFileSync(join(REGRESSIONS, file))), mkdtempSync(`${work}-`));
      } catch (error) {
        const label = target.name === "checkpoint" || target.name === "pickle" ? "fuzz-input.pt" : work;
        assert.equal(unclean(error, label), null, file);
      }
      assert.ok(performance.now() - started < 5000, `${file} took too long`);
    }
  });
});
