// The GPU side of the engine, against the same machine's PyTorch on the same GPU: the CUDA runtime
// switches, pinned memory and non-blocking copies, ops in float32 and under CUDA autocast (bfloat16
// and float16: the output dtypes are PyTorch's), a ResNet-18 forward and backward against
// torchvision's, the loss scaler against torch.amp.GradScaler, NCCL at world size 1, and a float16
// pretraining run whose checkpoint loads on the CPU and in Python. The MoCo step itself is checked by
// test/moco-parity.test.ts with MOCO_TEST_DEVICE=cuda. Every test here is skipped, with the reason,
// where libtorch sees no CUDA device: scripts/device-check.sh runs them on a GPU machine.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";

import sharp from "sharp";

import { resnet18 } from "../src/nn/index.js";
import { GradScaler, SGD } from "../src/optim/index.js";
import { F, autocast, buildInfo, cuda, manualSeed, randn, scope, tensor, type Tensor } from "../src/torch/index.js";
import { c10dAllGather, c10dAllReduce, c10dBackends, c10dDispose, c10dInit } from "../src/torch/c10d.js";
import { readCheckpoint, disposeCheckpoint } from "../src/train/checkpoint.js";
import { crossCheck, op, runPython, assertMatchesPython } from "./helpers/pytorch.js";

const info = buildInfo();
const GPU = "cuda:0";
const SKIP = info.cudaAvailable
  ? false
  : `no CUDA device (libtorch ${info.torchVersion}${info.cudaDeviceCount === 0 ? "" : ", GPUs unusable"}); scripts/device-check.sh runs these on a GPU machine`;

const root = mkdtempSync(join(tmpdir(), "moco-gpu-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Our side of a cross-check: the inputs moved to the GPU, the result brought back. */
function onGpu(...inputs: Tensor[]): Tensor[] {
  return inputs.map((t) => t.toDevice(GPU));
}
const back = (t: Tensor): Tensor => t.toDevice("cpu");

describe("CUDA runtime", { skip: SKIP }, () => {
  test("device count, synchronize, the cuDNN autotuner switch", () => {
    assert.ok(cuda.cudaDeviceCount() >= 1);
    assert.equal(cuda.isCudaAvailable(), true);
    cuda.synchronize(GPU);
    cuda.synchronize("cpu");
    assert.throws(() => cuda.synchronize("cuda:999"), /no CUDA device 999/);
    const previous = cuda.setCudnnBenchmark(true);
    assert.equal(cuda.setCudnnBenchmark(previous), true);
  });

  test("pinned memory and a non-blocking copy give the same values on the GPU", () => {
    scope(() => {
      const x = randn([4096, 64]);
      assert.equal(x.isPinned, false);
      const pinned = x.pinMemory();
      assert.equal(pinned.isPinned, true);
      const y = pinned.toDevice(GPU, { nonBlocking: true });
      assert.equal(y.device, GPU);
      cuda.synchronize(GPU);
      assert.ok(back(y).equal(x));
      const z = cuda.copyToDevice(x, GPU);
      assert.ok(back(z).equal(x));
      assert.equal(cuda.copyToDevice(x, "cpu"), x);
    });
  });
});

// ---- ops against PyTorch on the GPU ------------------------------------------------------------

const conv = { x: [2, 3, 16, 16], w: [8, 3, 3, 3], b: [8] };
const gpuOps = SKIP
  ? []
  : [
      op({
        name: "conv2d fp32",
        inputs: { x: randn(conv.x), w: randn(conv.w), b: randn(conv.b) },
        expr: "F.conv2d(x.cuda(), w.cuda(), b.cuda(), padding=1).cpu()",
        ours: ({ x, w, b }) => back(F.conv2d(...(onGpu(x, w, b) as [Tensor, Tensor, Tensor]), { padding: 1 })),
        grad: ["x", "w", "b"],
        // cuDNN's float32 convolutions run in TF32 by default, in both processes.
        tol: { rtol: 2e-3, atol: 2e-3 },
        gradTol: { rtol: 2e-3, atol: 2e-3 },
      }),
      op({
        name: "linear and matmul fp32",
        inputs: { x: randn([8, 32]), w: randn([16, 32]), b: randn([16]) },
        expr: "[F.linear(x.cuda(), w.cuda(), b.cuda()).cpu(), (x.cuda() @ w.cuda().t()).cpu()]",
        ours: ({ x, w, b }) => {
          const [gx, gw, gb] = onGpu(x, w, b) as [Tensor, Tensor, Tensor];
          return [back(F.linear(gx, gw, gb)), back(gx.matmul(gw.t()))];
        },
        grad: ["x", "w"],
      }),
      op({
        name: "batch norm (training) updates the running statistics as PyTorch",
        inputs: { x: randn([8, 4, 5, 5]), mean: randn([4]), var: randn([4]).abs(), w: randn([4]), b: randn([4]) },
        setup:
          "m, v = mean.cuda(), var.cuda()\nout = F.batch_norm(x.cuda(), m, v, w.cuda(), b.cuda(), True, 0.1, 1e-5)",
        expr: "[out.cpu(), m.cpu(), v.cpu()]",
        ours: ({ x, mean, var: variance, w, b }) => {
          const [gx, m, v, gw, gb] = onGpu(x, mean, variance, w, b) as Tensor[] as [
            Tensor,
            Tensor,
            Tensor,
            Tensor,
            Tensor,
          ];
          const out = F.batchNorm(gx, m, v, { weight: gw, bias: gb, training: true, momentum: 0.1, eps: 1e-5 });
          return [back(out), back(m), back(v)];
        },
      }),
      op({
        name: "softmax, cross-entropy and normalize",
        inputs: { z: randn([16, 10]), t: tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5], { dtype: "int64" }) },
        expr: "[F.softmax(z.cuda(), 1).cpu(), F.cross_entropy(z.cuda(), t.cuda()).cpu(), F.normalize(z.cuda(), dim=1).cpu()]",
        ours: ({ z, t }) => {
          const [gz, gt] = onGpu(z, t) as [Tensor, Tensor];
          return [back(F.softmax(gz, 1)), back(F.crossEntropy(gz, gt)), back(F.normalize(gz, { dim: 1 }))];
        },
        grad: ["z"],
      }),
      ...(["bfloat16", "float16"] as const).map((dtype) =>
        op({
          name: `under CUDA autocast ${dtype}: conv, linear, matmul, softmax, cross-entropy keep PyTorch's dtypes`,
          inputs: {
            x: randn(conv.x),
            w: randn(conv.w),
            a: randn([8, 32]),
            lw: randn([16, 32]),
            t: tensor([0, 1, 2, 3, 4, 5, 6, 7], { dtype: "int64" }),
          },
          setup: [
            `with torch.autocast("cuda", dtype=torch.${dtype}):`,
            "    c = F.conv2d(x.cuda(), w.cuda(), padding=1)",
            "    l = F.linear(a.cuda(), lw.cuda())",
            "    mm = a.cuda() @ lw.cuda().t()",
            "    s = F.softmax(l, 1)",
            "    ce = F.cross_entropy(l, t.cuda())",
          ].join("\n"),
          expr: "[c.cpu(), l.cpu(), mm.cpu(), s.cpu(), ce.cpu()]",
          ours: ({ x, w, a, lw, t }) =>
            autocast({ deviceType: "cuda", dtype }, () => {
              const [gx, gw, ga, glw, gt] = onGpu(x, w, a, lw, t) as [Tensor, Tensor, Tensor, Tensor, Tensor];
              const l = F.linear(ga, glw);
              return [
                back(F.conv2d(gx, gw, null, { padding: 1 })),
                back(l),
                back(ga.matmul(glw.t())),
                back(F.softmax(l, 1)),
                back(F.crossEntropy(l, gt)),
              ];
            }),
        }),
      ),
    ];
if (SKIP) test("ops on the GPU against PyTorch on the GPU", { skip: SKIP }, () => {});
else crossCheck("ops on the GPU against PyTorch on the GPU", gpuOps);

// ---- a ResNet against torchvision's on the GPU ----------------------------------------------------

describe("ResNet-18 on the GPU against torchvision's on the same GPU", { skip: SKIP }, () => {
  for (const dtype of ["float32", "bfloat16"] as const) {
    test(`forward (training mode) and backward, ${dtype === "float32" ? "float32" : "under bf16 autocast"}`, () => {
      scope(() => {
        manualSeed(3);
        const model = resnet18({ numClasses: 10 }).train();
        const names = [...model.stateDict().keys()];
        const tensors = [...model.stateDict().values()].map((t) => t.clone());
        const x = randn([4, 3, 64, 64]);
        const upstream = randn([4, 10]);
        model.toDevice(GPU);
        const input = x.toDevice(GPU).requiresGrad_(true);
        const run = () => model.forward(input);
        const out = dtype === "float32" ? run() : autocast({ deviceType: "cuda", dtype }, run);
        out.float().mul(upstream.toDevice(GPU)).sum().backward();
        const named = new Map(model.namedParameters());
        const ours = [
          back(out),
          back(input.grad as Tensor),
          back(named.get("conv1.weight")?.grad as Tensor),
          back(named.get("fc.weight")?.grad as Tensor),
          back(model.stateDict().get("bn1.running_mean") as Tensor),
        ];
        const [theirs] = runPython([
          {
            name: "torchvision resnet18",
            inputs: { names, tensors, x, upstream },
            setup: [
              "import torchvision",
              "m = torchvision.models.resnet18(num_classes=10)",
              "sd = m.state_dict()",
              "with torch.no_grad():",
              "    for k, t in zip(names, tensors):",
              "        sd[k].copy_(t)",
              "m = m.cuda().train()",
              "xx = x.cuda().requires_grad_()",
              `with torch.autocast("cuda", dtype=torch.bfloat16, enabled=${dtype === "bfloat16" ? "True" : "False"}):`,
              "    out = m(xx)",
              "(out.float() * upstream.cuda()).sum().backward()",
            ].join("\n"),
            expr: "[out.cpu(), xx.grad.cpu(), m.conv1.weight.grad.cpu(), m.fc.weight.grad.cpu(), m.bn1.running_mean.cpu()]",
          },
        ]);
        assert.ok(theirs !== undefined && theirs.error === undefined, theirs?.error);
        // TF32 convolutions in float32 (both sides); bf16's 8-bit mantissa under autocast.
        const tol = dtype === "float32" ? { rtol: 5e-3, atol: 5e-3 } : { rtol: 5e-2, atol: 5e-2 };
        assertMatchesPython(ours, theirs.value, `resnet18 ${dtype}`, tol);
        model.dispose();
      });
    });
  }
});

// ---- the loss scaler against torch.amp.GradScaler --------------------------------------------------

describe("GradScaler on the GPU against torch.amp.GradScaler", { skip: SKIP }, () => {
  test("scale, unscale, a skipped step on an overflow, backoff and growth", () => {
    scope(() => {
      const w0 = randn([6]);
      const x = randn([6]);
      // Step 0 and 2 are clean, step 1's gradient is infinite: the step is skipped and the scale halves;
      // growthInterval 2 then doubles it after two clean steps.
      const factors = [1, Infinity, 1, 1];
      const w = w0.toDevice(GPU).requiresGrad_(true);
      const optimizer = new SGD([w], { lr: 0.1 });
      const scaler = new GradScaler({ initScale: 1024, growthInterval: 2 });
      const scales: number[] = [];
      const stepped: boolean[] = [];
      for (const f of factors) {
        scope(() => {
          optimizer.zeroGrad();
          const loss = w.mul(x.toDevice(GPU)).sum().mul(f);
          scaler.scale(loss).backward();
          stepped.push(scaler.step(optimizer));
          scaler.update();
          scales.push(scaler.getScale());
        });
      }
      const [theirs] = runPython([
        {
          name: "torch.amp.GradScaler",
          inputs: { w0, x, factors: factors.map((f) => (Number.isFinite(f) ? f : "inf")) },
          setup: [
            "w = w0.cuda().requires_grad_()",
            "opt = torch.optim.SGD([w], lr=0.1)",
            "scaler = torch.amp.GradScaler('cuda', init_scale=1024, growth_interval=2)",
            "scales = []",
            "for f in factors:",
            "    opt.zero_grad()",
            "    loss = (w * x.cuda()).sum() * float(f)",
            "    scaler.scale(loss).backward()",
            "    scaler.step(opt)",
            "    scaler.update()",
            "    scales.append(float(scaler.get_scale()))",
          ].join("\n"),
          expr: "[w.detach().cpu(), scales]",
        },
      ]);
      assert.ok(theirs !== undefined && theirs.error === undefined, theirs?.error);
      assert.deepEqual(stepped, [true, false, true, true]);
      assertMatchesPython([back(w.detach()), scales], theirs.value, "GradScaler");
      assert.deepEqual(scales, [1024, 512, 512, 1024]);
      optimizer.dispose();
      scaler.dispose();
    });
  });
});

// ---- NCCL at world size 1 ------------------------------------------------------------------------

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

describe("NCCL process group", { skip: SKIP }, () => {
  test("world size 1 on one GPU: all-reduce and all-gather of CUDA tensors", async (t) => {
    if (!c10dBackends().includes("nccl")) {
      t.skip(`this build's backends: ${c10dBackends().join(", ")} (no NCCL)`);
      return;
    }
    const group = await c10dInit("127.0.0.1", await freePort(), 0, 1, 60_000, "nccl", "default", "");
    try {
      scope(() => {
        const x = randn([32]).toDevice(GPU);
        const before = back(x);
        c10dAllReduce(group, x, 0, 60_000);
        assert.ok(back(x).equal(before));
        const gathered = c10dAllGather(group, x, 60_000);
        assert.equal(gathered.length, 1);
        assert.equal(gathered[0]?.device, GPU);
        assert.ok(back(gathered[0] as Tensor).equal(before));
      });
    } finally {
      c10dDispose(group);
    }
  });
});

// ---- a float16 pretraining run on the GPU ------------------------------------------------------------

describe("pretraining on the GPU", { skip: SKIP }, () => {
  test("moco pretrain --device cuda --precision fp16: a checkpoint that loads on the CPU and in Python", async () => {
    const data = join(root, "folder");
    for (const [c, name] of ["a", "b"].entries()) {
      mkdirSync(join(data, "train", name), { recursive: true });
      for (let i = 0; i < 32; i++) {
        const pixels = Buffer.alloc(32 * 32 * 3);
        for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (7 + c) + i * 13 + ((p * i) % 17)) & 255;
        await sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } })
          .png()
          .toFile(join(data, "train", name, `${i}.png`));
      }
    }
    const out = join(root, "run");
    const bin = join(import.meta.dirname, "..", "bin", "moco.js");
    const args = [
      bin,
      "pretrain",
      data,
      "--dataset",
      "folder",
      "--image-size",
      "32",
      "--arch",
      "resnet18",
      "--width",
      "8",
      "--cifar-stem",
      "--batch-size",
      "16",
      "--moco-k",
      "64",
      "--epochs",
      "1",
      "--device",
      "cuda",
      "--precision",
      "fp16",
      "--no-report",
      "--out",
      out,
    ];
    const run = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 300_000 });
    assert.equal(run.status, 0, `${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout + run.stderr, /float16 autocast with dynamic loss scaling/);
    const checkpoint = readCheckpoint(join(out, "checkpoint.pth.tar"));
    try {
      const scaler = checkpoint.moco_ts.gradScaler;
      assert.ok(scaler !== undefined && scaler.scale > 0, "the loss scaler's state is kept");
      for (const [key, t] of checkpoint.state_dict) {
        assert.equal(t.device, "cpu", key);
        if (t.dtype !== "int64") assert.equal(t.dtype, "float32", key);
      }
    } finally {
      disposeCheckpoint(checkpoint);
    }
    const [theirs] = runPython([
      {
        name: "torch.load",
        inputs: { path: join(out, "checkpoint.pth.tar") },
        setup: [
          "ck = torch.load(path, map_location='cpu', weights_only=False)",
          "sd = ck['state_dict']",
          "q = {k[len('module.encoder_q.'):]: v for k, v in sd.items() if k.startswith('module.encoder_q.')}",
        ].join("\n"),
        expr: "[ck['epoch'], len(q), str(q['conv1.weight'].dtype), str(q['conv1.weight'].device), ck['moco_ts']['grad_scaler']['scale'] > 0]",
      },
    ]);
    assert.ok(theirs !== undefined && theirs.error === undefined, theirs?.error);
    const [epoch, keys, dtype, device, scaled] = theirs.value as [number, number, string, string, boolean];
    assert.equal(epoch, 1);
    assert.ok(keys > 50);
    assert.equal(dtype, "torch.float32");
    assert.equal(device, "cpu");
    assert.equal(scaled, true);
  });
});
