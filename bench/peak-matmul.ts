// The machine's peak, as libtorch reaches it: large square matmuls in float32 (BLAS) and bfloat16
// (oneDNN's bf16 GEMM, native with avx512_bf16/AMX, emulated elsewhere), in GFLOP/s. The ratio
// bf16/fp32 is the ceiling of what bf16 autocast can buy a compute-bound step on this CPU; the
// precision decision (src/train/precision.ts) assumes it is well above 1 where the CPU has native bf16.
import * as torch from "../src/torch/index.js";
import { timeRepeats, type BenchEntry } from "./framework.js";

const N = 2048;

function gflops(dtype: "float32" | "bfloat16", quick: boolean): { gflops: number; ms: number } {
  torch.manualSeed(0);
  const a = torch.randn([N, N]).to(dtype);
  const b = torch.randn([N, N]).to(dtype);
  const iters = quick ? 2 : 10;
  const times = timeRepeats(
    () => {
      for (let i = 0; i < iters; i++) a.matmul(b).dispose();
    },
    quick ? 1 : 3,
    1,
  );
  a.dispose();
  b.dispose();
  const best = Math.min(...times);
  return { gflops: (2 * N ** 3 * iters) / best / 1e9, ms: (best / iters) * 1e3 };
}

export const peakMatmul: BenchEntry = {
  name: "peak-matmul",
  description: `${N}×${N} matmuls, float32 and bfloat16: the CPU's peak through libtorch`,
  python: "peak-matmul.py",
  rounds: 2,
  metrics: [
    { key: "gflops_fp32", label: "float32 matmul", unit: "GFLOP/s", better: "higher", target: 0.98, digits: 1 },
    { key: "gflops_bf16", label: "bfloat16 matmul", unit: "GFLOP/s", better: "higher", target: 0.98, digits: 1 },
    { key: "bf16_over_fp32", label: "bf16 / fp32", unit: "×", better: "higher", informational: true, digits: 2 },
  ],
  runOurs({ quick }) {
    const fp32 = gflops("float32", quick);
    const bf16 = gflops("bfloat16", quick);
    return {
      values: { gflops_fp32: fp32.gflops, gflops_bf16: bf16.gflops, bf16_over_fp32: bf16.gflops / fp32.gflops },
      details: { n: N, ms_fp32: fp32.ms, ms_bf16: bf16.ms },
    };
  },
};
