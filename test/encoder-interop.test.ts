// Interop with Python PyTorch, run by the test: official MoCo checkpoints (zip and legacy formats,
// v1 and v2 heads) load here and give torchvision's features; our pretraining checkpoint passes
// main_lincls.py's loading logic; our torchvision export loads strictly into torchvision.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import sharp from "sharp";

import { embed, loadEncoder } from "../src/encoder/index.js";
import { exportBackbone } from "../src/export/backbone.js";
import { liveTensors, load, manualSeed, noGrad, rand, save, scope, type Tensor } from "../src/torch/index.js";
import { PYTHON } from "./helpers/python.js";

const root = mkdtempSync(join(tmpdir(), "moco-interop-"));
after(() => rmSync(root, { recursive: true, force: true }));

function python(code: string, ...args: string[]): string {
  const result = spawnSync(PYTHON, ["-c", code, ...args], { encoding: "utf8", timeout: 300_000 });
  if (result.status !== 0) throw new Error(`python failed (${result.status}):\n${result.stderr}`);
  return result.stdout;
}

/** max |a − b| / max |b|: one relative figure for a whole feature tensor. */
function relativeError(ours: Tensor, theirs: Tensor): number {
  return scope(() => ours.sub(theirs).abs().max().item() / Math.max(theirs.abs().max().item(), 1e-12));
}

// Writes an official-layout checkpoint (main_moco.py's save_checkpoint with DDP's `module.` prefix)
// of a torchvision ResNet with random BN statistics, and torchvision's own features for `inputs`.
const WRITE_OFFICIAL = `
import sys, collections, torch, torchvision
arch, head, fmt, path, inputs_path, out_path = sys.argv[1:7]
torch.manual_seed(7)
dim = 128
q = torchvision.models.__dict__[arch](num_classes=dim)
if head == "mlp":
    d = q.fc.weight.shape[1]
    q.fc = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), q.fc)
with torch.no_grad():
    for m in q.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2); m.running_var.uniform_(0.5, 1.5)
            m.weight.uniform_(0.5, 1.5); m.bias.uniform_(-0.2, 0.2)
k = torchvision.models.__dict__[arch](num_classes=dim)
if head == "mlp":
    k.fc = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), k.fc)
state = collections.OrderedDict()
for name, t in q.state_dict().items(): state["module.encoder_q." + name] = t
for name, t in k.state_dict().items(): state["module.encoder_k." + name] = t
state["module.queue"] = torch.nn.functional.normalize(torch.randn(dim, 64), dim=0)
state["module.queue_ptr"] = torch.zeros(1, dtype=torch.long)
opt = torch.optim.SGD(q.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
ckpt = {"epoch": 200, "arch": arch, "state_dict": state, "optimizer": opt.state_dict()}
torch.save(ckpt, path, _use_new_zipfile_serialization=(fmt == "zip"))
x = torch.load(inputs_path)
q.eval()
with torch.no_grad():
    out_head = q(x)
    q.fc = torch.nn.Identity()
    out_backbone = q(x)
torch.save({"backbone": out_backbone, "head": out_head}, out_path)
`;

describe("official MoCo checkpoints written by Python load here", () => {
  const cases = [
    { arch: "resnet18", head: "linear", format: "zip" },
    { arch: "resnet18", head: "linear", format: "legacy" },
    { arch: "resnet18", head: "mlp", format: "zip" },
    { arch: "resnet50", head: "mlp", format: "legacy" },
  ] as const;
  const inputsPath = join(root, "inputs.pt");
  before(() => {
    manualSeed(3);
    const x = rand([3, 3, 64, 64]);
    save(x, inputsPath);
    x.dispose();
  });
  for (const c of cases) {
    test(`${c.arch}, ${c.head} head, ${c.format} format: same features as torchvision`, () => {
      const path = join(root, `${c.arch}-${c.head}-${c.format}.pth.tar`);
      const outPath = join(root, `${c.arch}-${c.head}-${c.format}.out.pt`);
      python(WRITE_OFFICIAL, c.arch, c.head, c.format, path, inputsPath, outPath);
      const baseline = liveTensors();
      const encoder = loadEncoder(path);
      try {
        assert.equal(encoder.info.source, "moco");
        assert.equal(encoder.info.layout.arch, c.arch);
        assert.equal(encoder.info.layout.head.kind, c.head);
        assert.equal(encoder.info.epoch, 200);
        const expected = load(outPath) as { backbone: Tensor; head: Tensor };
        const x = load(inputsPath) as Tensor;
        scope(() =>
          noGrad(() => {
            assert.ok(relativeError(encoder.forward(x, "backbone"), expected.backbone) < 1e-4, "backbone features");
            assert.ok(relativeError(encoder.forward(x, "head"), expected.head) < 1e-4, "head features");
          }),
        );
        for (const t of [x, expected.backbone, expected.head]) t.dispose();
      } finally {
        encoder.dispose();
      }
      assert.equal(liveTensors(), baseline, "loading frees every tensor of the file");
      const key = loadEncoder(path, { part: "key" });
      assert.equal(key.info.part, "key");
      key.dispose();
      assert.throws(() => loadEncoder(path, { arch: "resnet34" }), /holds a resnet\d+, not the resnet34/);
    });
  }
});

describe("gray images on a 3-channel encoder", () => {
  test("the channel is repeated and ImageNet normalisation applies, as torchvision would be fed", () => {
    const path = join(root, "gray-tv.pth");
    const inputsPath = join(root, "gray-inputs.pt");
    const outPath = join(root, "gray-out.pt");
    manualSeed(5);
    const images = scope(() => rand([2, 1, 32, 32]).mul(255).floor().to("uint8"));
    save(images, inputsPath);
    python(
      `
import sys, torch, torchvision
path, inputs_path, out_path = sys.argv[1:4]
torch.manual_seed(1)
m = torchvision.models.resnet18()
torch.save(m.state_dict(), path)
m.fc = torch.nn.Identity(); m.eval()
x = torch.load(inputs_path).float().div(255).repeat(1, 3, 1, 1)
x = torchvision.transforms.functional.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
with torch.no_grad(): torch.save(torch.nn.functional.normalize(m(x), dim=1), out_path)
`,
      path,
      inputsPath,
      outPath,
    );
    const encoder = loadEncoder(path);
    try {
      assert.equal(encoder.info.source, "torchvision");
      assert.equal(encoder.info.layout.head.kind, "linear");
      const expected = load(outPath) as Tensor;
      const ours = embed(encoder, images);
      assert.ok(relativeError(ours, expected) < 1e-4);
      for (const t of [expected, ours, images]) t.dispose();
    } finally {
      encoder.dispose();
    }
  });
});

describe("our checkpoints in Python", () => {
  const data = join(root, "rgb");
  const run = join(root, "run");
  before(async () => {
    // A small RGB folder, so that the network is torchvision's resnet18 exactly (3 channels, 7×7 stem).
    mkdirSync(data, { recursive: true });
    manualSeed(11);
    for (let i = 0; i < 16; i += 1) {
      const pixels = scope(() => rand([40, 40, 3]).mul(255).floor().to("uint8"));
      await sharp(Buffer.from(pixels.toBytes()), { raw: { width: 40, height: 40, channels: 3 } })
        .png()
        .toFile(join(data, `img${i}.png`));
      pixels.dispose();
    }
    const result = spawnSync(
      process.execPath,
      [
        "bin/moco.js",
        "pretrain",
        data,
        ...["--out", run, "--width", "64", "--no-cifar-stem", "--image-size", "32", "--batch-size", "8"],
        ...["--bn-splits", "2", "--moco-k", "16", "--epochs", "1", "--threads", "2", "--print-freq", "1"],
      ],
      { encoding: "utf8", timeout: 300_000 },
    );
    assert.equal(result.status, 0, result.stderr);
  });

  test("the pretraining checkpoint passes main_lincls.py's loading logic and gives our features", () => {
    const checkpoint = join(run, "checkpoint.pth.tar");
    const inputsPath = join(root, "ours-inputs.pt");
    const outPath = join(root, "ours-out.pt");
    manualSeed(4);
    const x = rand([2, 3, 32, 32]);
    save(x, inputsPath);
    python(
      `
import sys, torch, torchvision
path, inputs_path, out_path = sys.argv[1:4]
checkpoint = torch.load(path, map_location="cpu")
assert checkpoint["arch"] == "resnet18"
state_dict = checkpoint["state_dict"]
for k in list(state_dict.keys()):
    if k.startswith("module.encoder_q") and not k.startswith("module.encoder_q.fc"):
        state_dict[k[len("module.encoder_q."):]] = state_dict[k]
    del state_dict[k]
model = torchvision.models.__dict__[checkpoint["arch"]]()
msg = model.load_state_dict(state_dict, strict=False)
assert set(msg.missing_keys) == {"fc.weight", "fc.bias"}, msg
assert not msg.unexpected_keys, msg
model.fc = torch.nn.Identity(); model.eval()
with torch.no_grad(): torch.save(model(torch.load(inputs_path)), out_path)
`,
      checkpoint,
      inputsPath,
      outPath,
    );
    const encoder = loadEncoder(checkpoint);
    try {
      assert.equal(encoder.info.source, "moco-ts");
      assert.equal(encoder.info.layout.head.kind, "mlp");
      const expected = load(outPath) as Tensor;
      const ours = noGrad(() => encoder.forward(x));
      assert.ok(relativeError(ours, expected) < 1e-4);
      for (const t of [expected, ours, x]) t.dispose();
    } finally {
      encoder.dispose();
    }
  });

  test("pretrain --pretrained starts both encoders from torchvision weights; another architecture is refused", () => {
    const weights = join(root, "tv-init.pth");
    python(
      `
import sys, torch, torchvision
torch.manual_seed(3)
torch.save(torchvision.models.resnet18().state_dict(), sys.argv[1])
`,
      weights,
    );
    const out = join(root, "from-tv");
    const result = spawnSync(
      process.execPath,
      [
        "bin/moco.js",
        "pretrain",
        data,
        ...["--pretrained", weights, "--out", out, "--width", "64", "--no-cifar-stem", "--image-size", "32"],
        ...["--batch-size", "8", "--bn-splits", "2", "--moco-k", "16", "--max-steps", "1", "--lr", "1e-9", "--wd", "0"],
      ],
      { encoding: "utf8", timeout: 300_000 },
    );
    assert.equal(result.status, 0, result.stderr);
    assert.match(result.stderr, /initialised the query and key encoders' backbone: resnet18/);
    const expected = load(weights) as Record<string, Tensor>;
    const saved = load(join(out, "checkpoint.pth.tar")) as { state_dict: Record<string, Tensor> };
    scope(() => {
      for (const encoder of ["encoder_q", "encoder_k"]) {
        for (const key of ["conv1.weight", "layer4.1.conv2.weight"]) {
          const ours = saved.state_dict[`module.${encoder}.${key}`] as Tensor;
          assert.ok(relativeError(ours, expected[key] as Tensor) < 1e-6, `${encoder}.${key}`);
        }
      }
    });

    const refused = spawnSync(
      process.execPath,
      ["bin/moco.js", "pretrain", "--pretrained", weights, "--out", join(root, "never"), "--max-steps", "1"],
      { encoding: "utf8", timeout: 300_000 },
    );
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /a checkpoint of another architecture/);
  });

  test("the torchvision export loads into torchvision.models.resnet18 with strict=True", () => {
    const checkpoint = join(run, "checkpoint.pth.tar");
    const exported = join(root, "backbone.pth");
    const encoder = loadEncoder(checkpoint);
    const inputsPath = join(root, "tv-inputs.pt");
    const outPath = join(root, "tv-out.pt");
    manualSeed(6);
    const x = rand([2, 3, 32, 32]);
    save(x, inputsPath);
    try {
      const report = exportBackbone(encoder, { format: "torchvision", path: exported });
      assert.deepEqual(report.notes.length, 1, "a standard resnet18: only the loading hint");
      python(
        `
import sys, torch, torchvision
path, inputs_path, out_path = sys.argv[1:4]
model = torchvision.models.resnet18()
model.fc = torch.nn.Identity()
model.load_state_dict(torch.load(path), strict=True)
model.eval()
with torch.no_grad(): torch.save(model(torch.load(inputs_path)), out_path)
`,
        exported,
        inputsPath,
        outPath,
      );
      const expected = load(outPath) as Tensor;
      const ours = noGrad(() => encoder.forward(x));
      assert.ok(relativeError(ours, expected) < 1e-5);
      for (const t of [expected, ours, x]) t.dispose();
      // The export is itself a torchvision state dict we load back.
      const again = loadEncoder(exported);
      assert.equal(again.info.source, "torchvision");
      assert.equal(again.info.layout.head.kind, "none");
      again.dispose();
    } finally {
      encoder.dispose();
    }
  });

  test("safetensors export round-trips and Python reads the same tensors", () => {
    const checkpoint = join(run, "checkpoint.pth.tar");
    const exported = join(root, "backbone.safetensors");
    const encoder = loadEncoder(checkpoint);
    try {
      exportBackbone(encoder, { format: "safetensors", path: exported });
      const again = loadEncoder(exported);
      assert.equal(again.info.source, "safetensors");
      const backboneKeys = scope(() => {
        const ours = encoder.model.stateDict();
        const theirs = again.model.stateDict();
        const keys = [...ours.keys()].filter((key) => !key.startsWith("fc."));
        for (const key of keys) assert.ok(theirs.get(key)?.equal(ours.get(key) as Tensor), key);
        return keys;
      });
      again.dispose();
      // Debian has no Python safetensors: parse the file by hand and compare with torch.load of the checkpoint.
      const out = python(
        `
import sys, json, struct, numpy, torch
path, ckpt = sys.argv[1:3]
raw = open(path, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.pop("__metadata__")
assert meta["arch"] == "resnet18", meta
data = raw[8 + n:]
state = torch.load(ckpt, map_location="cpu")["state_dict"]
dt = {"F32": numpy.float32, "I64": numpy.int64}
for name, info in header.items():
    b, e = info["data_offsets"]
    a = numpy.frombuffer(data[b:e], dtype=dt[info["dtype"]]).reshape(info["shape"])
    ref = state["module.encoder_q." + name].numpy()
    assert a.shape == ref.shape and (a == ref).all(), name
print(len(header))
`,
        exported,
        checkpoint,
      );
      assert.equal(Number(out.trim()), backboneKeys.length);
    } finally {
      encoder.dispose();
    }
  });
});

describe("bad checkpoints: clear errors, nothing executed", () => {
  test("not a checkpoint, truncated, another architecture, a hostile pickle", () => {
    const text = join(root, "notes.txt");
    writeFileSync(text, "just some text\n");
    assert.throws(() => loadEncoder(text), /notes\.txt/);
    assert.throws(() => loadEncoder(join(root, "missing.pth")), /no such file/);

    const full = join(root, "resnet18-linear-zip.pth.tar");
    const truncated = join(root, "truncated.pth.tar");
    const bytes = readFileSync(full);
    writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    assert.throws(() => loadEncoder(truncated), /truncated\.pth\.tar/);

    const other = join(root, "not-a-resnet.pth");
    python(
      `
import sys, torch
torch.save(torch.nn.Sequential(torch.nn.Linear(4, 4)).state_dict(), sys.argv[1])
`,
      other,
    );
    assert.throws(() => loadEncoder(other), /no ResNet weights found/);

    const marker = join(root, "pwned");
    const evil = join(root, "evil.pth");
    python(
      `
import sys, os, torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "x": Evil()}, sys.argv[1])
`,
      evil,
      marker,
    );
    assert.throws(() => loadEncoder(evil), /system|not allowed|refus/i);
    assert.equal(spawnSync("test", ["-e", marker]).status, 1, "nothing from the file was executed");
  });
});
