"""Runs torch.optim.SGD on parameters and gradients given as JSON on stdin; prints the results as JSON.

Input: {"defaults": {lr, momentum, dampening, weight_decay, nesterov, maximize},
        "groups": [{"params": [param indices], ...per-group overrides}],
        "params": [{"shape": [...], "data": [...]}],
        "steps": [[gradient per parameter ({"shape","data"}) or null], ...],
        "load": optional state dict (tensors as {"shape","data"}) loaded before the steps,
        "lrs": optional learning rate per step (set on every group before that step)}
Output: {"steps": [{"params": [...], "buffers": [... or null], "state_dict": {...}}], "state_dict": {...},
         "initial_state_dict": {...}}; state dict tensors as {"__tensor__": {"shape","data"}}, int keys as strings.
All tensors float32; JSON numbers carry float32 values exactly.
"""
import json
import sys

import torch


def to_tensor(obj):
    return torch.tensor(obj["data"], dtype=torch.float32).reshape(obj["shape"])


def from_tensor(t):
    return {"shape": list(t.shape), "data": t.detach().reshape(-1).tolist()}


def encode(value):
    if isinstance(value, torch.Tensor):
        return {"__tensor__": from_tensor(value)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def decode_state_dict(sd):
    def dec(value):
        if isinstance(value, dict) and "__tensor__" in value:
            return to_tensor(value["__tensor__"])
        if isinstance(value, dict):
            return {k: dec(v) for k, v in value.items()}
        if isinstance(value, list):
            return [dec(v) for v in value]
        return value

    return {
        "state": {int(k): dec(v) for k, v in sd["state"].items()},
        "param_groups": [dec(g) for g in sd["param_groups"]],
    }


def main():
    spec = json.load(sys.stdin)
    torch.set_num_threads(1)
    params = [torch.nn.Parameter(to_tensor(p)) for p in spec["params"]]
    groups = []
    for g in spec["groups"]:
        group = {k: v for k, v in g.items() if k != "params"}
        group["params"] = [params[i] for i in g["params"]]
        groups.append(group)
    opt = torch.optim.SGD(groups, **spec["defaults"])
    initial = encode(opt.state_dict())
    if spec.get("load") is not None:
        opt.load_state_dict(decode_state_dict(spec["load"]))
    out = []
    lrs = spec.get("lrs")
    for s, grads in enumerate(spec["steps"]):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[s]
        opt.zero_grad(set_to_none=True)
        for p, g in zip(params, grads):
            p.grad = None if g is None else to_tensor(g)
        opt.step()
        buffers = []
        for p in params:
            buf = opt.state[p].get("momentum_buffer") if p in opt.state else None
            buffers.append(None if buf is None else from_tensor(buf))
        out.append(
            {"params": [from_tensor(p) for p in params], "buffers": buffers, "state_dict": encode(opt.state_dict())}
        )
    json.dump({"steps": out, "state_dict": encode(opt.state_dict()), "initial_state_dict": initial}, sys.stdout)


if __name__ == "__main__":
    main()
