// The one flag framework, in process: strict numbers, bounds, main_moco.py's spellings, "did you
// mean", negative values, config files in snake_case or camelCase, checks before any work, help.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { DOCTOR_HELP } from "../src/cli/doctor.js";
import { EMBED_HELP } from "../src/cli/embed-command.js";
import { EXPORT_HELP } from "../src/cli/export-command.js";
import { KNN_HELP } from "../src/cli/knn-command.js";
import { LINCLS_HELP } from "../src/cli/lincls-command.js";
import { SEARCH_HELP } from "../src/cli/search-command.js";
import { parseFlags, type Flag } from "../src/cli/flags.js";
import { checkSubset, pretrainPlan, runPretrain, stripLaunchFlags } from "../src/cli/pretrain-command.js";
import { ConfigError, UsageError, resolveConfig } from "../src/index.js";
import { openPretrainData } from "../src/train/data.js";

const root = mkdtempSync(join(tmpdir(), "moco-flags-"));
after(() => rmSync(root, { recursive: true, force: true }));

const TABLE: readonly Flag[] = [
  { flag: "batch-size", short: "b", kind: "int", help: "", default: 256, bounds: { min: 1 } },
  { flag: "lr", kind: "float", help: "", aliases: ["learning-rate"], bounds: { min: 0, minExclusive: true } },
  { flag: "cos", kind: "bool", help: "" },
  { flag: "schedule", kind: "list", help: "" },
];

/** The message of the UsageError/ConfigError `fn` throws. */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError || error instanceof ConfigError, `a usage error, got ${String(error)}`);
    return error.message;
  }
  assert.fail("expected an error");
}

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 60_000 });
}

test("numbers are decimal: hex, binary, exponents on integers and blanks are errors", () => {
  assert.equal(parseFlags(["--batch-size", "32"], TABLE).values.get("batch-size"), 32);
  assert.equal(parseFlags(["--lr", "1e-4"], TABLE).values.get("lr"), 1e-4);
  assert.equal(parseFlags(["--lr=.5"], TABLE).values.get("lr"), 0.5);
  for (const bad of ["0x20", "0b100000", "1e3", "32.0", " 32", "", "32abc"])
    assert.match(
      failure(() => parseFlags(["--batch-size", bad], TABLE)),
      /--batch-size expects a number, got '.*' \(a decimal integer\)/,
    );
  assert.match(
    failure(() => parseFlags(["--lr", "0x1"], TABLE)),
    /--lr expects a number/,
  );
  assert.match(
    failure(() => parseFlags(["--lr", "Infinity"], TABLE)),
    /--lr expects a number/,
  );
  assert.match(
    failure(() => parseFlags(["--schedule", "120,0x10"], TABLE)),
    /--schedule expects a number/,
  );
  assert.match(
    failure(() => pretrainPlan(["--batch-size", "0x20"])),
    /--batch-size expects a number/,
  );
});

test("negative numbers are values, checked against the flag's bounds", () => {
  assert.equal(
    failure(() => parseFlags(["--lr", "-1"], TABLE)),
    "--lr must be > 0, got -1",
  );
  assert.equal(
    failure(() => parseFlags(["-b", "-5"], TABLE)),
    "-b must be >= 1, got -5",
  );
  assert.equal(
    failure(() => pretrainPlan(["--lr", "-1"])),
    "--lr must be > 0, got -1",
  );
  assert.equal(
    failure(() => pretrainPlan(["--moco-m", "1.5"])),
    "--moco-m must be < 1, got 1.5",
  );
  assert.equal(
    failure(() => pretrainPlan(["--epochs", "0"])),
    "--epochs must be > 0, got 0",
  );
  assert.match(
    failure(() => parseFlags(["--lr"], TABLE)),
    /--lr needs a value/,
  );
  assert.match(
    failure(() => parseFlags(["--lr", "--cos"], TABLE)),
    /--lr needs a value, got the option '--cos'/,
  );
});

test("--threads is bounded by the cores, and the message says so", () => {
  const cores = availableParallelism();
  assert.equal(pretrainPlan(["--threads", String(cores)]).config.threads, cores);
  assert.equal(
    failure(() => pretrainPlan(["--threads", String(4 * cores + 1)])),
    `--threads must be <= ${4 * cores} (4 × the ${cores} cores here), got ${4 * cores + 1}`,
  );
});

test("main_moco.py's spellings are aliases; errors name what the user wrote", () => {
  const { config } = pretrainPlan([
    "--learning-rate",
    "0.1",
    "--weight-decay",
    "0.001",
    "-p",
    "5",
    "-b",
    "64",
    "-a",
    "resnet50",
    "--moco_k",
    "1024",
  ]);
  assert.equal(config.lr, 0.1);
  assert.equal(config.wd, 0.001);
  assert.equal(config.printFreq, 5);
  assert.equal(config.batchSize, 64);
  assert.equal(config.arch, "resnet50");
  assert.equal(config.mocoK, 1024);
  assert.equal(
    failure(() => pretrainPlan(["--learning-rate", "0"])),
    "--learning-rate must be > 0, got 0",
  );
  assert.equal(
    failure(() => pretrainPlan(["--weight-decay", "-1"])),
    "--weight-decay must be >= 0, got -1",
  );
});

test("unknown flags and commands get a suggestion", () => {
  assert.match(
    failure(() => pretrainPlan(["--moco-kk", "5"])),
    /unknown option '--moco-kk' \(did you mean --moco-k\?\)/,
  );
  assert.match(
    failure(() => pretrainPlan(["--batchsize", "5"])),
    /did you mean --batch-size\?/,
  );
  assert.match(
    failure(() => pretrainPlan(["--zzzzzzzz"])),
    /^unknown option '--zzzzzzzz' \(see moco pretrain --help\)$/,
  );
  assert.match(
    failure(() => pretrainPlan(["--gpu", "0"])),
    /unknown option '--gpu': use --device cuda:N/,
  );
  assert.match(
    failure(() => pretrainPlan(["--color-jitter", "-1"])),
    /--color-jitter must be >= 0, got -1/,
  );
  assert.deepEqual(pretrainPlan(["--color-jitter", "0.8"]).config.colorJitter, 0.8);
  assert.equal(pretrainPlan(["-j", "3"]).config.workers, 3);
  assert.equal(pretrainPlan(["--workers", "none"]).config.workers, null);
  assert.match(
    failure(() => pretrainPlan(["--workers", "-1"])),
    /--workers must be >= 0, got -1/,
  );
  assert.match(
    failure(() => pretrainPlan(["--world-size", "2"])),
    /--nproc-per-node/,
  );
  const run = moco(["pretrian"]);
  assert.equal(run.status, 2);
  assert.match(run.stderr, /unknown command 'pretrian' \(did you mean 'pretrain'\?\)/);
});

test("a config file may use snake_case (main_moco.py's names) or camelCase", () => {
  const snake = join(root, "snake.yaml");
  writeFileSync(snake, "moco_k: 1024\nlearning_rate: 0.1\nbatch_size: 64\naug_plus: false\n");
  const { config } = pretrainPlan(["--config", snake]);
  assert.deepEqual([config.mocoK, config.lr, config.batchSize, config.augPlus], [1024, 0.1, 64, false]);
  const camel = join(root, "camel.json");
  writeFileSync(camel, JSON.stringify({ mocoK: 2048 }));
  assert.equal(pretrainPlan(["--config", camel]).config.mocoK, 2048);
  const both = join(root, "both.json");
  writeFileSync(both, JSON.stringify({ mocoK: 2048, moco_k: 1024 }));
  assert.match(
    failure(() => pretrainPlan(["--config", both])),
    /'mocoK' and 'moco_k' are the same option/,
  );
  const bad = join(root, "bad.yaml");
  writeFileSync(bad, "moco_m: 1.5\n");
  assert.equal(
    failure(() => pretrainPlan(["--config", bad])),
    `${bad}: moco_m must be < 1, got 1.5`,
  );
});

test("a wrong-typed value in a config file is an error even when a flag overrides it", () => {
  const file = join(root, "typed.yaml");
  writeFileSync(file, "epochs: ten\n");
  assert.equal(
    failure(() => pretrainPlan(["--config", file, "--epochs", "3"])),
    `${file}: epochs must be a number, got "ten"`,
  );
  writeFileSync(file, "moco_t: -1\n");
  assert.match(
    failure(() => pretrainPlan(["--config", file, "--moco-t", "0.2"])),
    /typed\.yaml: moco_t must be > 0, got -1/,
  );
});

test("resolveConfig names the key in messages, not zod's wording", () => {
  assert.equal(
    failure(() => resolveConfig("fashion-mnist", [{ source: "run.json", values: { mocoM: 2 } }])),
    "run.json: mocoM must be < 1, got 2",
  );
  assert.equal(
    failure(() => resolveConfig("fashion-mnist", [{ source: "run.json", values: { dataset: "imagenet" } }])),
    'run.json: dataset must be one of fashion-mnist, mnist, cifar10, cifar100, folder, got "imagenet"',
  );
});

test("--device: cpu, cuda or cuda:N, into the configuration", () => {
  assert.equal(pretrainPlan([]).config.device, "cpu");
  assert.equal(pretrainPlan(["--device", "cuda:1"]).config.device, "cuda:1");
  assert.equal(
    failure(() => pretrainPlan(["--device", "tpu"])),
    "--device must be cpu, cuda or cuda:N, got 'tpu'",
  );
});

test("launcher flags: checked, and stripped from the workers' arguments", () => {
  assert.equal(pretrainPlan(["--nproc-per-node", "2"]).launch.nprocPerNode, 2);
  assert.match(
    failure(() => pretrainPlan(["--nnodes", "2"])),
    /--nnodes needs --nproc-per-node/,
  );
  assert.match(
    failure(() => pretrainPlan(["--master-port", "70000", "--nproc-per-node", "2"])),
    /--master-port must be <= 65535/,
  );
  assert.deepEqual(
    stripLaunchFlags(["--nproc-per-node", "2", "--master-port=1234", "--lr", "-1", "--dist-timeout", "5"]),
    ["--lr", "-1", "--dist-timeout", "5"],
  );
});

test("an impossible --subset is an error naming what the user wrote; a preset's subset is not", async () => {
  const asked = pretrainPlan(["--subset", "60001"]);
  await assert.rejects(checkSubset(asked.config, asked.subsetAskedAs), (error: unknown) => {
    assert.ok(error instanceof UsageError);
    assert.equal(error.message, "--subset 60001 is more than the 60000 training images of fashion-mnist train");
    return true;
  });
  const file = join(root, "subset.yaml");
  writeFileSync(file, "subset: 70000\n");
  const fromFile = pretrainPlan(["--config", file]);
  await assert.rejects(checkSubset(fromFile.config, fromFile.subsetAskedAs), /subset\.yaml: subset 70000 is more than/);
  await checkSubset(pretrainPlan(["--subset", "60000"]).config, "--subset");
  // The fashion-mnist preset's 10000 on a smaller folder means "all of it", as before.
  const preset = pretrainPlan([join(root, "some-folder")]);
  assert.equal(preset.subsetAskedAs, null);
  await checkSubset(preset.config, preset.subsetAskedAs);
  const data = await openPretrainData({ ...resolveConfig("fashion-mnist", []), subset: 70000, knnBank: 100 });
  assert.equal(data.train.length, 60000, "the library takes at most the whole set");
  data.dispose();
});

test("every argument is checked before any work: moco knn --knn-k 0 fails before loading anything", () => {
  const run = moco(["knn", "--pretrained", join(root, "no-such-checkpoint.pth.tar"), "--knn-k", "0"]);
  assert.equal(run.status, 2);
  assert.equal(run.stderr, "moco: --knn-k must be >= 1, got 0\n");
  const subset = moco(["embed", "--pretrained", join(root, "missing.pth"), "--subset", "0"]);
  assert.equal(subset.stderr, "moco: --subset must be >= 1, got 0\n");
});

test("--help on every command and moco help COMMAND; each default shown once", async () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (text: string) => lines.push(text);
  try {
    assert.equal(await runPretrain(["--help"]), 0);
  } finally {
    console.log = log;
  }
  const helps = {
    pretrain: lines.join("\n"),
    DOCTOR_HELP,
    EMBED_HELP,
    EXPORT_HELP,
    KNN_HELP,
    LINCLS_HELP,
    SEARCH_HELP,
  };
  for (const [name, help] of Object.entries(helps)) {
    for (const line of help.split("\n")) {
      assert.ok((line.match(/default/g) ?? []).length <= 1, `${name}: one default per line: ${line}`);
      assert.doesNotMatch(line, /--[a-z-]+ N\b.*\b(FLOAT|NUMBER)\b/, `${name}: one placeholder style`);
    }
  }
  assert.match(helps.pretrain, /--lr X .*\(also --learning-rate\) \(default: 0\.03\)/);
  assert.match(helps.pretrain, /--threads N .*\(default: none\)/);
  const doctor = moco(["doctor", "--help"]);
  assert.equal(doctor.status, 0, doctor.stderr);
  assert.match(doctor.stdout, /^Usage: moco doctor/);
  const viaHelp = moco(["help", "knn"]);
  assert.equal(viaHelp.status, 0);
  assert.equal(viaHelp.stdout.trim(), KNN_HELP.trim());
});

test("the Fashion-MNIST presets: the default job's recipe and the long run's (docs/recipe.md)", () => {
  const short = pretrainPlan([]).config;
  const pick = (c: typeof short) => ({
    subset: c.subset,
    epochs: c.epochs,
    batchSize: c.batchSize,
    mocoK: c.mocoK,
    mocoT: c.mocoT,
    bnSplits: c.bnSplits,
    cropMinScale: c.cropMinScale,
    colorJitter: c.colorJitter,
    knnEvery: c.knnEvery,
    knnBank: c.knnBank,
  });
  assert.deepEqual(pick(short), {
    subset: 10000,
    epochs: 30,
    batchSize: 128,
    mocoK: 4096,
    mocoT: 0.07,
    bnSplits: 4,
    cropMinScale: 0.8,
    colorJitter: 1,
    knnEvery: 5,
    knnBank: 10000,
  });
  const long = pretrainPlan(["--preset", "fashion-mnist-long"]).config;
  assert.deepEqual(pick(long), {
    ...pick(short),
    subset: null,
    epochs: 80,
    mocoK: 16384,
    cropMinScale: 0.5,
    knnEvery: 10,
    knnBank: null,
  });
  // The queue holds whole batches and fewer keys than the 60 000 images (else an image is its own negative).
  assert.equal(long.mocoK % long.batchSize, 0);
  assert.ok(long.mocoK < 60000);
  // The official presets keep the official jitter.
  for (const preset of ["moco-v1", "moco-v2", "cifar"]) {
    assert.equal(pretrainPlan(["--preset", preset]).config.colorJitter, 0.4, preset);
  }
});
