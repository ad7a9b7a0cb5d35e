"""The PyTorch side of test/nn-parity.test.ts.

Usage: nn_parity.py DIR. Reads DIR/request.json, writes one torch.save file per job into DIR.
Inputs come from our `save` (torch.save format) and results go back the same way, so every
weight crosses the real checkpoint path in both directions.

Jobs:
  cases   A ResNet built like the official code builds it (torchvision, or torchvision plus the MoCo
          CIFAR demo's stem and SplitBatchNorm), our weights loaded with strict=True; eval output,
          then train output, loss, every gradient and the buffers after one training step.
  tv      torch.manual_seed(seed) + torchvision.models.<arch>(), one training forward under no_grad
          (parameters stay as initialised: init parity; BN buffers move), the state dict and an eval
          output (torchvision -> ours).
  keys    state-dict keys, shapes and dtypes of torchvision's five ResNets.
  split   SplitBatchNorm reference: plain BatchNorm per split (the samples n with n % S == s).
  bn      BatchNorm2d variants over several training forwards (momentum=None, no affine, no stats).
  layers  Conv2d / Linear default init after torch.manual_seed, and their outputs.
"""

import json
import os
import sys
import time
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models import resnet as tvr

from split_batch_norm import SplitBatchNorm


ARCHS = {
    "resnet18": (tvr.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (tvr.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (tvr.Bottleneck, [3, 4, 6, 3]),
    "resnet101": (tvr.Bottleneck, [3, 4, 23, 3]),
    "resnet152": (tvr.Bottleneck, [3, 8, 36, 3]),
}


class WidthResNet(tvr.ResNet):
    """torchvision's ResNet (its blocks, _make_layer and forward) with a base width, input channels
    and the CIFAR stem; only for the configurations torchvision itself cannot build."""

    def __init__(self, block, layers, width, in_channels, cifar_stem, num_classes, norm_layer):
        nn.Module.__init__(self)
        self._norm_layer = norm_layer or nn.BatchNorm2d
        self.inplanes = width
        self.dilation = 1
        self.groups = 1
        self.base_width = 64
        if cifar_stem:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if cifar_stem else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0])
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        dim = 8 * width * block.expansion
        self.fc = nn.Linear(dim, num_classes) if num_classes > 0 else nn.Identity()


def build(cfg):
    arch = cfg["arch"]
    width = cfg.get("width", 64)
    in_channels = cfg.get("inChannels", 3)
    cifar = cfg.get("cifarStem", False)
    num_classes = cfg.get("numClasses", 1000)
    splits = cfg.get("splits", 0)
    norm = partial(SplitBatchNorm, num_splits=splits) if splits > 0 else None
    if width == 64 and in_channels == 3 and num_classes > 0:
        # What the official code does: torchvision's model; the CIFAR demo swaps the stem.
        model = getattr(torchvision.models, arch)(num_classes=num_classes, norm_layer=norm)
        if cifar:
            model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            model.maxpool = nn.Identity()
        return model
    block, layers = ARCHS[arch]
    return WidthResNet(block, layers, width, in_channels, cifar, num_classes, norm)


def run_case(job, d):
    data = torch.load(os.path.join(d, job["name"] + ".in.pt"))
    model = build(job["config"])
    model.load_state_dict(data["state_dict"], strict=True)
    x, target = data["x"], data["target"]
    out = {}
    model.eval()
    with torch.no_grad():
        out["eval"] = model(x)
    model.train()
    y = model(x)
    loss = F.cross_entropy(y, target)
    loss.backward()
    out["train"] = y.detach()
    out["loss"] = loss.detach()
    out["param_names"] = [n for n, _ in model.named_parameters()]
    out["grads"] = {n: p.grad for n, p in model.named_parameters()}
    # Parameters are unchanged by a forward; the buffers carry what training changed.
    out["buffers"] = {n: b for n, b in model.named_buffers()}
    torch.save(out, os.path.join(d, job["name"] + ".out.pt"))


def run_tv(job, d):
    torch.manual_seed(job["seed"])
    model = getattr(torchvision.models, job["arch"])()
    x = torch.randn(job["shape"])
    # One training forward (no_grad: parameters keep their initial values) moves the BN buffers.
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()
    with torch.no_grad():
        y = model(x)
    torch.save({"state_dict": model.state_dict(), "x": x, "eval": y}, os.path.join(d, "tv_" + job["arch"] + ".pt"))


def run_keys(archs, d):
    # Only the names, shapes and dtypes matter here: skip the random initialisation.
    nn.Conv2d.reset_parameters = lambda self: None
    nn.Linear.reset_parameters = lambda self: None
    saved = nn.init.kaiming_normal_
    nn.init.kaiming_normal_ = lambda *a, **k: None
    out = {}
    for arch in archs:
        sd = getattr(torchvision.models, arch)().state_dict()
        out[arch] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]
    nn.init.kaiming_normal_ = saved
    with open(os.path.join(d, "keys.json"), "w") as f:
        json.dump(out, f)


def run_split(d):
    data = torch.load(os.path.join(d, "split.in.pt"))
    x = data["x"].clone().requires_grad_(True)
    w = data["weight"].clone().requires_grad_(True)
    b = data["bias"].clone().requires_grad_(True)
    s, momentum, eps = data["splits"], data["momentum"], data["eps"]
    out = torch.empty_like(x)
    means, vars_ = [], []
    pieces = []
    for k in range(s):
        rm, rv = data["running_mean"].clone(), data["running_var"].clone()
        pieces.append(F.batch_norm(x[k::s], rm, rv, w, b, True, momentum, eps))
        means.append(rm)
        vars_.append(rv)
    out = torch.stack(pieces, 1).reshape(x.shape)  # sample a*s + k <- pieces[k][a]
    (out * data["upstream"]).sum().backward()
    torch.save({"out": out.detach(), "grad_x": x.grad, "grad_weight": w.grad, "grad_bias": b.grad,
                "running_mean": torch.stack(means).mean(0), "running_var": torch.stack(vars_).mean(0)},
               os.path.join(d, "split.out.pt"))
    # The demo's own class must agree with that reference too.
    demo = SplitBatchNorm(x.shape[1], s, momentum=momentum, eps=eps)
    with torch.no_grad():
        demo.weight.copy_(data["weight"])
        demo.bias.copy_(data["bias"])
        demo.running_mean.copy_(data["running_mean"])
        demo.running_var.copy_(data["running_var"])
    y = demo(data["x"])
    assert torch.allclose(y, out, rtol=1e-5, atol=1e-6), "demo SplitBatchNorm != per-split reference"
    assert torch.allclose(demo.running_mean, torch.stack(means).mean(0), rtol=1e-6, atol=1e-7)


def run_bn(job, d):
    data = torch.load(os.path.join(d, job["name"] + ".in.pt"))
    cfg = job["config"]
    bn = nn.BatchNorm2d(cfg["numFeatures"], momentum=cfg.get("momentum", 0.1), affine=cfg.get("affine", True),
                        track_running_stats=cfg.get("trackRunningStats", True))
    outs = []
    for x in data["inputs"]:
        outs.append(bn(x).detach())
    bn.eval()
    outs.append(bn(data["inputs"][0]).detach())
    torch.save({"outs": outs, "state": bn.state_dict()}, os.path.join(d, job["name"] + ".out.pt"))


def run_layers(job, d):
    data = torch.load(os.path.join(d, "layers.in.pt"))
    torch.manual_seed(job["seed"])
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)
    conv_nb = nn.Conv2d(3, 5, (3, 1), bias=False)
    lin = nn.Linear(7, 3)
    pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
    gap = nn.AdaptiveAvgPool2d((2, 3))
    torch.save({
        "conv": conv.state_dict(), "conv_nb": conv_nb.state_dict(), "lin": lin.state_dict(),
        "conv_out": conv(data["x4"]).detach(), "conv_nb_out": conv_nb(data["x3"]).detach(),
        "lin_out": lin(data["v"]).detach(), "pool_out": pool(data["x4"]), "gap_out": gap(data["x4"]),
        "flat_out": nn.Flatten()(data["x4"]),
    }, os.path.join(d, "layers.out.pt"))


def main():
    started = time.perf_counter()
    d = sys.argv[1]
    with open(os.path.join(d, "request.json")) as f:
        req = json.load(f)
    torch.set_num_threads(req["threads"])
    timings = []

    def timed(label, fn, *args):
        start = time.perf_counter()
        fn(*args)
        timings.append(f"{label} {time.perf_counter() - start:.2f}s")

    for job in req.get("layers", []):
        timed("layers", run_layers, job, d)
    for job in req.get("cases", []):
        timed(job["name"], run_case, job, d)
    for job in req.get("tv", []):
        timed("tv_" + job["arch"], run_tv, job, d)
    for job in req.get("bn", []):
        timed(job["name"], run_bn, job, d)
    if req.get("split"):
        timed("split", run_split, d)
    if req.get("keys"):
        timed("keys", run_keys, req["keys"], d)
    print("timings: " + ", ".join(timings) + f"; total {time.perf_counter() - started:.2f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
