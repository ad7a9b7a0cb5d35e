"""Python side of bench entries moco-cifar-step and moco-fmnist-step: one MoCo training step with both
views already augmented (fixed random tensors), as the official code runs it.

The model is facebookresearch/moco's moco/builder.py MoCo (key encoder a frozen copy updated by
momentum, the (dim, K) queue, InfoNCE logits, the v2 MLP head by replacing fc) with the single-process
parts of the official CIFAR-10 demo (colab/moco_cifar10_demo.ipynb): `_batch_shuffle_single_gpu` /
`_batch_unshuffle_single_gpu` and `SplitBatchNorm` (test/py/split_batch_norm.py); copied from test/py/moco_parity.py, whose
implementation is checked against ours step by step. The backbone is torchvision's ResNet (BasicBlock,
[2, 2, 2, 2]) with a base width, input channels and the demo's CIFAR stem. The step is main_moco.py's
train(): output, target = model(im_q, im_k); loss = CrossEntropyLoss(output, target);
optimizer.zero_grad(); loss.backward(); optimizer.step(), with SGD(momentum 0.9, weight decay 5e-4).

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
import torch.nn as nn
from torchvision.models import resnet as tvr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "py"))
from split_batch_norm import SplitBatchNorm  # noqa: E402

from bench_common import parse_args, status_mib

CONFIGS = {
    "cifar": dict(batch=64, size=32, in_channels=3, width=64, splits=8, dim=128, K=4096, m=0.99, T=0.1,
                  mlp=False, lr=0.06),
    "fmnist": dict(batch=256, size=28, in_channels=1, width=16, splits=8, dim=128, K=4096, m=0.99, T=0.2,
                   mlp=True, lr=0.03),
}

args = parse_args(lambda parser: parser.add_argument("--config", choices=sorted(CONFIGS), required=True))
c = CONFIGS[args.config]


class WidthResNet(tvr.ResNet):
    """torchvision's ResNet with a base width, input channels and the demo's CIFAR stem."""

    def __init__(self, block, layers, width, in_channels, num_classes, norm_layer):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width * block.expansion, num_classes)
        # torchvision's initialisation (ResNet.__init__)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def resnet18_small(num_classes, width, in_channels, splits):
    norm = partial(SplitBatchNorm, num_splits=splits) if splits > 1 else nn.BatchNorm2d
    return WidthResNet(tvr.BasicBlock, [2, 2, 2, 2], width, in_channels, num_classes, norm)


class MoCo(nn.Module):
    """moco/builder.py's MoCo, with the CIFAR demo's single-process batch shuffle."""

    def __init__(self, base_encoder, dim=128, K=65536, m=0.999, T=0.07, mlp=False):
        super().__init__()
        self.K = K
        self.m = m
        self.T = T
        self.encoder_q = base_encoder(num_classes=dim)
        self.encoder_k = base_encoder(num_classes=dim)
        if mlp:  # hack: brute-force replacement
            dim_mlp = self.encoder_q.fc.weight.shape[1]
            self.encoder_q.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_q.fc)
            self.encoder_k.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_k.fc)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not update by gradient
        self.register_buffer("queue", torch.randn(dim, K))
        self.queue = nn.functional.normalize(self.queue, dim=0)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1. - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        self.queue[:, ptr:ptr + batch_size] = keys.T
        ptr = (ptr + batch_size) % self.K  # move pointer
        self.queue_ptr[0] = ptr

    @torch.no_grad()
    def _batch_shuffle_single_gpu(self, x):
        idx_shuffle = torch.randperm(x.shape[0])
        idx_unshuffle = torch.argsort(idx_shuffle)
        return x[idx_shuffle], idx_unshuffle

    @torch.no_grad()
    def _batch_unshuffle_single_gpu(self, x, idx_unshuffle):
        return x[idx_unshuffle]

    def forward(self, im_q, im_k):
        q = self.encoder_q(im_q)  # queries: NxC
        q = nn.functional.normalize(q, dim=1)
        with torch.no_grad():  # no gradient to keys
            self._momentum_update_key_encoder()  # update the key encoder
            im_k, idx_unshuffle = self._batch_shuffle_single_gpu(im_k)
            k = self.encoder_k(im_k)  # keys: NxC
            k = nn.functional.normalize(k, dim=1)
            k = self._batch_unshuffle_single_gpu(k, idx_unshuffle)
        l_pos = torch.einsum("nc,nc->n", [q, k]).unsqueeze(-1)
        l_neg = torch.einsum("nc,ck->nk", [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1)
        logits /= self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long)
        self._dequeue_and_enqueue(k)
        return logits, labels


BATCH = c["batch"]
warmup = 1 if args.quick else 2
steps = 2 if args.quick else 5
torch.manual_seed(0)
encoder = partial(resnet18_small, width=c["width"], in_channels=c["in_channels"], splits=c["splits"])
model = MoCo(encoder, dim=c["dim"], K=c["K"], m=c["m"], T=c["T"], mlp=c["mlp"])
model.train()
assert c["K"] % BATCH == 0 and BATCH % c["splits"] == 0
criterion = nn.CrossEntropyLoss()
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
    output, target = model(im_q, im_k)
    loss = criterion(output, target)
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
