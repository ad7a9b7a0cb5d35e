// A 512×512 float32 matmul in a loop: the same BLAS call on both sides, so the ratio shows what the
// binding adds to a compute-bound op (target ≥ 0.98).
import * as torch from "../src/torch/index.js";
import { timeRepeats, type BenchEntry } from "./framework.js";

const N = 512;

export const matmul512: BenchEntry = {
  name: "matmul512",
  description: "512×512 float32 matmul loop (result freed each call)",
  python: "matmul512.py",
  rounds: 3,
  metrics: [{ key: "gflops", label: "throughput", unit: "GFLOP/s", better: "higher", target: 0.98, digits: 1 }],
  runOurs({ quick }) {
    torch.manualSeed(0);
    const a = torch.randn([N, N]);
    const b = torch.randn([N, N]);
    const iters = quick ? 10 : 50;
    const repeats = quick ? 2 : 5;
    const times = timeRepeats(
      () => {
        for (let i = 0; i < iters; i++) a.matmul(b).dispose();
      },
      repeats,
      1,
    );
    a.dispose();
    b.dispose();
    const flops = 2 * N * N * N * iters;
    return {
      values: { gflops: flops / Math.min(...times) / 1e9 },
      details: { iterations: iters, repeats, ms_per_matmul: (Math.min(...times) / iters) * 1e3 },
    };
  },
};
