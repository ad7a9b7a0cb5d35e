// Run folders are never destroyed silently (issue #16, 1): a folder with a checkpoint is refused
// before any work, --overwrite clears it, --resume takes a folder or "auto", --save-every keeps
// checkpoint_%04d.pth.tar, the best kNN's model_best.pth.tar; the same refusal for lincls.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { pretrainPlan } from "../src/cli/pretrain-command.js";
import { UsageError } from "../src/errors.js";
import { resolveConfig, type PretrainConfig } from "../src/train/config.js";
import { pretrain } from "../src/train/pretrain.js";
import { clearRunFolder } from "../src/util/run-folder.js";

const root = mkdtempSync(join(tmpdir(), "moco-run-folder-"));
after(() => rmSync(root, { recursive: true, force: true }));

function tinyConfig(out: string, overrides: Partial<PretrainConfig> = {}): PretrainConfig {
  return resolveConfig("fashion-mnist", [
    {
      source: "test",
      values: {
        subset: 128,
        width: 4,
        batchSize: 32,
        bnSplits: 2,
        mocoK: 64,
        mocoDim: 16,
        epochs: 2,
        knnEvery: 1,
        knnBank: 128,
        knnTest: 64,
        threads: 1,
        out,
        ...overrides,
      },
    },
  ]);
}

const lineCount = (path: string) => readFileSync(path, "utf8").split("\n").filter(Boolean).length;

test("a second run into a run folder is refused before any work; --overwrite clears it", async () => {
  const out = join(root, "run");
  const first = await pretrain(tinyConfig(out, { saveEvery: 1 }));
  assert.equal(first.steps, 8);
  // main_moco.py's names: the 0-based epoch index; the best kNN's checkpoint besides the latest.
  for (const name of ["checkpoint.pth.tar", "checkpoint_0000.pth.tar", "checkpoint_0001.pth.tar", "model_best.pth.tar"])
    assert.ok(existsSync(join(out, name)), name);
  const metrics = join(out, "metrics.jsonl");
  const before = readFileSync(metrics, "utf8");

  await assert.rejects(pretrain(tinyConfig(out, { maxSteps: 1 })), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.match(error.message, /already holds a run/);
    for (const way of ["--resume", "--overwrite", "--out"]) assert.ok(error.message.includes(way), way);
    return true;
  });
  assert.equal(readFileSync(metrics, "utf8"), before, "the refused run touched nothing");

  // The CLI refuses too, before opening any data (exit 2, the message on stderr).
  const cli = spawnSync(process.execPath, ["bin/moco.js", "pretrain", "--out", out, "--max-steps", "1"], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, /already holds a run.*--overwrite/);

  const replaced = await pretrain(tinyConfig(out, { maxSteps: 2 }), { overwrite: true });
  assert.equal(replaced.steps, 2);
  assert.ok(!existsSync(join(out, "checkpoint_0000.pth.tar")), "the old run's epoch checkpoints are gone");
  assert.ok(lineCount(metrics) < before.split("\n").filter(Boolean).length);
});

test("--resume takes a run folder or auto; clearing keeps files that are not a run's", async () => {
  const out = join(root, "resume");
  const config = tinyConfig(out, { maxSteps: 3 });
  await pretrain(config);
  const base = ["--subset", "128", "--width", "4", "-b", "32", "--bn-splits", "2", "--moco-k", "64", "--out", out];
  assert.equal(pretrainPlan([...base, "--resume", out]).resume, join(out, "checkpoint.pth.tar"));
  assert.equal(pretrainPlan([...base, "--resume", "auto"]).resume, join(out, "checkpoint.pth.tar"));
  assert.equal(pretrainPlan([...base, "--resume", "auto", "--out", join(root, "none")]).resume, null);
  assert.equal(pretrainPlan([...base, "--overwrite"]).overwrite, true);
  assert.throws(() => pretrainPlan([...base, "--resume", root]), /no checkpoint\.pth\.tar in that folder/);
  const resumed = await pretrain({ ...config, maxSteps: 5 }, { resume: out });
  assert.equal(resumed.steps, 5);

  const mixed = join(root, "mixed");
  mkdirSync(mixed);
  for (const name of ["checkpoint.pth.tar", "checkpoint_0003.pth.tar", "metrics.jsonl", "notes.txt"])
    writeFileSync(join(mixed, name), "x");
  clearRunFolder(mixed);
  assert.ok(existsSync(join(mixed, "notes.txt")), "not a run's file: kept");
  assert.ok(!existsSync(join(mixed, "checkpoint_0003.pth.tar")) && !existsSync(join(mixed, "metrics.jsonl")));
});

test("moco lincls refuses an output folder holding a run before loading anything", () => {
  const out = join(root, "lincls");
  mkdirSync(out);
  writeFileSync(join(out, "checkpoint.pth.tar"), "x");
  writeFileSync(join(out, "metrics.jsonl"), "{}\n");
  const result = spawnSync(
    process.execPath,
    ["bin/moco.js", "lincls", "--pretrained", join(root, "missing.pth.tar"), "--out", out],
    { encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(result.status, 2, result.stderr);
  assert.match(result.stderr, /already holds a run.*--resume.*--overwrite.*--out/);
  assert.equal(readFileSync(join(out, "metrics.jsonl"), "utf8"), "{}\n");
});
