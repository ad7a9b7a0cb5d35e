"""What a MoCo step of the moco-fmnist-step network costs against the network's own passes, in Python
PyTorch (not a bench entry: run by hand, for issue #15's targets).

The network is moco-fmnist-step's (width-16 ResNet-18, CIFAR stem, 1 channel, 28x28, batch 256),
with plain BatchNorm and with the demo's split BN over 8 splits. For each, in float32 and under
torch.autocast("cpu", bfloat16) with channels_last (split BN made contiguous first, as
bench/py/moco-train-step.py does), images/s of:
  forward  a forward pass without grad (what the key encoder costs);
  train    a supervised step: forward, cross-entropy on 10 classes, backward, SGD (what the query
           encoder costs);
  moco     the official MoCo step (test/py/moco_parity.py's ModelMoCo, K 4096, MLP head), as
           moco-train-step.py measures it;
  passes   the MoCo step predicted from the other two: one train step and one forward per image,
           1 / (1/train + 1/forward), i.e. the step if everything but the network's passes were free.

Usage: /usr/bin/python3 bench/py/network-passes.py [--threads N]   (prints one line per setting)
"""
import argparse
import os
import statistics
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "py"))
from moco_parity import ModelMoCo, resnet18_small  # noqa: E402
import split_batch_norm  # noqa: E402

_split_bn_forward = split_batch_norm.SplitBatchNorm.forward
split_batch_norm.SplitBatchNorm.forward = lambda self, input: _split_bn_forward(self, input.contiguous())

parser = argparse.ArgumentParser()
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)

BATCH = 256
torch.manual_seed(0)
im_q = torch.randn(BATCH, 1, 28, 28)
im_k = torch.randn(BATCH, 1, 28, 28)
labels = torch.randint(0, 10, (BATCH,))


def rate(fn, steps=5):
    fn()
    fn()
    seconds = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return BATCH / statistics.median(seconds)


print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
for splits in (1, 8):
    for amp in (False, True):
        layout = torch.channels_last if amp else torch.contiguous_format
        q = im_q.to(memory_format=layout)
        k = im_k.to(memory_format=layout)
        net = resnet18_small(num_classes=10, width=16, in_channels=1, splits=splits).to(memory_format=layout)
        opt = torch.optim.SGD(net.parameters(), 0.03, momentum=0.9, weight_decay=5e-4)

        def forward():
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                net(q)

        def train():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = F.cross_entropy(net(q), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        encoder = partial(resnet18_small, width=16, in_channels=1, splits=splits)
        model = ModelMoCo(encoder, dim=128, K=4096, m=0.99, T=0.2, mlp=True).to(memory_format=layout)
        model_opt = torch.optim.SGD(model.parameters(), 0.03, momentum=0.9, weight_decay=5e-4)

        def moco():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = model(q, k)
            model_opt.zero_grad(set_to_none=True)
            loss.backward()
            model_opt.step()

        f, t, m = rate(forward), rate(train), rate(moco)
        passes = 1 / (1 / t + 1 / f)
        precision = "bf16+CL" if amp else "fp32   "
        print(
            f"split BN {splits} {precision}: forward {f:7.1f}  train {t:7.1f}  moco {m:7.1f}  "
            f"passes {passes:7.1f}  moco/passes {m / passes:.2f}  images/s",
            flush=True,
        )
