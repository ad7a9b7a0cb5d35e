// The `moco` command as a user meets it: exit codes, messages, help, Ctrl-C and resume.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

const root = mkdtempSync(join(tmpdir(), "moco-cli-"));
after(() => rmSync(root, { recursive: true, force: true }));

const SMALL = [
  "--subset",
  "256",
  "--width",
  "4",
  "--batch-size",
  "32",
  "--bn-splits",
  "2",
  "--moco-k",
  "64",
  "--moco-dim",
  "16",
  "--knn-bank",
  "256",
  "--knn-test",
  "128",
  "--threads",
  "1",
  "--print-freq",
  "1",
];

function moco(args: string[]) {
  return spawnSync(process.execPath, ["bin/moco.js", ...args], { encoding: "utf8", timeout: 180_000 });
}

test("version and help", () => {
  const version = moco(["--version"]);
  assert.equal(version.status, 0);
  assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  const help = moco(["pretrain", "--help"]);
  assert.equal(help.status, 0);
  for (const flag of [
    "--arch",
    "--epochs",
    "--batch-size",
    "--lr",
    "--schedule",
    "--momentum",
    "--wd",
    "--resume",
    "--seed",
    "--moco-dim",
    "--moco-k",
    "--moco-m",
    "--moco-t",
    "--[no-]mlp",
    "--[no-]aug-plus",
    "--color-jitter",
    "--[no-]cos",
    "--bn-splits",
    "--[no-]symmetric",
    "--knn-k",
    "--knn-t",
    "--dataset",
    "--out",
    "--width",
    "--[no-]cifar-stem",
    "--subset",
    "--max-steps",
    "--threads",
    "--config",
    "--preset",
  ]) {
    assert.ok(help.stdout.includes(flag), `help lists ${flag}`);
  }
  assert.match(help.stdout, /--moco-k N .*\(default: 4096\)/);
  assert.match(moco(["pretrain", "--help", "--preset", "moco-v2"]).stdout, /--moco-k N .*\(default: 65536\)/);
});

test("bad input: clear message and a non-zero exit", () => {
  const cases: [string[], RegExp, number][] = [
    [["frob"], /unknown command 'frob'/, 2],
    [["pretrain", "--epochs", "abc"], /--epochs expects a number, got 'abc'/, 2],
    [["pretrain", "--moco-m", "1.5"], /--moco-m must be < 1, got 1\.5/, 2],
    [["pretrain", "--moco-t", "0"], /--moco-t must be > 0, got 0/, 2],
    [["pretrain", "--preset", "nope"], /--preset must be one of .*, got 'nope'/, 2],
    [["pretrain", "--bogus"], /unknown option '--bogus'/, 2],
    [["pretrain", ...SMALL, "--moco-k", "100"], /K \(100\) must be a multiple of the batch size \(32\)/, 2],
    [["pretrain", join(root, "no-such-folder")], /no-such-folder/, 1],
  ];
  for (const [args, message, code] of cases) {
    const run = moco(args);
    assert.equal(run.status, code, `${args.join(" ")}: ${run.stderr}`);
    assert.match(run.stderr, message, args.join(" "));
    assert.doesNotMatch(run.stderr, /^\s+at /m, "no stack trace for user errors");
  }
  const badConfig = join(root, "bad.yaml");
  writeFileSync(badConfig, "mocoK: 4096\nmocoKK: 5\n");
  const config = moco(["pretrain", "--config", badConfig]);
  assert.equal(config.status, 2);
  assert.match(config.stderr, /bad\.yaml: unknown option 'mocoKK'/);
  const notCheckpoint = join(root, "not.pth.tar");
  writeFileSync(notCheckpoint, "hello");
  const resume = moco(["pretrain", "--resume", notCheckpoint]);
  assert.equal(resume.status, 1);
  assert.match(resume.stderr, /not\.pth\.tar/);
});

test("a config file is read and flags override it", () => {
  const file = join(root, "run.json");
  const out = join(root, "from-config");
  writeFileSync(file, JSON.stringify({ epochs: 7, mocoT: 0.3, out }));
  const run = moco(["pretrain", "--config", file, ...SMALL, "--max-steps", "2", "--epochs", "1"]);
  assert.equal(run.status, 0, run.stderr);
  const config = JSON.parse(spawnSync("cat", [join(out, "config.json")], { encoding: "utf8" }).stdout) as Record<
    string,
    unknown
  >;
  assert.equal(config["mocoT"], 0.3);
  assert.equal(config["epochs"], 1);
  assert.match(
    run.stdout,
    /kNN top-1 — trained encoder: [\d.]+% \| same network at random init: [\d.]+% \| raw pixels: [\d.]+%/,
  );
});

test("Ctrl-C writes a checkpoint, exits non-zero, and --resume finishes the run", async () => {
  const out = join(root, "interrupted");
  const child = spawn(process.execPath, ["bin/moco.js", "pretrain", ...SMALL, "--epochs", "3", "--out", out]);
  let stderr = "";
  let signalled = false;
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
    if (!signalled && /step 2\/8/.test(stderr)) {
      signalled = true;
      child.kill("SIGINT");
    }
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /stopping after this step and writing a checkpoint/);
  const checkpoint = join(out, "checkpoint.pth.tar");
  assert.ok(existsSync(checkpoint));
  const resumed = moco(["pretrain", "--resume", checkpoint]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed .* at epoch 0, step [2-4]/);
  assert.match(resumed.stdout, /24 steps/);
});
