// Issue 5's benchmark: embedding throughput, the everyday use of a pretrained encoder. resnet18 with
// the CIFAR stem, eval mode, no gradient, batch 256 of 32×32 images → L2-normalised 512-d features.
// Images/s from the median batch's wall time, as the Python side (torchvision's resnet18 with the
// same stem, under torch.no_grad()).
import { resnet18 } from "../src/nn/index.js";
import * as torch from "../src/torch/index.js";
import { F, asFloat32, inLayout, withPrecision, type ResolvedPrecision } from "../src/torch/index.js";
import {
  autoPrecisionMetric,
  median,
  now,
  peakRssMiB,
  PEAK_RSS_METRIC,
  PRECISIONS,
  type BenchEntry,
  type MetricSpec,
} from "./framework.js";

const BATCH = 256;
const THROUGHPUT: MetricSpec = {
  key: "images_per_s",
  label: "embedding throughput",
  unit: "images/s",
  better: "higher",
  target: 1.0,
  digits: 1,
};

export const embedThroughput: BenchEntry = {
  name: "embed-throughput",
  description: `resnet18 (CIFAR stem) embeddings, eval mode, no grad, batch ${BATCH} of 32×32 → normalised features`,
  python: "embed-throughput.py",
  rounds: 2,
  metrics: [THROUGHPUT, autoPrecisionMetric(THROUGHPUT), PEAK_RSS_METRIC],
  async unavailable() {
    return null;
  },
  async runOurs({ quick }) {
    const warmup = 1;
    const batches = quick ? 2 : 5;
    torch.manualSeed(0);
    const model = resnet18({ cifarStem: true, numClasses: 0 }).eval();
    model.requiresGrad_(false);
    const x = torch.randn([BATCH, 3, 32, 32]);
    let checksum = 0;
    // As src/encoder/embed.ts: the forward pass under the policy, features float32 before the norm.
    const measure = (precision: ResolvedPrecision): number[] => {
      if (precision.channelsLast) model.to({ memoryFormat: "channelsLast" });
      const seconds: number[] = [];
      for (let i = 0; i < warmup + batches; i++) {
        const t0 = now();
        torch.scope(() =>
          torch.noGrad(() => {
            const input = inLayout(precision, x);
            const raw = asFloat32(withPrecision(precision, "cpu", () => model.forward(input)));
            const features = F.normalize(raw, { dim: 1 });
            checksum = features.narrow(0, 0, 1).sum().item();
          }),
        );
        if (i >= warmup) seconds.push(now() - t0);
      }
      return seconds;
    };
    const times = measure(PRECISIONS.fp32);
    const autoTimes = measure(PRECISIONS.auto);
    model.dispose();
    x.dispose();
    return {
      values: {
        images_per_s: BATCH / median(times),
        images_per_s_auto: BATCH / median(autoTimes),
        peak_rss_mib: peakRssMiB(),
      },
      details: {
        batch: BATCH,
        warmup,
        batches,
        batch_seconds: times,
        batch_seconds_auto: autoTimes,
        auto: PRECISIONS.auto.reason,
        checksum,
        live_tensors_end: torch.liveTensors(),
      },
    };
  },
};
