"""Python side of bench entry resnet18-train-step: torchvision resnet18 with the CIFAR stem,
batch 64 on 32×32, forward + cross-entropy + backward + SGD(momentum 0.9, weight decay 5e-4). Measured
in float32, then (images_per_s_amp) under torch.autocast("cpu", bfloat16) with channels_last, torch's
AMP recipe: forward and loss inside autocast, backward outside."""
import json
import statistics
import time

import torch
import torchvision

from bench_common import parse_args, status_mib

args = parse_args()


BATCH = 64
warmup = 1 if args.quick else 2
steps = 2 if args.quick else 5
torch.manual_seed(0)
model = torchvision.models.resnet18(num_classes=10)
model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
model.maxpool = torch.nn.Identity()
model.train()
x = torch.randn(BATCH, 3, 32, 32)
y = torch.randint(0, 10, (BATCH,))
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
rss_before = status_mib("VmRSS")
cpu_times = []
loss = 0.0


def measure(amp):
    global loss
    inputs = x.to(memory_format=torch.channels_last) if amp else x
    if amp:
        model.to(memory_format=torch.channels_last)
    seconds = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = torch.nn.functional.cross_entropy(model(inputs), y)
        out.backward()
        loss = out.item()
        opt.step()
        if i >= warmup:
            seconds.append(time.perf_counter() - t0)
            if not amp:
                cpu_times.append(time.process_time() - c0)
    return seconds


times = measure(False)
amp_times = measure(True)
print(
    json.dumps(
        {
            "values": {
                "images_per_s": BATCH / statistics.median(times),
                "images_per_s_auto": BATCH / statistics.median(amp_times),
                "images_per_cpu_s": BATCH / statistics.median(cpu_times),
                "peak_rss_mib": status_mib("VmHWM"),
            },
            "details": {
                "batch": BATCH,
                "warmup": warmup,
                "steps": steps,
                "step_seconds": times,
                "step_seconds_amp": amp_times,
                "step_cpu_seconds": cpu_times,
                "best_images_per_s": BATCH / min(times),
                "rss_mib_after_setup": rss_before,
                "rss_mib_end": status_mib("VmRSS"),
                "last_loss": loss,
            },
        }
    )
)
