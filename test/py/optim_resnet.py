"""torchvision resnet18 trained for a few SGD steps from given weights (the PyTorch side of
test/optim-resnet.test.ts).

usage: optim_resnet.py IN OUT
IN (torch.save, written by moco-ts): {"state_dict": {name: tensor}, "inputs": [N×3×H×W per step],
    "targets": [N int64 per step], "lr", "momentum", "weight_decay", "threads", "cifar_stem": bool,
    "num_classes", "nesterov": [bool, ...]}
OUT (torch.save): {"nesterov=<true/false>": {"params": {name: tensor}, "momentum": {name: buffer},
    "buffers": {name: bn buffer}, "losses": [float per step]}}
"""
import sys

import torch
import torchvision


def build(spec):
    model = torchvision.models.resnet18(num_classes=spec["num_classes"])
    if spec["cifar_stem"]:
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    model.load_state_dict(spec["state_dict"], strict=True)
    return model.train()


def main():
    src, dst = sys.argv[1], sys.argv[2]
    spec = torch.load(src)
    torch.set_num_threads(spec["threads"])
    out = {}
    for nesterov in spec["nesterov"]:
        model = build(spec)
        opt = torch.optim.SGD(
            model.parameters(),
            lr=spec["lr"],
            momentum=spec["momentum"],
            weight_decay=spec["weight_decay"],
            nesterov=nesterov,
        )
        losses = []
        for x, y in zip(spec["inputs"], spec["targets"]):
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            losses.append(loss.item())
        out[f"nesterov={str(nesterov).lower()}"] = {
            "params": {n: p.detach() for n, p in model.named_parameters()},
            "momentum": {n: opt.state[p]["momentum_buffer"] for n, p in model.named_parameters()},
            "buffers": {n: b for n, b in model.named_buffers()},
            "losses": losses,
        }
    torch.save(out, dst)


if __name__ == "__main__":
    main()
