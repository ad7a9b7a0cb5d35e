// Issue 3's benchmark: one training step of resnet18 with the CIFAR stem (3×3 stride-1 conv1, no
// max-pool) at batch 64 on 32×32 inputs: forward, cross-entropy, backward, SGD step (momentum 0.9,
// weight decay 5e-4). Images/s from the median step's wall time; images per CPU-second from the median
// step's process CPU time (all threads; steadier than wall time when the machine is shared); and the
// process's peak resident memory (VmHWM; each side runs in its own process, so the figure is its own).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { SGD } from "../src/optim/index.js";
import * as torch from "../src/torch/index.js";
import { F, inLayout, withPrecision, type ResolvedPrecision } from "../src/torch/index.js";
import {
  autoPrecisionMetric,
  median,
  now,
  peakRssMiB,
  rssMiB,
  PEAK_RSS_METRIC,
  PRECISIONS,
  type BenchEntry,
  type MetricSpec,
} from "./framework.js";

const BATCH = 64;
const THROUGHPUT: MetricSpec = {
  key: "images_per_s",
  label: "training throughput",
  unit: "images/s",
  better: "higher",
  target: 1.0,
  digits: 1,
};
const nnIndex = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "nn", "index.ts");

export const resnet18TrainStep: BenchEntry = {
  name: "resnet18-train-step",
  description: `resnet18 (CIFAR stem) train step, batch ${BATCH}, 32×32: fwd + CE + bwd + SGD(m 0.9, wd 5e-4)`,
  python: "resnet18-train-step.py",
  rounds: 2,
  metrics: [
    THROUGHPUT,
    autoPrecisionMetric(THROUGHPUT),
    {
      key: "images_per_cpu_s",
      label: "images per CPU-second",
      unit: "images/CPU-s",
      better: "higher",
      digits: 1,
      informational: true,
    },
    PEAK_RSS_METRIC,
  ],
  async unavailable() {
    if (!existsSync(nnIndex)) return "src/nn not available";
    const nn = (await import("../src/nn/index.js")) as Record<string, unknown>;
    return typeof nn.resnet18 === "function" ? null : "src/nn has no resnet18 yet";
  },
  async runOurs({ quick }) {
    const { resnet18 } = await import("../src/nn/index.js");
    const warmup = quick ? 1 : 2;
    const steps = quick ? 2 : 5;
    torch.manualSeed(0);
    const model = resnet18({ cifarStem: true, numClasses: 10 }).train();
    const x = torch.randn([BATCH, 3, 32, 32]);
    const y = torch.randint(0, 10, [BATCH]);
    const opt = new SGD(model.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
    const rssBefore = rssMiB();
    const times: number[] = [];
    const cpuTimes: number[] = [];
    let loss = 0;
    const measure = (precision: ResolvedPrecision): number[] => {
      if (precision.channelsLast) model.to({ memoryFormat: "channelsLast" });
      const seconds: number[] = [];
      for (let i = 0; i < warmup + steps; i++) {
        const t0 = now();
        const c0 = process.cpuUsage();
        opt.zeroGrad();
        torch.scope(() => {
          const input = inLayout(precision, x);
          const l = withPrecision(precision, "cpu", () => F.crossEntropy(model.forward(input), y));
          l.backward();
          loss = l.item();
        });
        opt.step();
        if (i >= warmup) {
          seconds.push(now() - t0);
          const cpu = process.cpuUsage(c0);
          if (precision === PRECISIONS.fp32) cpuTimes.push((cpu.user + cpu.system) / 1e6);
        }
      }
      return seconds;
    };
    times.push(...measure(PRECISIONS.fp32));
    const autoTimes = measure(PRECISIONS.auto);
    const result = {
      values: {
        images_per_s: BATCH / median(times),
        images_per_s_auto: BATCH / median(autoTimes),
        images_per_cpu_s: BATCH / median(cpuTimes),
        peak_rss_mib: peakRssMiB(),
      },
      details: {
        batch: BATCH,
        warmup,
        steps,
        step_seconds: times,
        step_seconds_auto: autoTimes,
        auto: PRECISIONS.auto.reason,
        step_cpu_seconds: cpuTimes,
        best_images_per_s: BATCH / Math.min(...times),
        rss_mib_after_setup: rssBefore,
        rss_mib_end: rssMiB(),
        last_loss: loss,
        live_tensors_end: torch.liveTensors(),
      },
    };
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
    return result;
  },
};
