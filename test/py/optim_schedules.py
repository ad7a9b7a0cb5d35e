"""Learning rates of torch's schedulers and of the official MoCo formulas, per epoch, as JSON.

Input (stdin): {"lr": base, "epochs": E, "milestones": [...], "gamma": g, "warmup": W, "start_factor": s}
Output: {"multistep": [...], "moco_step": [...], "cosine_annealing": [...], "moco_cos": [...],
         "warmup_multistep": [...]} with one value per epoch 0..E-1.
"""
import json
import math
import sys

import torch


def scheduler_lrs(make, base, epochs):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base)
    sched = make(opt)
    lrs = []
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


def main():
    spec = json.load(sys.stdin)
    base, epochs = spec["lr"], spec["epochs"]
    milestones, gamma = spec["milestones"], spec["gamma"]
    lrs = torch.optim.lr_scheduler

    def moco_step(epoch):  # main_moco.py, adjust_learning_rate, schedule branch
        lr = base
        for milestone in milestones:
            lr *= gamma if epoch >= milestone else 1.0
        return lr

    def moco_cos(epoch):  # main_moco.py, adjust_learning_rate, --cos branch
        lr = base
        lr *= 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        return lr

    out = {
        "multistep": scheduler_lrs(lambda o: lrs.MultiStepLR(o, milestones, gamma), base, epochs),
        "moco_step": [moco_step(e) for e in range(epochs)],
        "cosine_annealing": scheduler_lrs(lambda o: lrs.CosineAnnealingLR(o, T_max=epochs), base, epochs),
        "moco_cos": [moco_cos(e) for e in range(epochs)],
        "warmup_multistep": scheduler_lrs(
            lambda o: lrs.ChainedScheduler(
                [
                    lrs.LinearLR(o, start_factor=spec["start_factor"], end_factor=1.0, total_iters=spec["warmup"]),
                    lrs.MultiStepLR(o, milestones, gamma),
                ]
            ),
            base,
            epochs,
        ),
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
