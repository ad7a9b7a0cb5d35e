// Issue 3, item 5 (last part): a resnet18 (CIFAR stem, 10 classes) trained for 5 SGD steps (momentum
// 0.9, weight decay 1e-4, nesterov off and on) from the same weights on the same batches equals
// torchvision's resnet18 trained by torch.optim.SGD: every parameter and every momentum buffer after
// the 5 steps, and the loss at each step. Weights and batches travel through our torch.save-compatible
// serializer; the Python side (test/py/optim_resnet.py) runs inside the test.
//
// Tolerance: float32 after 5 steps through BN in train mode, |ours − PyTorch| <= 1e-5 + 1e-4·|PyTorch|
// per element (both sides call the same libtorch kernels on the same thread count; in practice the
// differences are at the level of a few ulps).
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { resnet18 } from "../src/nn/index.js";
import { SGD } from "../src/optim/index.js";
import * as torch from "../src/torch/index.js";
import { F, Tensor } from "../src/torch/index.js";
import { load, save, type Saveable } from "../src/torch/serialize/index.js";
import { PYTHON } from "./helpers/python.js";

const here = dirname(fileURLToPath(import.meta.url));
const STEPS = 5;
const BATCH = 4;
const HYPER = { lr: 0.05, momentum: 0.9, weight_decay: 1e-4 };
const RTOL = 1e-4;
const ATOL = 1e-5;

interface PyRun {
  params: Record<string, Tensor>;
  momentum: Record<string, Tensor>;
  buffers: Record<string, Tensor>;
  losses: number[];
}

function disposeAll(value: unknown): void {
  if (value instanceof Tensor) value.dispose();
  else if (value instanceof Map) for (const v of value.values()) disposeAll(v);
  else if (Array.isArray(value)) value.forEach(disposeAll);
  else if (typeof value === "object" && value !== null) Object.values(value).forEach(disposeAll);
}

/** The largest violation of |a - b| <= atol + rtol |b|, as a ratio (<= 1 passes), and where. */
function worst(ours: Tensor, theirs: Tensor): { ratio: number; index: number; a: number; b: number } {
  const a = ours.toTypedArray<"float32">();
  const b = theirs.toTypedArray<"float32">();
  let best = { ratio: 0, index: -1, a: 0, b: 0 };
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    const ratio = Math.abs(x - y) / (ATOL + RTOL * Math.abs(y));
    if (!(ratio <= best.ratio)) best = { ratio: Number.isNaN(ratio) ? Infinity : ratio, index: i, a: x, b: y };
  }
  return best;
}

describe("resnet18 + SGD match torchvision + torch.optim.SGD after 5 steps", () => {
  const dir = mkdtempSync(join(tmpdir(), "moco-optim-resnet-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  torch.manualSeed(2024);
  const threads = torch.getNumThreads();
  const model = resnet18({ cifarStem: true, numClasses: 10 });
  const initial = model.stateDict(); // detached handles of the initial weights
  const inputs = Array.from({ length: STEPS }, () => torch.randn([BATCH, 3, 32, 32]));
  const targets = Array.from({ length: STEPS }, () => torch.randint(0, 10, [BATCH]));
  const nesterovs = [false, true];

  const input = join(dir, "in.pt");
  const output = join(dir, "out.pt");
  save(
    {
      state_dict: initial,
      inputs,
      targets,
      ...HYPER,
      threads,
      cifar_stem: true,
      num_classes: 10,
      nesterov: nesterovs,
    } as Saveable,
    input,
  );
  const snapshot = new Map([...initial].map(([k, t]) => [k, t.clone()]));
  const py = spawnSync(PYTHON, [join(here, "py", "optim_resnet.py"), input, output], { encoding: "utf8" });
  if (py.status !== 0) throw new Error(`optim_resnet.py failed (status ${py.status}):\n${py.stderr}`);
  const expected = load(output) as unknown as Record<string, PyRun>;
  after(() => {
    disposeAll(expected);
    disposeAll([inputs, targets, initial, snapshot]);
    model.dispose();
  });

  for (const nesterov of nesterovs) {
    it(`nesterov ${nesterov ? "on" : "off"}: every parameter and momentum buffer equal`, (t) => {
      const theirs = expected[`nesterov=${nesterov}`] as PyRun;
      model.loadStateDict(snapshot);
      model.train();
      model.zeroGrad();
      const opt = new SGD(model.parameters(), {
        lr: HYPER.lr,
        momentum: HYPER.momentum,
        weightDecay: HYPER.weight_decay,
        nesterov,
      });
      const losses: number[] = [];
      for (let s = 0; s < STEPS; s++) {
        opt.zeroGrad();
        torch.scope(() => {
          const loss = F.crossEntropy(model.forward(inputs[s] as Tensor), targets[s] as Tensor);
          loss.backward();
          losses.push(loss.item());
        });
        opt.step();
      }
      losses.forEach((l, s) => {
        const e = theirs.losses[s] as number;
        assert.ok(Math.abs(l - e) <= 1e-5 + 1e-5 * Math.abs(e), `loss at step ${s + 1}: ours ${l}, PyTorch ${e}`);
      });
      const failures: string[] = [];
      let maxRatio = 0;
      const check = (what: string, ours: Tensor | null | undefined, ref: Tensor | undefined) => {
        if (!(ours instanceof Tensor) || !(ref instanceof Tensor)) {
          failures.push(`${what}: missing (ours ${ours === null ? "null" : typeof ours}, PyTorch ${typeof ref})`);
          return;
        }
        if (ours.shape.join() !== ref.shape.join()) {
          failures.push(`${what}: shape [${ours.shape.join(", ")}] vs [${ref.shape.join(", ")}]`);
          return;
        }
        const w = worst(ours, ref);
        maxRatio = Math.max(maxRatio, w.ratio);
        if (w.ratio > 1) failures.push(`${what}[${w.index}]: ours ${w.a}, PyTorch ${w.b}`);
      };
      const named = model.namedParameters();
      // Not vacuous: the weights moved away from where they started.
      assert.ok(
        !model.getParameter("fc.weight").equal(snapshot.get("fc.weight") as Tensor),
        "fc.weight did not change",
      );
      assert.ok(
        !model.getParameter("conv1.weight").equal(snapshot.get("conv1.weight") as Tensor),
        "conv1.weight did not change",
      );
      assert.equal(named.length, Object.keys(theirs.params).length, "parameter count");
      for (const [name, p] of named) {
        check(`param ${name}`, p, theirs.params[name]);
        check(`momentum_buffer ${name}`, opt.stateOf(p)?.momentum_buffer, theirs.momentum[name]);
      }
      // The layer above the optimizer: BN running statistics after 5 train-mode steps.
      for (const [name, b] of model.namedBuffers()) {
        if (name.endsWith("num_batches_tracked")) {
          assert.equal(b.item(), (theirs.buffers[name] as Tensor).item(), name);
        } else check(`buffer ${name}`, b, theirs.buffers[name]);
      }
      t.diagnostic(`largest |diff| / (atol + rtol·|ref|) over all tensors: ${maxRatio.toExponential(2)}`);
      assert.deepEqual(failures, [], `largest |diff| / (atol + rtol|ref|) = ${maxRatio}`);
      opt.dispose();
    });
  }
});
