"""Python side of bench entry embed-throughput: torchvision resnet18 with the CIFAR stem, eval mode,
torch.no_grad(), batch 256 of 32×32 → L2-normalised features. Measured in float32, then
(images_per_s_auto) under torch.autocast("cpu", bfloat16) with channels_last, features cast to float32
before the norm."""
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
checksum = 0.0


def measure(amp):
    global checksum
    inputs = x.to(memory_format=torch.channels_last) if amp else x
    if amp:
        model.to(memory_format=torch.channels_last)
    seconds = []
    for i in range(warmup + batches):
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            raw = model(inputs)
        features = torch.nn.functional.normalize(raw.float(), dim=1)
        checksum = features[:1].sum().item()
        if i >= warmup:
            seconds.append(time.perf_counter() - t0)
    return seconds


times = measure(False)
amp_times = measure(True)
print(
    json.dumps(
        {
            "values": {
                "images_per_s": BATCH / statistics.median(times),
                "images_per_s_auto": BATCH / statistics.median(amp_times),
                "peak_rss_mib": status_mib("VmHWM"),
            },
            "details": {
                "batch": BATCH,
                "warmup": warmup,
                "batches": batches,
                "batch_seconds": times,
                "batch_seconds_amp": amp_times,
                "checksum": checksum,
            },
        }
    )
)
