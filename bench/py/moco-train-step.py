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
both with split BN over 8 splits and dim 128.
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
times = []
cpu_times = []
loss_value = 0.0
for i in range(warmup + steps):
    t0 = time.perf_counter()
    c0 = time.process_time()
    loss = model(im_q, im_k)
    loss_value = loss.item()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if i >= warmup:
        times.append(time.perf_counter() - t0)
        cpu_times.append(time.process_time() - c0)
print(
    json.dumps(
        {
            "values": {
                "images_per_s": BATCH / statistics.median(times),
                "images_per_cpu_s": BATCH / statistics.median(cpu_times),
                "peak_rss_mib": status_mib("VmHWM"),
            },
            "details": {
                "config": args.config,
                **c,
                "warmup": warmup,
                "steps": steps,
                "step_seconds": times,
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
