// The one error hierarchy: every error class the package exports is a MocoError with its own name
// and a stable code; native errors arrive as TorchError instances; the CLI maps classes to exit codes.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { exitCodeFor, messageFor } from "../src/cli/errors.js";
import { explainFailure } from "../src/cli/distributed.js";
import type { ProcessGroup } from "../src/dist/index.js";
import * as lib from "../src/index.js";
import { native } from "../src/torch/native.js";

const root = mkdtempSync(join(tmpdir(), "moco-errors-"));
after(() => rmSync(root, { recursive: true, force: true }));

type AnyClass = new (...args: never[]) => Error;

/** Each exported error class, an instance made with typical arguments, and its code. */
const INSTANCES: Record<string, [Error, string]> = {
  MocoError: [new lib.MocoError("ERR_X", "m"), "ERR_X"],
  TorchError: [new lib.TorchError("mm", "mm: bad"), "ERR_TORCH"],
  UsageError: [new lib.UsageError("m"), "ERR_USAGE"],
  ConfigError: [new lib.ConfigError("m"), "ERR_CONFIG"],
  CheckpointError: [new lib.CheckpointError("m"), "ERR_CHECKPOINT"],
  CheckpointFormatError: [new lib.CheckpointFormatError("m"), "ERR_CHECKPOINT_FORMAT"],
  LayoutError: [new lib.LayoutError("m"), "ERR_LAYOUT"],
  IndexError: [new lib.IndexError("m"), "ERR_INDEX"],
  DatasetError: [new lib.DatasetError("NOT_FOUND", "/x", "m"), "NOT_FOUND"],
  DatasetNameError: [new lib.DatasetNameError("m"), "ERR_DATASET_NAME"],
  DistributedError: [new lib.DistributedError("m"), "ERR_DISTRIBUTED"],
  DistEnvError: [new lib.DistEnvError("m"), "ERR_DIST_ENV"],
  MoCoSettingsError: [new lib.MoCoSettingsError("m"), "ERR_MOCO_SETTINGS"],
  NonFiniteLossError: [new lib.NonFiniteLossError(NaN, "m"), "ERR_NON_FINITE_LOSS"],
  StateDictError: [new lib.StateDictError("net", ["a"], [], []), "ERR_STATE_DICT"],
  TruncatedPickleError: [new lib.TruncatedPickleError("m"), "ERR_TRUNCATED_PICKLE"],
  ZipFormatError: [new lib.ZipFormatError("m"), "ERR_ZIP_FORMAT"],
  AutocastError: [new lib.AutocastError("m"), "ERR_AUTOCAST"],
  PrecisionError: [new lib.PrecisionError("m"), "ERR_PRECISION"],
  CyclicValueError: [new lib.CyclicValueError("m"), "ERR_CYCLIC_VALUE"],
  EncoderInputError: [new lib.EncoderInputError("m"), "ERR_ENCODER_INPUT"],
  ReportInputError: [new lib.ReportInputError("m"), "ERR_REPORT_INPUT"],
  OnnxFormatError: [new lib.OnnxFormatError("m"), "ERR_ONNX_FORMAT"],
  Detectron2ExportError: [new lib.Detectron2ExportError("m"), "ERR_DETECTRON2_EXPORT"],
};

test("every exported error class is a MocoError with its own name and a code", () => {
  const exported = Object.entries(lib as Record<string, unknown>).filter(
    (entry): entry is [string, AnyClass] =>
      typeof entry[1] === "function" && (entry[1] === Error || entry[1].prototype instanceof Error),
  );
  assert.deepEqual(exported.map(([name]) => name).sort(), Object.keys(INSTANCES).sort(), "the exported error classes");
  for (const [name, cls] of exported) {
    const [instance, code] = INSTANCES[name] as [Error, string];
    assert.ok(instance instanceof cls, name);
    assert.ok(instance instanceof lib.MocoError, `${name} extends MocoError`);
    assert.equal(instance.name, name, `${name}.name`);
    assert.equal((instance as lib.MocoError).code, code, `${name}.code`);
    assert.match(String(instance), new RegExp(`^${name}: `), "what a stack trace shows");
  }
});

test("a native error is a TorchError with the op and ERR_TORCH", () => {
  const error = (() => {
    try {
      lib.randn([2, 3]).mm(lib.randn([4, 5]));
    } catch (caught) {
      return caught;
    }
    return null;
  })();
  assert.ok(error instanceof lib.TorchError, "instanceof TorchError");
  assert.ok(error instanceof lib.MocoError, "instanceof MocoError");
  assert.equal(error.op, "mm");
  assert.equal(error.code, "ERR_TORCH");
  assert.equal(error.name, "TorchError");
  assert.match(error.message, /^mm: mat1 and mat2 shapes cannot be multiplied/);
});

test("a native asynchronous error (distInit's rejection) is a TorchError too", async () => {
  // A port that is open but answers nothing a TCPStore understands: rank 1 gives up after its timeout.
  const server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  try {
    await assert.rejects(native.distInit("127.0.0.1", port, 1, 2, 300, "gloo", "default", ""), (error: unknown) => {
      assert.ok(error instanceof lib.TorchError, `a TorchError, got ${String(error)}`);
      assert.equal(error.op, "distInit");
      assert.match(error.message, /^distInit: rank 1 of 2 could not meet the other ranks/);
      return true;
    });
  } finally {
    server.close();
  }
});

test("the CLI's exit status by class: 2 for wrong input, 1 for a failed run", () => {
  for (const name of ["UsageError", "ConfigError", "MoCoSettingsError", "DatasetNameError"])
    assert.equal(exitCodeFor(INSTANCES[name]?.[0]), 2, name);
  for (const name of [
    "TorchError",
    "DatasetError",
    "CheckpointError",
    "DistributedError",
    "IndexError",
    "StateDictError",
  ])
    assert.equal(exitCodeFor(INSTANCES[name]?.[0]), 1, name);
  assert.equal(exitCodeFor(new Error("boom")), 1);
  assert.equal(exitCodeFor("a string"), 1);
  assert.equal(messageFor(new lib.ConfigError("--lr must be > 0, got -1")), "--lr must be > 0, got -1");
  assert.equal(messageFor(new TypeError("bad")), "TypeError: bad");
});

test("a collective's TorchError becomes a DistributedError; look-alikes are not recognised", () => {
  const group = { rank: 1, worldSize: 2 } as ProcessGroup;
  const lost = explainFailure(new lib.TorchError("distAllReduce", "distAllReduce: timed out"), group, "ckpt.pth.tar");
  assert.ok(lost instanceof lib.DistributedError);
  assert.match(lost.message, /rank 1 of 2 lost the other workers .*distAllReduce: timed out/s);
  assert.match(lost.message, /--resume ckpt\.pth\.tar/);
  const lookAlike = Object.assign(new Error("x"), { code: "ERR_TORCH", op: "distBarrier" });
  assert.equal(explainFailure(lookAlike, group, "c"), lookAlike, "plain Errors with a code are not duck-typed");
  const other = new lib.TorchError("mm", "mm: bad");
  assert.equal(explainFailure(other, group, "c"), other, "only collectives' errors");
});

test("readCheckpoint validates the saved configuration with its schema", () => {
  const config = { ...lib.resolveConfig("fashion-mnist", []), mocoM: 5 };
  const path = join(root, "bad-config.pth.tar");
  lib.writeCheckpoint(path, {
    epoch: 0,
    arch: "resnet18",
    state_dict: new Map(),
    optimizer: { state: new Map(), param_groups: [] } as unknown as lib.SGDStateDict,
    moco_ts: { format: 1, config, step: 0, epochStep: 0, torchRng: lib.zeros([4]), augmentRng: [1, 2, 3, 4] },
  });
  assert.throws(
    () => lib.readCheckpoint(path),
    (error: unknown) =>
      error instanceof lib.CheckpointError &&
      /bad-config\.pth\.tar: the saved configuration .*mocoM/.test(error.message),
  );
});
