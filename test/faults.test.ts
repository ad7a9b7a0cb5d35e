// Faults (issue #11): kill -9 during training and during a save, a full disk, a busy master port,
// a worker killed by a signal. Each ends with the checkpoint intact (read by Python's torch.load),
// --resume continuing, and a message that names what failed. Bounded to seconds per test.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";

import { signalStatus, describeExit } from "../src/cli/launch.js";
import { DistributedError, ProcessGroup } from "../src/dist/process-group.js";
import { removeStaleTemporaries } from "../src/util/stale-temporaries.js";
import { collectTensors } from "../src/encoder/sources.js";
import { load, ones, save, zeros, type Saveable, type Tensor } from "../src/torch/index.js";
import { ROOT } from "./helpers/dist.js";
import { PYTHON } from "./helpers/python.js";

const root = mkdtempSync(join(tmpdir(), "moco-faults-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** A deterministic stream of "random" moments, so that a failure can be replayed. */
function moments(seed: number, count: number, min: number, max: number): number[] {
  let state = seed >>> 0;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return min + (state / 2 ** 32) * (max - min);
  });
}

/** Python's torch.load on each path (one Python process): the checkpoints' epochs. */
function pythonEpochs(...paths: string[]): string[] {
  const code = `import torch, sys\nfor p in sys.argv[1:]: print(torch.load(p)["epoch"])`;
  const run = spawnSync(PYTHON, ["-c", code, ...paths], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim().split("\n");
}
const pythonEpoch = (path: string): string => pythonEpochs(path)[0]!;

/** A copy of `path` as it is now, for Python to judge later with the others. */
function snapshot(path: string, name: string): string {
  const copy = join(root, name);
  copyFileSync(path, copy);
  return copy;
}

function temporariesOf(dir: string): string[] {
  return readdirSync(dir).filter((name) => name.includes(".tmp-"));
}

describe("kill -9 during a save", () => {
  it("at several random moments: the previous checkpoint loads in Python, the next save or resume removes the leftovers", async () => {
    const dir = join(root, "save");
    mkdirSync(dir);
    const path = join(dir, "checkpoint.pth.tar");
    save({ epoch: 1, state_dict: { w: ones([4]) } }, path);
    // A child saves a 64 MB value over the same path, slowly enough to be caught mid-write.
    const script = [
      `import { save, zeros } from ${JSON.stringify(join(ROOT, "src/torch/index.ts"))};`,
      `const big = zeros([16, 1024, 1024]);`,
      `process.stdout.write("ready\\n");`,
      `for (;;) save({ epoch: 2, state_dict: { w: big } }, ${JSON.stringify(path)});`,
    ].join("\n");
    const copies: string[] = [];
    for (const [i, delay] of moments(11, 3, 30, 400).entries()) {
      const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT });
      await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
      await new Promise((resolve) => setTimeout(resolve, delay));
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("close", resolve));
      copies.push(snapshot(path, `after-kill-${i}.pt`));
    }
    // Whatever moment it died at, the checkpoint is a whole one (the first or a later save).
    for (const epoch of pythonEpochs(...copies)) assert.match(epoch, /^[12]$/);
    const left = temporariesOf(dir);
    assert.ok(left.length >= 1, "no kill landed during a write: the test proves nothing");
    assert.deepEqual(removeStaleTemporaries(path).length, left.length);
    assert.deepEqual(temporariesOf(dir), []);
  });

  it("a temporary file of a live process is left alone", () => {
    const path = join(root, "live.pt");
    writeFileSync(`${path}.tmp-${process.pid}`, "writing");
    writeFileSync(`${path}.tmp-1-0`, "init's, alive"); // pid 1 always runs
    assert.deepEqual(removeStaleTemporaries(path), []);
    assert.ok(existsSync(`${path}.tmp-${process.pid}`));
  });
});

describe("kill -9 during training", () => {
  it("the checkpoint loads in Python, stale files go, and --resume continues to the end", async () => {
    const out = join(root, "train");
    const args = [
      ...["pretrain", "--subset", "256", "--width", "4", "--batch-size", "32", "--bn-splits", "2"],
      ...["--moco-k", "64", "--moco-dim", "16", "--knn-every", "0", "--knn-bank", "256", "--knn-test", "128"],
      ...["--threads", "1", "--print-freq", "1", "--out", out],
    ];
    const checkpoint = join(out, "checkpoint.pth.tar");
    const child = spawn(process.execPath, ["bin/moco.js", ...args, "--epochs", "30"], { cwd: ROOT, stdio: "ignore" });
    const started = Date.now();
    while (!existsSync(checkpoint) && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 50));
    // A random moment after the first checkpoint: mid-step, mid-save or between them.
    await new Promise((resolve) => setTimeout(resolve, moments(5, 1, 0, 1500)[0]));
    child.kill("SIGKILL");
    await new Promise((resolve) => child.once("close", resolve));
    const killed = snapshot(checkpoint, "killed-training.pt");
    const saved = load(checkpoint) as { epoch: number; state_dict: Map<string, Tensor> };
    const epoch = saved.epoch;
    for (const t of collectTensors(saved as unknown as Saveable)) t.dispose();
    assert.ok(epoch >= 1);
    writeFileSync(`${checkpoint}.tmp-999999999`, "left by a killed save"); // no such pid
    const resumed = spawnSync(
      process.execPath,
      ["bin/moco.js", ...args, "--resume", checkpoint, "--epochs", String(epoch + 1)],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
      },
    );
    assert.equal(resumed.status, 0, resumed.stderr.slice(-2000));
    assert.match(resumed.stderr, new RegExp(`resumed .* at epoch ${epoch}`));
    assert.deepEqual(pythonEpochs(killed, checkpoint), [String(epoch), String(epoch + 1)]);
    assert.deepEqual(temporariesOf(out), []);
  });
});

describe("a full disk", () => {
  it("leaves the previous checkpoint intact and names the file", (t) => {
    const mountPoint = join(root, "tmpfs");
    mkdirSync(mountPoint);
    const mount = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4m", "tmpfs", mountPoint], { encoding: "utf8" });
    if (mount.status !== 0) {
      t.skip(`cannot mount a small tmpfs here (${(mount.stderr || mount.error?.message || "").trim()})`);
      return;
    }
    try {
      const path = join(mountPoint, "checkpoint.pth.tar");
      save({ epoch: 1, w: ones([1000]) }, path);
      const big: Tensor = zeros([2, 1024, 1024]); // 8 MB: more than the 4 MB disk
      assert.throws(
        () => save({ epoch: 2, w: big }, path),
        /save: cannot write .*tmpfs\/checkpoint\.pth\.tar: .*ENOSPC/,
      );
      big.dispose();
      const kept = load(path) as { epoch: number; w: Tensor };
      assert.equal(kept.epoch, 1);
      kept.w.dispose();
      assert.equal(pythonEpoch(path), "1");
      assert.deepEqual(temporariesOf(mountPoint), []);
    } finally {
      spawnSync("umount", [mountPoint]);
    }
  });
});

describe("distributed start and end", () => {
  it("a master port in use is reported at once, not after the timeout", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      const started = Date.now();
      await assert.rejects(
        ProcessGroup.create({ masterAddr: "127.0.0.1", masterPort: port, rank: 0, worldSize: 2, timeoutMs: 30_000 }),
        (e: unknown) => e instanceof DistributedError && new RegExp(`port ${port} is already in use`).test(e.message),
      );
      assert.ok(Date.now() - started < 10_000);
      const launcher = spawnSync(
        process.execPath,
        ["bin/moco.js", "pretrain", "--nproc-per-node", "2", "--master-port", String(port), "--dist-timeout", "60"],
        { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
      );
      assert.equal(launcher.status, 1, launcher.stderr);
      assert.match(launcher.stderr, new RegExp(`--master-port ${port} is already in use`));
    } finally {
      server.close();
    }
  });

  it("a worker killed by a signal is reported as killed, with the shell's status", () => {
    assert.equal(signalStatus("SIGKILL"), 137);
    assert.equal(signalStatus("SIGINT"), 130);
    assert.equal(describeExit({ rank: 1, code: 137, signal: "SIGKILL" }), "rank 1 was killed by SIGKILL");
    assert.equal(describeExit({ rank: 0, code: 2 }), "rank 0 exited with status 2");
  });
});
