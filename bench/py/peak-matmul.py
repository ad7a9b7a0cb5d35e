"""Python side of bench entry peak-matmul: 2048×2048 matmuls in float32 and bfloat16."""
import argparse
import json
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)

N = 2048


def gflops(dtype):
    torch.manual_seed(0)
    a = torch.randn(N, N).to(dtype)
    b = torch.randn(N, N).to(dtype)
    iters = 2 if args.quick else 10
    repeats = 1 if args.quick else 3

    def loop():
        for _ in range(iters):
            c = torch.matmul(a, b)  # noqa: F841

    loop()  # warmup
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        loop()
        times.append(time.perf_counter() - t0)
    best = min(times)
    return 2 * N**3 * iters / best / 1e9, best / iters * 1e3


fp32, ms32 = gflops(torch.float32)
bf16, ms16 = gflops(torch.bfloat16)
print(
    json.dumps(
        {
            "values": {"gflops_fp32": fp32, "gflops_bf16": bf16, "bf16_over_fp32": bf16 / fp32},
            "details": {"n": N, "ms_fp32": ms32, "ms_bf16": ms16},
        }
    )
)
