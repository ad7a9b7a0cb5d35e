"""torch.optim.SGD checkpoints through torch.save / torch.load files (the other side of our serializer).

usage: optim_serialize.py IN OUT
IN (written by torch.save or by moco-ts): {"params": [tensors], "groups": [{"params": [indices], ...}],
    "defaults": {...}, "grads": [[tensor or None per parameter] per step], "lrs": [lr per step] or None,
    "optimizer": a state dict to load first, or None}
OUT (torch.save): {"params": [...], "optimizer": opt.state_dict() after the steps,
    "loaded": opt.state_dict() right after loading (None when nothing was loaded),
    "checks": {"state_key_types": [...], "group_keys": [...], "reference_group_keys": [...]}}
"""
import sys

import torch


def main():
    src, dst = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    spec = torch.load(src)
    params = [torch.nn.Parameter(t.clone()) for t in spec["params"]]
    groups = []
    for g in spec["groups"]:
        group = {k: v for k, v in g.items() if k != "params"}
        group["params"] = [params[i] for i in g["params"]]
        groups.append(group)
    opt = torch.optim.SGD(groups, **spec["defaults"])
    reference_keys = sorted(opt.state_dict()["param_groups"][0].keys())
    loaded = None
    checks = {"reference_group_keys": reference_keys}
    if spec.get("optimizer") is not None:
        sd = spec["optimizer"]
        checks["state_key_types"] = sorted({type(k).__name__ for k in sd["state"].keys()})
        checks["group_keys"] = sorted(sd["param_groups"][0].keys())
        checks["buffer_types"] = sorted(
            {type(v["momentum_buffer"]).__name__ for v in sd["state"].values()}
        )
        opt.load_state_dict(sd)
        loaded = opt.state_dict()
        loaded = {"state": {k: dict(v) for k, v in loaded["state"].items()}, "param_groups": loaded["param_groups"]}
    lrs = spec.get("lrs")
    for s, grads in enumerate(spec["grads"]):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[s]
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = None if g is None else g.clone()
        opt.step()
    torch.save(
        {
            "params": [p.detach() for p in params],
            "optimizer": opt.state_dict(),
            "loaded": loaded,
            "checks": checks,
        },
        dst,
    )


if __name__ == "__main__":
    main()
