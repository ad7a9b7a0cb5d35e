"""Python side of the GPU bench entries (bench/gpu-moco.ts): the same work in PyTorch eager on the
same GPU, as the official code runs it.

  --config r50    MoCo v2 step: torchvision ResNet-50 at 224x224, batch 256 (the paper's total batch;
                  BN statistics over 8 splits of 32, as 8 GPUs of 32 have them), K 65536, m 0.999,
                  T 0.2, MLP head
  --config cifar  the CIFAR-10 demo's step: ResNet-18 with the CIFAR stem, batch 512, 32x32, K 4096,
                  m 0.99, T 0.1, linear head, SplitBatchNorm(8)
  --config epoch  the CIFAR-10 demo's epoch: its DataLoader (CIFAR10Pair, its train transform, pin_memory,
                  one worker per core) over --data's CIFAR-10 binaries, and the cifar step

The model is moco/builder.py's MoCo with the demo's single-process shuffle (test/py/moco_parity.py's
ModelMoCo). Steps run in float32 (TF32 convolutions, PyTorch's default) and under
torch.autocast("cuda", bfloat16) with channels_last; cudnn.benchmark on. Each step ends with
loss.item() (main_moco.py's AverageMeter), the one synchronisation per step.
"""
import json
import os
import statistics
import sys
import time
from functools import partial

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision import transforms

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "py"))
from moco_parity import ModelMoCo, resnet18_small  # noqa: E402
from split_batch_norm import SplitBatchNorm  # noqa: E402

from bench_common import parse_args  # noqa: E402

_split_forward = SplitBatchNorm.forward
SplitBatchNorm.forward = lambda self, input: _split_forward(self, input.contiguous())


def extra(p):
    p.add_argument("--config", choices=["r50", "cifar", "epoch"], required=True)
    p.add_argument("--data", default=None)


args = parse_args(extra)
torch.backends.cudnn.benchmark = True
dev = torch.device("cuda")


def r50_model():
    encoder = partial(torchvision.models.resnet50, norm_layer=partial(SplitBatchNorm, num_splits=8))
    return ModelMoCo(encoder, dim=128, K=65536, m=0.999, T=0.2, mlp=True)


def cifar_model():
    encoder = partial(resnet18_small, width=64, in_channels=3, splits=8)
    return ModelMoCo(encoder, dim=128, K=4096, m=0.99, T=0.1, mlp=False)


def step(model, opt, q, k, amp):
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        loss = model(q, k)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


def measure_steps(build, batch, size, lr, warmup, steps):
    out = {}
    for amp in (False, True):
        torch.manual_seed(0)
        model = build().to(dev).train()
        if amp:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.SGD(model.parameters(), lr, momentum=0.9, weight_decay=1e-4)
        q = torch.randn(batch, 3, size, size, device=dev)
        k = torch.randn(batch, 3, size, size, device=dev)
        if amp:
            q, k = q.contiguous(memory_format=torch.channels_last), k.contiguous(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
        seconds = []
        for i in range(warmup + steps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            step(model, opt, q, k, amp)
            torch.cuda.synchronize()
            if i >= warmup:
                seconds.append(time.perf_counter() - t0)
        out["amp" if amp else "fp32"] = {
            "images_per_s": batch / statistics.median(seconds),
            "step_seconds": seconds,
            "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        }
        del model, opt, q, k
        torch.cuda.empty_cache()
    return {
        "values": {"images_per_s": out["fp32"]["images_per_s"], "images_per_s_auto": out["amp"]["images_per_s"]},
        "details": {"batch": batch, "size": size, **out, "gpu": torch.cuda.get_device_name(), "torch": torch.__version__},
    }


def synthetic_cifar(data):
    """The CIFAR-10 binaries bench/gpu-moco.ts writes (the same formula), made here if absent."""
    from_file = os.path.join(data, "data_batch_1.bin")
    if not os.path.exists(from_file):
        os.makedirs(data, exist_ok=True)
        for name, first, n in [(f"data_batch_{i + 1}.bin", i * 10000, 10000) for i in range(5)] + [("test_batch.bin", 50000, 10000)]:
            r = np.arange(first, first + n, dtype=np.int64)[:, None]
            p = np.arange(3072, dtype=np.int64)[None, :]
            pixels = ((r * 131 + p * 7 + (p // 96) * r) % 256).astype(np.uint8)
            labels = (r % 10).astype(np.uint8)
            np.concatenate([labels, pixels], axis=1).tofile(os.path.join(data, name))
    records = np.concatenate([np.fromfile(os.path.join(data, f"data_batch_{i + 1}.bin"), dtype=np.uint8).reshape(-1, 3073) for i in range(5)])
    return records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


class CIFAR10Pair(torch.utils.data.Dataset):
    """The demo's CIFAR10Pair: two transforms of one PIL image."""

    def __init__(self, images, transform):
        self.images, self.transform = images, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i])
        return self.transform(img), self.transform(img)


def measure_epoch(epochs=2):
    images = synthetic_cifar(args.data)
    train_transform = transforms.Compose([
        transforms.RandomResizedCrop(32),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize([0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010]),
    ])
    workers = os.cpu_count() or 1
    loader = torch.utils.data.DataLoader(CIFAR10Pair(images, train_transform), batch_size=512, shuffle=True,
                                         num_workers=workers, pin_memory=True, drop_last=True, persistent_workers=True)
    torch.manual_seed(0)
    model = cifar_model().to(dev).train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), 0.06, momentum=0.9, weight_decay=5e-4)
    seconds = []
    for _ in range(epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for q, k in loader:
            q = q.cuda(non_blocking=True).contiguous(memory_format=torch.channels_last)
            k = k.cuda(non_blocking=True).contiguous(memory_format=torch.channels_last)
            step(model, opt, q, k, True)
        torch.cuda.synchronize()
        seconds.append(time.perf_counter() - t0)
    return {"values": {"epoch_seconds": seconds[-1]},
            "details": {"epoch_seconds": seconds, "workers": workers, "images": len(images), "batch": 512,
                        "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}}


if args.config == "r50":
    result = measure_steps(r50_model, 256, 224, 0.03, 3 if not args.quick else 1, 10 if not args.quick else 2)
elif args.config == "cifar":
    result = measure_steps(cifar_model, 512, 32, 0.06, 5 if not args.quick else 1, 20 if not args.quick else 2)
else:
    result = measure_epoch()
print(json.dumps(result))
