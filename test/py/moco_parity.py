"""The PyTorch side of test/moco-parity.test.ts: MoCo training steps run by the official algorithm.

Usage:
  moco_parity.py DIR       Reads DIR/request.json; for each variant, DIR/<name>.in.pt (our initial
                           state dict, our CPU generator state, the input batches); runs the steps
                           and writes, after step i, DIR/<name>.step<i>.pt (loss, logits of each
                           direction, the model's state dict, the optimizer's state dict, the CPU
                           generator state), then DIR/<name>.out.pt (losses, queue pointers,
                           parameter names).
  moco_parity.py --collapse [options]
                           Not part of the test: a longer PyTorch-only run of the tiny configuration
                           of the loss-at-ln(K+1) question, on random images or on Fashion-MNIST
                           (see collapse_main).
  moco_parity.py --replay FILE [options]
                           Not part of the test: replays a run recorded by our side (initial state,
                           generator, every step's views and lr) through the official algorithm,
                           printing both loss curves; optionally saves checkpoints after chosen
                           steps, or perturbs the initial weights by 1e-6 (see replay_main).

The model is the official code, not a port of ours: `ModelMoCo` is facebookresearch/moco
`moco/builder.py` (MLP head: `fc` replaced by Sequential(Linear(d, d), ReLU, fc), key encoder a second
encoder whose parameters are copied and frozen) with the single-process parts of the official CIFAR-10
demo (colab/moco_cifar10_demo.ipynb: `_batch_shuffle_single_gpu` / `_batch_unshuffle_single_gpu`,
`SplitBatchNorm`, the symmetric loss of `ModelMoCo.forward`, keys enqueued as cat([k1, k2])). The
backbone is torchvision's ResNet class (its BasicBlock, _make_layer and forward) with a base width,
one input channel and the demo's CIFAR stem (3x3 stride-1 conv1, no max-pool); our weights load into
it with strict=True. The random permutations come from the CPU generator, restored from our state, so
both sides shuffle the keys with the same permutations only if they draw them in the same order.
"""

import argparse
import json
import math
import os
import sys
from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models import resnet as tvr

from split_batch_norm import SplitBatchNorm


class WidthResNet(tvr.ResNet):
    """torchvision's ResNet with a base width, input channels and the demo's CIFAR stem (as
    test/py/nn_parity.py; copied so that this file stands alone)."""

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
        # torchvision's initialisation (the parity test loads our weights over it; --collapse runs use it)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def resnet18_small(num_classes, width, in_channels, splits):
    norm = partial(SplitBatchNorm, num_splits=splits) if splits > 1 else nn.BatchNorm2d
    return WidthResNet(tvr.BasicBlock, [2, 2, 2, 2], width, in_channels, num_classes, norm)


class ModelMoCo(nn.Module):
    """moco/builder.py's MoCo with the CIFAR demo's single-process shuffle and symmetric loss."""

    def __init__(self, base_encoder, dim=128, K=65536, m=0.999, T=0.07, mlp=False, symmetric=False):
        super().__init__()
        self.K = K
        self.m = m
        self.T = T
        self.symmetric = symmetric
        self.encoder_q = base_encoder(num_classes=dim)
        self.encoder_k = base_encoder(num_classes=dim)
        if mlp:  # hack: brute-force replacement (builder.py)
            dim_mlp = self.encoder_q.fc.weight.shape[1]
            self.encoder_q.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_q.fc)
            self.encoder_k.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), self.encoder_k.fc)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data.copy_(param_q.data)  # initialize
            param_k.requires_grad = False  # not update by gradient
        self.register_buffer("queue", torch.randn(dim, K))
        self.queue = nn.functional.normalize(self.queue, dim=0)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.record = None  # when a list: the logits of each contrastive_loss call are appended

    @torch.no_grad()
    def _momentum_update_key_encoder(self):
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            param_k.data = param_k.data * self.m + param_q.data * (1. - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys):
        batch_size = keys.shape[0]
        ptr = int(self.queue_ptr)
        assert self.K % batch_size == 0  # for simplicity
        self.queue[:, ptr:ptr + batch_size] = keys.t()  # transpose
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

    def contrastive_loss(self, im_q, im_k):
        q = self.encoder_q(im_q)  # queries: NxC
        q = nn.functional.normalize(q, dim=1)
        with torch.no_grad():  # no gradient to keys
            im_k_, idx_unshuffle = self._batch_shuffle_single_gpu(im_k)
            k = self.encoder_k(im_k_)  # keys: NxC
            k = nn.functional.normalize(k, dim=1)
            k = self._batch_unshuffle_single_gpu(k, idx_unshuffle)
        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])
        logits = torch.cat([l_pos, l_neg], dim=1)
        logits /= self.T
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
        loss = nn.CrossEntropyLoss()(logits, labels)
        if self.record is not None:
            self.record.append(logits.detach().clone())
        return loss, q, k

    def forward(self, im1, im2):
        with torch.no_grad():
            self._momentum_update_key_encoder()
        if self.symmetric:
            loss_12, q1, k2 = self.contrastive_loss(im1, im2)
            loss_21, q2, k1 = self.contrastive_loss(im2, im1)
            loss = loss_12 + loss_21
            k = torch.cat([k1, k2], dim=0)
        else:
            loss, q, k = self.contrastive_loss(im1, im2)
        self._dequeue_and_enqueue(k)
        return loss


def build(s):
    encoder = partial(resnet18_small, width=s["width"], in_channels=s["inChannels"], splits=s["splits"])
    return ModelMoCo(encoder, dim=s["dim"], K=s["K"], m=s["m"], T=s["T"], mlp=s["mlp"], symmetric=s["symmetric"])


def run_variant(job, d, req):
    data = torch.load(os.path.join(d, job["name"] + ".in.pt"))
    s = {**req["settings"], **job}
    model = build(s)
    model.load_state_dict(data["state_dict"], strict=True)
    device = req.get("device", "cpu")
    if device != "cpu":  # as the TS side: float32 in float32, not TF32
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    model.to(device)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), req["lr"], momentum=req["momentum"],
                                weight_decay=req["weightDecay"])
    torch.set_rng_state(data["rng_state"])  # after every draw of the construction above
    losses, ptrs = [], []
    for step, (im1, im2) in enumerate(data["inputs"]):
        im1, im2 = im1.to(device), im2.to(device)
        model.record = []
        loss = model(im1, im2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
        ptrs.append(int(model.queue_ptr))
        # Everything a resumed run needs, after each step: the TS side restarts from here.
        torch.save({
            "loss": loss.detach(),
            "logits": model.record,
            "state_dict": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng_state": torch.get_rng_state(),
        }, os.path.join(d, f"{job['name']}.step{step}.pt"))
    torch.save({
        "losses": torch.stack(losses),
        "ptrs": ptrs,
        "param_names": [n for n, _ in model.named_parameters()],
    }, os.path.join(d, job["name"] + ".out.pt"))


def main(d):
    with open(os.path.join(d, "request.json")) as f:
        req = json.load(f)
    torch.set_num_threads(req["threads"])
    for job in req["variants"]:
        run_variant(job, d, req)


# ---- the collapse experiment ----------------------------------------------------------------------

def collapse_main(argv):
    """A longer run of a tiny configuration (the report's question: does the loss sit at ln(K+1),
    every logit equal, with a high learning rate?). Defaults = `moco pretrain --width 4 --batch-size 32
    --bn-splits 4 --moco-k 64 --moco-m 0.9 --lr 0.1` with the fashion-mnist preset (dim 128, T 0.2,
    MLP head, wd 5e-4, 28x28 one-channel images). Data: Fashion-MNIST with torchvision's augmentation
    (--fashion DIR), or a fixed pool of random images (normal, or smooth blobs with --smooth) whose
    two views are the image with independent noise, a random flip and a random shift. White noise
    is a poor proxy: global average pooling makes every image's features nearly the same. Prints the loss, the spread of the logits, how many of the MLP head's hidden
    ReLUs and of the backbone's pooled features are still active."""
    p = argparse.ArgumentParser(prog="moco_parity.py --collapse")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--wd", type=float, default=5e-4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--splits", type=int, default=4)
    p.add_argument("--K", type=int, default=64)
    p.add_argument("--m", type=float, default=0.9)
    p.add_argument("--T", type=float, default=0.2)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--no-mlp", dest="mlp", action="store_false")
    p.add_argument("--symmetric", action="store_true")
    p.add_argument("--images", type=int, default=1024, help="size of the fixed pool of images")
    p.add_argument("--noise", type=float, default=0.5, help="std of the per-view noise")
    p.add_argument("--smooth", action="store_true", help="smooth random images instead of white noise")
    p.add_argument("--fashion", default=None, metavar="DIR",
                   help="the first --images Fashion-MNIST training images from DIR (IDX files), two views by "
                        "torchvision's RandomResizedCrop(scale 0.2-1), ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, "
                        "flip, normalised, instead of the random pool")
    p.add_argument("--cos-epochs", type=int, default=0,
                   help="cosine lr per epoch of --images/--batch steps over this many epochs (0: constant)")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--init", default=None, metavar="FILE",
                   help="start from the `state_dict` in FILE (a run recorded by our side) instead of a seeded init")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    s = dict(width=a.width, inChannels=1, splits=a.splits, dim=a.dim, K=a.K, m=a.m, T=a.T,
             mlp=a.mlp, symmetric=a.symmetric)
    model = build(s)
    if a.init:
        model.load_state_dict(torch.load(a.init)["state_dict"], strict=True)
    model.train()
    opt = torch.optim.SGD(model.parameters(), a.lr, momentum=0.9, weight_decay=a.wd)
    data_gen = torch.Generator().manual_seed(a.seed + 1)  # the data has its own stream
    pool = torch.randn(a.images, 1, a.size, a.size, generator=data_gen)
    if a.smooth:
        pool = F.avg_pool2d(F.pad(pool, (3, 3, 3, 3), mode="circular"), 7, stride=1)
        pool = (pool - pool.mean()) / pool.std()

    if a.fashion:
        import gzip
        import numpy as np
        import torchvision.transforms as Tr
        with gzip.open(os.path.join(a.fashion, "train-images-idx3-ubyte.gz")) as f:
            raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 1, 28, 28)
        pool = torch.from_numpy(raw[:a.images].copy()).float() / 255
        mean, std = float(pool.mean()), float(pool.std())
        aug = Tr.Compose([Tr.RandomResizedCrop(28, scale=(0.2, 1.)),
                          Tr.RandomApply([Tr.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                          Tr.RandomHorizontalFlip(), Tr.Normalize([mean], [std])])

    def view(x):
        if a.fashion:  # torchvision's transforms draw from the global generator: save/restore ours
            state = torch.get_rng_state()
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=data_gen)))
            out = torch.stack([aug(img) for img in x])
            torch.set_rng_state(state)
            return out
        flip = torch.rand(x.shape[0], generator=data_gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=data_gen))
        x = torch.roll(x, (dy, dx), (2, 3))
        return x + a.noise * torch.randn(x.shape, generator=data_gen)

    hidden = {}
    if a.mlp:
        model.encoder_q.fc[1].register_forward_hook(lambda m, i, o: hidden.__setitem__("h", o.detach()))
    model.encoder_q.avgpool.register_forward_hook(lambda m, i, o: hidden.__setitem__("f", o.detach().flatten(1)))
    print(f"config {vars(a)}; ln(K+1) = {math.log(a.K + 1):.4f}", flush=True)
    per_epoch = a.images // a.batch
    for step in range(1, a.steps + 1):
        if a.cos_epochs:
            lr = a.lr * 0.5 * (1. + math.cos(math.pi * ((step - 1) // per_epoch) / a.cos_epochs))
            for g in opt.param_groups:
                g["lr"] = lr
        idx = torch.randint(0, a.images, (a.batch,), generator=data_gen)
        x = pool[idx]
        im1, im2 = view(x), view(x)
        model.record = []
        loss = model(im1, im2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % a.every == 0 or step == 1:
            logits = model.record[0]
            feats = hidden["f"]
            alive_f = float((feats > 0).any(0).float().mean())
            line = (f"step {step:4d} loss {float(loss):.4f} logit-std/row {float(logits.std(1).mean()):.2e} "
                    f"pooled-features alive {alive_f:.2f}")
            if a.mlp:
                alive_h = float((hidden["h"] > 0).any(0).float().mean())
                line += f" head-ReLUs alive {alive_h:.2f}"
            print(line, flush=True)


def replay_main(argv):
    """Replays a run recorded by our side (a torch.save file with the initial `state_dict`, the
    `rng_state`, every step's `inputs` [query, key] and `lrs`, our `losses`, `mlp`, `wd`) through the
    official algorithm: the same initial state, generator, views and learning rates. Prints both
    loss curves. Settings as the report's run (--width 4 --bn-splits 4 --moco-k 64 --moco-m 0.9)."""
    p = argparse.ArgumentParser(prog="moco_parity.py --replay")
    p.add_argument("file")
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoints", default="", help="comma-separated steps after which to save FILE.ckpt<step>.pt")
    p.add_argument("--steps", type=int, default=0, help="replay only the first N steps (0: all)")
    p.add_argument("--perturb", type=float, default=0.0,
                   help="multiply every initial parameter by (1 + PERTURB * N(0, 1)) (the chaos check)")
    p.add_argument("--perturb-seed", type=int, default=0)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rec = torch.load(a.file)
    checkpoints = {int(v) for v in a.checkpoints.split(",") if v}
    s = dict(width=4, inChannels=1, splits=4, dim=128, K=64, m=0.9, T=0.2, mlp=bool(rec["mlp"]), symmetric=False)
    model = build(s)
    model.load_state_dict(rec["state_dict"], strict=True)
    if a.perturb:
        g = torch.Generator().manual_seed(a.perturb_seed)
        with torch.no_grad():
            for q, k in zip(model.encoder_q.parameters(), model.encoder_k.parameters()):
                q.mul_(1 + a.perturb * torch.randn(q.shape, generator=g))
                k.copy_(q)
    model.train()
    opt = torch.optim.SGD(model.parameters(), rec["lrs"][0], momentum=0.9, weight_decay=float(rec["wd"]))
    torch.set_rng_state(rec["rng_state"])
    print(f"ln(K+1) = {math.log(65):.4f}")
    for step, ((im1, im2), lr, ours) in enumerate(zip(rec["inputs"], rec["lrs"], rec["losses"]), 1):
        if a.steps and step > a.steps:
            break
        for g in opt.param_groups:
            g["lr"] = lr
        model.record = []
        loss = model(im1, im2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in checkpoints:
            torch.save({"loss": loss.detach(), "logits": model.record, "state_dict": model.state_dict(),
                        "optimizer": opt.state_dict(), "rng_state": torch.get_rng_state()},
                       f"{a.file}.ckpt{step}.pt")
        if step % a.every == 0 or step == 1:
            std = float(model.record[0].std(1).mean())
            print(f"step {step:4d} lr {lr:.4f} loss torch {float(loss):.4f} ours {float(ours):.4f} "
                  f"torch logit-std/row {std:.2e}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--collapse":
        collapse_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "--replay":
        replay_main(sys.argv[2:])
    else:
        main(sys.argv[1])
