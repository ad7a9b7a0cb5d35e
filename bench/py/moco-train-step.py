"""Python side of bench entries moco-cifar-step and moco-fmnist-step: one MoCo training step with both
views already augmented (fixed random tensors), as the official code runs it.

The model is facebookresearch/moco's moco/builder.py MoCo (key encoder a frozen copy updated by
momentum, the (dim, K) queue, InfoNCE logits, the v2 MLP head by replacing fc) with the single-process
parts of the official CIFAR-10 demo (colab/moco_cifar10_demo.ipynb): `_batch_shuffle_single_gpu` /
`_batch_unshuffle_single_gpu` and `SplitBatchNorm`: test/py/moco_parity.py's `ModelMoCo`, the
reference the parity tests check ours against step by step. The backbone is torchvision's ResNet (BasicBlock,
[2, 2, 2, 2]) with a base width, input channels and the demo's CIFAR stem. The step is main_moco.py's
train(): the InfoNCE cross-entropy of model(im_q, im_k); optimizer.zero_grad(); loss.backward();
optimizer.step(), with SGD(momentum 0.9, weight decay 5e-4).

  --config cifar   resnet18 (width 64), 3 channels, batch 64, 32x32, K 4096, m 0.99, T 0.1, linear head
  --config fmnist  width-16 resnet18, 1 channel, batch 256, 28x28, K 4096, m 0.99, T 0.2, MLP head
both with split BN over 8 splits and dim 128. Measured in float32, then (images_per_s_auto) under
torch.autocast("cpu", bfloat16) with channels_last: forward and loss inside autocast, backward outside.
"""
import json
import os
import statistics
import sys
import time
from functools import partial

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "py"))
from moco_parity import ModelMoCo, resnet18_small  # noqa: E402

from bench_common import parse_args, status_mib
import split_batch_norm  # noqa: E402

# The demo's SplitBatchNorm views its input as [N/s, C*s, H, W], which a channels_last tensor refuses
# ("view size is not compatible"): under channels_last its input is made contiguous first (the copy
# .reshape would make), the cheapest way the official model runs in that layout at all.
_split_bn_forward = split_batch_norm.SplitBatchNorm.forward
split_batch_norm.SplitBatchNorm.forward = lambda self, input: _split_bn_forward(self, input.contiguous())

CONFIGS = {
    "cifar": dict(batch=64, size=32, in_channels=3, width=64, splits=8, dim=128, K=4096, m=0.99, T=0.1,
                  mlp=False, lr=0.06),
    "fmnist": dict(batch=256, size=28, in_channels=1, width=16, splits=8, dim=128, K=4096, m=0.99, T=0.2,
                   mlp=True, lr=0.03),
}

args = parse_args(lambda parser: parser.add_argument("--config", choices=sorted(CONFIGS), required=True))
c = CONFIGS[args.config]


BATCH = c["batch"]
warmup = 1 if args.quick else 2
steps = 2 if args.quick else 5
torch.manual_seed(0)
encoder = partial(resnet18_small, width=c["width"], in_channels=c["in_channels"], splits=c["splits"])
model = ModelMoCo(encoder, dim=c["dim"], K=c["K"], m=c["m"], T=c["T"], mlp=c["mlp"])
model.train()
assert c["K"] % BATCH == 0 and BATCH % c["splits"] == 0
# zero_grad(set_to_none=True): what our SGD's zeroGrad does (and torch >= 2.0's default).
optimizer = torch.optim.SGD(model.parameters(), c["lr"], momentum=0.9, weight_decay=5e-4)
im_q = torch.randn(BATCH, c["in_channels"], c["size"], c["size"])
im_k = torch.randn(BATCH, c["in_channels"], c["size"], c["size"])
rss_before = status_mib("VmRSS")
cpu_times = []
loss_value = 0.0


def measure(amp):
    global loss_value
    q = im_q.to(memory_format=torch.channels_last) if amp else im_q
    k = im_k.to(memory_format=torch.channels_last) if amp else im_k
    if amp:
        model.to(memory_format=torch.channels_last)
    seconds = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = model(q, k)
        loss_value = loss.item()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
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
                "config": args.config,
                **c,
                "warmup": warmup,
                "steps": steps,
                "step_seconds": times,
                "step_seconds_amp": amp_times,
                "step_cpu_seconds": cpu_times,
                "best_images_per_s": BATCH / min(times),
                "rss_mib_after_setup": rss_before,
                "rss_mib_end": status_mib("VmRSS"),
                "last_loss": loss_value,
                "queue_ptr_end": int(model.queue_ptr),
            },
        }
    )
)
