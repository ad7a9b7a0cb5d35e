// Checkpoints in torch.save's legacy format (before torch 1.6; what the released MoCo checkpoints
// use), written by Python's own torch.save (run through helpers/python.ts's PYTHON, torch 1.13) or laid out
// by hand by test/py/legacy_check.py, loaded here with exact values, shared storages kept, and bad
// files refused with errors that name them.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import { Tensor, liveTensors } from "../src/torch/index.js";
import { load, loadFromBuffer, type Saveable } from "../src/torch/serialize/index.js";
import { assertMatches, disposeAll, hex, type Neutral, type NeutralTensor } from "./helpers/neutral.js";
import { pythonScript } from "./helpers/python-script.js";

const dir = mkdtempSync(join(tmpdir(), "moco-legacy-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const python = pythonScript("legacy_check.py");

const file = (name: string): string => join(dir, name);
const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, "utf8")) as T;

/** Runs `make` once, on first use: each Python start costs seconds here. */
function once<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}

/** The released MoCo checkpoints' layout: epoch, arch, state_dict (module.encoder_q.*, ...), optimizer. */
const mocoCheckpoint = once((): { path: string; expected: Neutral } => {
  const path = file("moco_v2_800ep_pretrain.pth.tar");
  python("moco", path, file("moco.json"));
  return { path, expected: readJson<Neutral>(file("moco.json")) };
});

/** Specs for craft() in legacy_check.py: a root storage 0..9 and tensors over it, perhaps broken. */
const CRAFTED: Record<string, object> = {
  "storage-views": {},
  "bad-magic": { magic: 12345 },
  "bad-version": { version: 1000 },
  "big-endian": { little_endian: false },
  "wrong-count": { count_delta: 1 },
  "unlisted-storage": { keys: [] },
  "extra-storage": { keys: ["ghost", "root"] },
  "trailing-bytes": { trailing: 3 },
  "view-past-root": { tensors: [[["view", 8, 6], 0, [6], [1]]] },
  "tensor-past-view": { tensors: [[["view", 2, 3], 1, [3], [1]]] },
  "tensor-past-storage": { tensors: [[null, 0, [11], [1]]] },
};

/** Each crafted file's path and what Python's torch.load made of it. */
const crafted = once((): Map<string, { path: string; torch: Neutral | { error: string } }> => {
  const paths = Object.fromEntries(Object.entries(CRAFTED).map(([name, spec]) => [file(`${name}.pt`), spec]));
  const results = JSON.parse(python("craft", JSON.stringify(paths))) as Record<string, Neutral | { error: string }>;
  return new Map(
    Object.keys(CRAFTED).map((name) => [name, { path: file(`${name}.pt`), torch: results[file(`${name}.pt`)]! }]),
  );
});

describe("legacy checkpoints written by Python's torch.save", () => {
  for (const protocol of ["2", "4"]) {
    test(`every dtype, view and container loads exactly (pickle protocol ${protocol})`, () => {
      const baseline = liveTensors();
      const ckpt = file(`reference-p${protocol}.pt`);
      python("reference", ckpt, file(`reference-p${protocol}.json`), protocol);
      const expected = readJson<Neutral>(file(`reference-p${protocol}.json`));
      const loaded = load(ckpt);
      try {
        assertMatches(loaded, expected, "value", new Map());
        const value = loaded as Record<string, Saveable>;
        const views = value.views as Tensor[];
        assert.equal(new Set(views.map((v) => v.storageId)).size, 1, "views share one storage");
        // A write through one view shows in the others, as in Python.
        views[0]!.mul_(2);
        assert.deepEqual(views[1]!.toArray(), [8, 10, 12, 14]);
        const tensors = value.tensors as Record<string, Tensor>;
        assert.equal(tensors.transposed!.isContiguous, false);
        assert.equal(tensors.parameter!.requiresGrad, true);
        assert.deepEqual(Object.keys(value.state_dict as object).slice(0, 2), ["0.weight", "0.bias"]);
        assert.ok((value.optimizer as Record<string, Saveable>).state instanceof Map);
      } finally {
        disposeAll(loaded);
      }
      assert.equal(liveTensors(), baseline, "every loaded tensor was disposed; nothing else is left");
    });
  }

  test("an official-MoCo-shaped checkpoint (moco_v2_800ep_pretrain.pth.tar layout)", () => {
    const baseline = liveTensors();
    const { path, expected } = mocoCheckpoint();
    const loaded = load(path) as Record<string, Saveable>;
    try {
      assertMatches(loaded, expected, "checkpoint", new Map());
      assert.deepEqual(Object.keys(loaded), ["epoch", "arch", "state_dict", "optimizer"]);
      assert.equal(loaded.epoch, 800);
      assert.equal(loaded.arch, "resnet50");
      const stateDict = loaded.state_dict as Record<string, Tensor>;
      const keys = Object.keys(stateDict);
      // A module's own buffers come before its children's, as in the official checkpoints.
      assert.deepEqual(keys.slice(0, 3), ["module.queue", "module.queue_ptr", "module.encoder_q.conv1.weight"]);
      assert.ok(keys.includes("module.encoder_k.layer1.0.bn1.running_var"));
      assert.equal(keys.at(-1), "module.encoder_k.fc.2.bias");
      assert.deepEqual([...stateDict["module.queue"]!.shape], [16, 32]);
      assert.equal(stateDict["module.queue_ptr"]!.dtype, "int64");
      assert.deepEqual(stateDict["module.queue_ptr"]!.toArray(), [4]);
      assert.equal(stateDict["module.encoder_q.bn1.num_batches_tracked"]!.dtype, "int64");
      assert.equal(stateDict["module.encoder_q.conv1.weight"]!.requiresGrad, false);
      assert.equal(stateDict["module.encoder_q.conv1.weight"]!.device, "cpu", "saved from cuda:0, loaded on the CPU");
      const optimizer = loaded.optimizer as { state: Map<number, Saveable>; param_groups: Record<string, Saveable>[] };
      assert.ok(optimizer.state instanceof Map);
      assert.equal(optimizer.param_groups[0]!.lr, 0.03);
      assert.equal(optimizer.param_groups[0]!.momentum, 0.9);
    } finally {
      disposeAll(loaded);
    }
    assert.equal(liveTensors(), baseline);
  });

  test("loadFromBuffer reads the legacy format too", () => {
    const ckpt = file("reference-p2.pt");
    if (!existsSync(ckpt)) python("reference", ckpt, file("reference-p2.json"), "2");
    const loaded = loadFromBuffer(readFileSync(ckpt), "reference-p2.pt");
    try {
      assertMatches(loaded, readJson<Neutral>(file("reference-p2.json")), "value", new Map());
    } finally {
      disposeAll(loaded);
    }
  });

  test("old storage views (view metadata in the persistent id) become views of their root storage", () => {
    const { path, torch } = crafted().get("storage-views")!;
    assert.ok(!("error" in (torch as object)), `torch.load failed: ${JSON.stringify(torch)}`);
    const expected = (torch as { __dict__: [string, { __tensor__: NeutralTensor }][] }).__dict__;
    const loaded = load(path) as Record<string, Tensor>;
    try {
      // Offsets and storage identity differ by design: ours are relative to the root storage,
      // torch's to the view, which it keeps as a storage of its own. Values and layout must agree.
      for (const [name, { __tensor__: e }] of expected) {
        const t = loaded[name]!;
        assert.deepEqual([...t.shape], e.shape, `${name}: shape`);
        assert.deepEqual([...t.strides], e.stride, `${name}: stride`);
        assert.equal(hex(t.toBytes()), e.hex, `${name}: values`);
      }
      assert.deepEqual(loaded.t0!.toArray(), [3, 4, 5, 6]);
      assert.equal(loaded.t0!.storageOffset, 3);
      assert.equal(new Set(Object.values(loaded).map((t) => t.storageId)).size, 1, "one root storage");
    } finally {
      disposeAll(loaded);
    }
  });
});

describe("bad legacy files fail with a clear error naming the file", () => {
  test("truncated anywhere: in a pickle, in an element count, in the data", () => {
    const baseline = liveTensors();
    const source = mocoCheckpoint().path;
    const full = readFileSync(source);
    const layout = JSON.parse(python("layout", source)) as Record<"object" | "keys" | "data" | "size", number>;
    const cuts = [
      1,
      12,
      layout.object - 1,
      layout.object,
      layout.object + 100,
      layout.keys - 1,
      layout.keys,
      layout.data - 1,
      layout.data,
      layout.data + 4,
      layout.data + 8,
      layout.data + 20,
      Math.floor((layout.data + layout.size) / 2),
      layout.size - 1,
    ];
    for (const length of cuts) {
      const path = file(`cut-${length}.pt`);
      writeFileSync(path, full.subarray(0, length));
      assert.throws(
        () => load(path),
        new RegExp(`cut-${length}\\.pt: truncated`),
        `cut at ${length} of ${layout.size}`,
      );
    }
    assert.equal(liveTensors(), baseline);
  });

  test("a pickle that calls os.system is refused and nothing runs", () => {
    const baseline = liveTensors();
    const path = file("malicious.pt");
    const marker = file("pwned");
    python("malicious", path, marker);
    assert.throws(
      () => load(path),
      /malicious\.pt: refusing to load '(os|posix)\.system': only tensors and plain containers are allowed/,
    );
    assert.equal(existsSync(marker), false, "the payload did not run");
    assert.equal(liveTensors(), baseline);
  });

  const broken: [string, RegExp][] = [
    ["bad-magic", /bad-magic\.pt: not a torch\.save file/],
    ["bad-version", /bad-version\.pt: legacy torch\.save protocol version 1000 is not supported/],
    ["big-endian", /big-endian\.pt: .*written on a big-endian machine/],
    ["wrong-count", /wrong-count\.pt: storage 'root' holds 11 elements .* saved with 10/],
    ["unlisted-storage", /unlisted-storage\.pt: storage 'root' is used by a tensor but its data is missing/],
    ["extra-storage", /extra-storage\.pt: .*storage 'ghost' is listed but no tensor uses it/],
    ["trailing-bytes", /trailing-bytes\.pt: .*3 unexpected bytes after the last storage/],
    [
      "view-past-root",
      /view-past-root\.pt: storage view 'view' \(elements 8\.\.14\) reaches past storage 'root', which has 10/,
    ],
    ["tensor-past-view", /tensor-past-view\.pt: a tensor .* reaches element 3 of storage view 'view', which has 3/],
    ["tensor-past-storage", /tensor-past-storage\.pt: a tensor .* reaches element 10 of storage 'root', which has 10/],
  ];
  for (const [name, pattern] of broken) {
    test(name, () => {
      const baseline = liveTensors();
      assert.throws(() => load(crafted().get(name)!.path), pattern);
      assert.equal(liveTensors(), baseline);
    });
  }
});
