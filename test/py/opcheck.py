#!/usr/bin/python3
"""Evaluates a batch of PyTorch expressions for the TypeScript cross-check tests.

Usage: /usr/bin/python3 test/py/opcheck.py REQUEST RESPONSE

Both files use one neutral container (not torch.save): an 8-byte little-endian header length, a
UTF-8 JSON header, then a blob of raw little-endian tensor bytes. The header's "tensors" lists
{dtype, shape, offset, nbytes} entries that values refer to as {"tensor": index}.

Request header: {"cases": [{"name", "expr", "setup"?, "inputs": {name: value}, "grad"?: [names],
"upstream"?: [value or null per flattened output tensor], "after"?: [names]}], "tensors": [...]}.
For each case the inputs are bound as names next to `torch`, `F` (torch.nn.functional) and `math`,
`setup` (statements) runs, then `expr` is evaluated. With `grad`, those inputs become fresh leaves
that require grad, the loss sum_i sum(output_i * upstream_i) over the outputs that require grad is
backpropagated, and the gradients of the named inputs are returned. `after` returns the values of
inputs after the call (for in-place ops).

Response header: {"results": [{"value", "grads"?, "after"?, "error"?}], "tensors": [...]}.
Values: {"tensor": i}, {"int": n}, {"float": x or "nan"/"inf"/"-inf"}, {"bool": b}, {"str": s},
{"none": true}, {"dtype": name}, {"list": [values]}.
"""
import json
import math
import struct
import sys
import traceback

import torch
import torch.nn.functional as F

DTYPES = {
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
    "bool": torch.bool,
    "bfloat16": torch.bfloat16,
}
NAMES = {v: k for k, v in DTYPES.items()}


def read_container(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack_from("<Q", data, 0)
    header = json.loads(data[8 : 8 + length].decode("utf-8"))
    blob = bytearray(data[8 + length :])
    return header, blob


def load_tensor(entry, blob):
    dtype = DTYPES[entry["dtype"]]
    shape = entry["shape"]
    numel = math.prod(shape)
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    raw = blob[entry["offset"] : entry["offset"] + entry["nbytes"]]
    if dtype in (torch.float16, torch.bfloat16):
        flat = torch.frombuffer(raw, dtype=torch.int16).clone().view(dtype)
    else:
        flat = torch.frombuffer(raw, dtype=dtype).clone()
    return flat.reshape(shape)


class Writer:
    def __init__(self):
        self.tensors = []
        self.chunks = []
        self.size = 0

    def tensor(self, t):
        t = t.detach().cpu().contiguous()
        if t.dtype not in NAMES:
            raise TypeError(f"unsupported dtype {t.dtype}")
        if t.dtype in (torch.float16, torch.bfloat16):
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        pad = (-self.size) % 8
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        self.tensors.append({"dtype": NAMES[t.dtype], "shape": list(t.shape), "offset": self.size, "nbytes": len(raw)})
        self.chunks.append(raw)
        self.size += len(raw)
        return {"tensor": len(self.tensors) - 1}

    def value(self, v):
        if isinstance(v, torch.Tensor):
            return self.tensor(v)
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        if isinstance(v, float):
            if math.isnan(v):
                return {"float": "nan"}
            if math.isinf(v):
                return {"float": "inf" if v > 0 else "-inf"}
            return {"float": v}
        if isinstance(v, str):
            return {"str": v}
        if v is None:
            return {"none": True}
        if isinstance(v, torch.dtype):
            return {"dtype": NAMES[v]}
        if isinstance(v, (tuple, list)):  # also torch.Size and torch.return_types
            return {"list": [self.value(x) for x in v]}
        raise TypeError(f"cannot return a {type(v).__name__}")

    def write(self, path, header):
        header = dict(header, tensors=self.tensors)
        encoded = json.dumps(header).encode("utf-8")
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(encoded)))
            f.write(encoded)
            for chunk in self.chunks:
                f.write(chunk)


def decode(node, tensors):
    if "tensor" in node:
        return tensors[node["tensor"]]
    if "list" in node:
        return [decode(x, tensors) for x in node["list"]]
    if "json" in node:
        return node["json"]
    raise ValueError(f"bad input node {node}")


def flatten(value, out):
    if isinstance(value, torch.Tensor):
        out.append(value)
    elif isinstance(value, (tuple, list)):
        for item in value:
            flatten(item, out)
    else:
        out.append(None)
    return out


def run_case(case, tensors, writer):
    ns = {"torch": torch, "F": F, "math": math}
    for name, node in case.get("inputs", {}).items():
        ns[name] = decode(node, tensors)
    grad_names = case.get("grad") or []
    for name in grad_names:
        ns[name] = ns[name].detach().clone().requires_grad_(True)
    if case.get("setup"):
        exec(case["setup"], ns)
    value = eval(case["expr"], ns)
    result = {}
    if grad_names:
        outputs = flatten(value, [])
        upstream = [None if u is None else decode(u, tensors) for u in case.get("upstream", [])]
        loss = None
        for out, up in zip(outputs, upstream):
            if out is not None and up is not None and out.requires_grad:
                term = (out * up).sum()
                loss = term if loss is None else loss + term
        if loss is None:
            raise ValueError("no output requires grad")
        leaves = [ns[name] for name in grad_names]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        result["grads"] = {name: writer.value(g) for name, g in zip(grad_names, grads)}
    result["value"] = writer.value(value)
    if case.get("after"):
        result["after"] = {name: writer.value(ns[name]) for name in case["after"]}
    return result


def main():
    request, response = sys.argv[1], sys.argv[2]
    header, blob = read_container(request)
    tensors = [load_tensor(entry, blob) for entry in header["tensors"]]
    writer = Writer()
    results = []
    for case in header["cases"]:
        try:
            results.append(run_case(case, tensors, writer))
        except Exception as error:  # reported per case; the TS side decides whether it was expected
            last = traceback.format_exception_only(type(error), error)[-1].strip()
            results.append({"error": last})
    writer.write(response, {"results": results, "torch": torch.__version__})


if __name__ == "__main__":
    main()
