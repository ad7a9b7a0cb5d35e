"""Python side of bench entry op-overhead: add of two 1-element float32 tensors per call."""
import argparse
import json
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, required=True)
parser.add_argument("--quick", action="store_true")
args = parser.parse_args()
torch.set_num_threads(args.threads)

n = 20_000 if args.quick else 200_000
repeats = 2 if args.quick else 5
a = torch.ones(1)
b = torch.ones(1)


def operator_loop():
    for _ in range(n):
        c = a + b  # noqa: F841  (the previous result is freed when c is rebound)


def function_loop():
    add = torch.add
    for _ in range(n):
        c = add(a, b)  # noqa: F841


def best_us(fn):
    fn()  # warmup
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e6 / n


operator = best_us(operator_loop)
function = best_us(function_loop)
print(
    json.dumps(
        {
            # The faster of Python's two spellings is the figure to beat.
            "values": {"us_per_call": min(operator, function)},
            "details": {"iterations": n, "repeats": repeats, "us_per_call_a_plus_b": operator, "us_per_call_torch_add": function},
        }
    )
)
