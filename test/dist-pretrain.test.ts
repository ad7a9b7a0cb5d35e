// `moco pretrain` over several processes: the launcher, workers started by env:// alone, exact
// resume, and failures (a killed or hung worker) ending the job cleanly with the checkpoint intact.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { freePort, ROOT, spawnRanks } from "./helpers/dist.js";

const root = mkdtempSync(join(tmpdir(), "moco-dist-"));
after(() => rmSync(root, { recursive: true, force: true }));

// 256 images, global batch 32 (16 per worker), 8 steps per epoch.
const SMALL = [
  ...["--subset", "256", "--width", "4", "--batch-size", "32", "--bn-splits", "2", "--moco-k", "64"],
  ...["--moco-dim", "16", "--knn-bank", "256", "--knn-test", "128", "--threads", "1", "--print-freq", "1"],
];

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs `moco` (the launcher, or a one-process run) to its end. */
function moco(args: string[], onStart?: (pid: number) => void): Promise<Exit> {
  const started = Date.now();
  const child = spawn(process.execPath, ["bin/moco.js", ...args], { cwd: ROOT });
  if (child.pid !== undefined) onStart?.(child.pid);
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), 180_000);
  return new Promise((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    }),
  );
}

function stepLosses(out: string): Map<number, number> {
  const lines = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n");
  const records = lines.map((line) => JSON.parse(line) as { type: string; step: number; loss?: number });
  return new Map(records.filter((r) => r.type === "step").map((r) => [r.step, r.loss as number]));
}

/** Live processes whose parent is `pid`. */
/**
 * The launcher's worker processes (`moco pretrain` children; not e.g. the esbuild service tsx starts
 * when it compiles a file late, which a loaded machine showed once).
 */
function childrenOf(pid: number): number[] {
  const result = spawnSync("ps", ["-o", "pid=,args=", "--ppid", String(pid)], { encoding: "utf8" });
  return result.stdout
    .split("\n")
    .filter((line) => / pretrain( |$)/.test(line))
    .map((line) => Number(line.trim().split(/\s+/)[0]))
    .filter((n) => n > 0);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("moco pretrain, 2 processes", () => {
  it("--nproc-per-node 2: rank 0 alone writes the run folder; --resume continues with the same losses", async () => {
    const full = join(root, "full");
    const parts = join(root, "parts");
    const launch = async (args: string[]) =>
      moco(["pretrain", ...SMALL, "--nproc-per-node", "2", "--master-port", String(await freePort()), ...args]);
    const [a, b] = await Promise.all([
      launch(["--epochs", "2", "--knn-every", "0", "--out", full]),
      launch(["--epochs", "2", "--knn-every", "0", "--max-steps", "11", "--out", parts]),
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.match(a.stderr, /starting 2 worker\(s\) on node 0 of 1 \(world size 2/);
    assert.equal(a.stdout.match(/^kNN top-1 — trained encoder/gm)?.length, 1, "one summary, from rank 0");
    for (const file of ["config.json", "metrics.jsonl", "checkpoint.pth.tar", "summary.json"]) {
      assert.ok(existsSync(join(full, file)), file);
    }
    const c = await moco([
      "pretrain",
      "--resume",
      join(parts, "checkpoint.pth.tar"),
      "--max-steps",
      "none",
      "--nproc-per-node",
      "2",
      "--master-port",
      String(await freePort()),
    ]);
    assert.equal(c.code, 0, c.stderr);
    const expected = stepLosses(full);
    const resumed = stepLosses(parts);
    assert.equal(expected.size, 16);
    assert.deepEqual([...resumed.keys()], [...expected.keys()]);
    for (const [step, loss] of expected) {
      assert.ok(Math.abs((resumed.get(step) as number) - loss) < 1e-5, `step ${step}: ${resumed.get(step)} vs ${loss}`);
    }
  });

  it("workers started by an outside launcher (env:// variables only) train together", async () => {
    const out = join(root, "env");
    const results = await spawnRanks(
      "../../bin/moco.js",
      ["pretrain", ...SMALL, "--epochs", "1", "--knn-every", "0", "--out", out],
      {
        worldSize: 2,
        killAfterMs: 120_000,
      },
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    assert.match(results[0]?.stdout ?? "", /run folder/);
    assert.equal(results[1]?.stdout ?? "", "", "rank 1 prints nothing");
    assert.equal(stepLosses(out).size, 8);
  });

  it("refuses layouts that do not divide, before starting any worker", async () => {
    const r = await moco([
      "pretrain",
      ...SMALL,
      "--batch-size",
      "33",
      "--moco-k",
      "66",
      "--bn-splits",
      "1",
      "--nproc-per-node",
      "2",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /batch size \(33, the global batch\) must be divisible by the 2 processes/);
    assert.doesNotMatch(r.stderr, /starting/);
    const s = await moco([
      "pretrain",
      ...SMALL,
      "--bn-splits",
      "3",
      "--batch-size",
      "48",
      "--moco-k",
      "96",
      "--nproc-per-node",
      "2",
    ]);
    assert.match(s.stderr, /BN splits \(3\) must be a multiple of the 2 processes, or 1/);
    const t = await moco(["pretrain", ...SMALL, "--master-port", "29500"]);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /--master-port needs --nproc-per-node/);
  });

  for (const failure of ["killed", "hung"] as const) {
    it(`a ${failure} worker stops the job: non-zero exit, no process left, checkpoint intact, --resume works`, async () => {
      const out = join(root, failure);
      let launcher = 0;
      const run = moco(
        ["pretrain", ...SMALL, "--epochs", "30", "--knn-every", "0", "--out", out, "--dist-timeout", "4"].concat([
          "--nproc-per-node",
          "2",
          "--master-port",
          String(await freePort()),
        ]),
        (pid) => (launcher = pid),
      );
      // After the first epoch's checkpoint, and a few steps into the second epoch.
      await until(() => existsSync(join(out, "checkpoint.pth.tar")) && stepLosses(out).size >= 11, 90_000);
      const workers = childrenOf(launcher);
      assert.equal(workers.length, 2);
      const victim = workers[1] as number;
      process.kill(victim, failure === "killed" ? "SIGKILL" : "SIGSTOP");
      const started = Date.now();
      const result = await run;
      const seconds = (Date.now() - started) / 1000;
      const tail = result.stderr.slice(-2000);
      assert.notEqual(result.code, 0, tail);
      assert.match(result.stderr, /lost the other workers/, tail);
      assert.match(result.stderr, /is intact: continue with --resume/, tail);
      // Noticed at once when killed, within the 4 s timeout (+ the launcher's grace) when hung.
      assert.ok(seconds < (failure === "killed" ? 15 : 25), `the job took ${seconds} s to stop:\n${tail}`);
      for (const pid of workers) assert.ok(!isAlive(pid), `worker ${pid} is still running`);
      const resumed = await moco([
        "pretrain",
        "--resume",
        join(out, "checkpoint.pth.tar"),
        "--epochs",
        "3",
        "--nproc-per-node",
        "2",
        "--master-port",
        String(await freePort()),
      ]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, /resumed .* at epoch 1, step 8/);
      assert.equal(stepLosses(out).size, 24);
    });
  }
});
