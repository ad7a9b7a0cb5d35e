"""Python side of bench entry embed-throughput: torchvision resnet18 with the CIFAR stem, eval mode,
torch.no_grad(), batch 256 of 32×32 → L2-normalised features."""
import json
import statistics
import time

import torch
import torchvision

from bench_common import parse_args, status_mib

args = parse_args()


BATCH = 256
warmup = 1
batches = 2 if args.quick else 5
torch.manual_seed(0)
model = torchvision.models.resnet18()
model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
model.maxpool = torch.nn.Identity()
model.fc = torch.nn.Identity()
model.eval()
x = torch.randn(BATCH, 3, 32, 32)
times = []
checksum = 0.0
for i in range(warmup + batches):
    t0 = time.perf_counter()
    with torch.no_grad():
        features = torch.nn.functional.normalize(model(x), dim=1)
        checksum = features[:1].sum().item()
    if i >= warmup:
        times.append(time.perf_counter() - t0)
print(
    json.dumps(
        {
            "values": {"images_per_s": BATCH / statistics.median(times), "peak_rss_mib": status_mib("VmHWM")},
            "details": {"batch": BATCH, "warmup": warmup, "batches": batches, "batch_seconds": times, "checksum": checksum},
        }
    )
)
