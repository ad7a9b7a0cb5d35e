"""Python side of bench entry matmul512: a 512×512 float32 matmul loop."""
import argparse
import json
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)

N = 512
torch.manual_seed(0)
a = torch.randn(N, N)
b = torch.randn(N, N)
iters = 10 if args.quick else 50
repeats = 2 if args.quick else 5


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
print(
    json.dumps(
        {
            "values": {"gflops": 2 * N**3 * iters / best / 1e9},
            "details": {"iterations": iters, "repeats": repeats, "ms_per_matmul": best / iters * 1e3},
        }
    )
)
