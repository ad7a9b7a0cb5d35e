#!/usr/bin/python3
"""Python's side of the checkpoint (torch.save / torch.load) cross-check tests.

Usage: /usr/bin/python3 test/py/serialize_check.py COMMAND ARGS...

  reference CKPT EXPECTED [PROTOCOL]  torch.save the reference structure to CKPT (with pickle
                                      protocol PROTOCOL, default 2) and write its neutral form
                                      to EXPECTED
  check CKPT EXPECTED                 torch.load CKPT (written by moco-ts), compare it with the
                                      neutral form in EXPECTED, load its state dicts into torch
                                      modules/optimizers; prints {"ok", "errors", "facts"} JSON
  malicious CKPT MARKER               torch.save an object whose __reduce__ is os.system('touch MARKER')
  complex CKPT                        torch.save a complex64 tensor (a dtype moco-ts lacks)
  cuda-location CKPT                  torch.save a tensor recorded as living on cuda:0
  no-data-pkl ZIP                     a zip archive without data.pkl
  drop-record SRC DST NAME_SUFFIX     copy zip SRC to DST without the record ending in NAME_SUFFIX
  deflate SRC DST                     copy zip SRC to DST with every record deflated
  zip64 SRC DST                       copy zip SRC to DST with ZIP64 extra fields on every record

The neutral form is JSON that keeps what JSON alone loses: {"__dict__": [[key, value], ...]}
(ordered, typed keys), {"__int__": "digits"} beyond 2**53, {"__float__": "nan"|"inf"|"-inf"},
{"__bytes__": hex}, {"__tensor__": {dtype, shape, stride, offset, hex, requires_grad, storage}}
where hex is the contiguous little-endian element bytes and storage numbers storages, so that
tensors sharing one have the same number. Lists, tuples and sets are JSON arrays.
"""
import collections
import json
import math
import os
import struct
import sys
import zipfile

import torch
import torch.nn as nn

DTYPE_NAMES = {
    torch.uint8: "uint8",
    torch.int8: "int8",
    torch.int16: "int16",
    torch.int32: "int32",
    torch.int64: "int64",
    torch.float16: "float16",
    torch.float32: "float32",
    torch.float64: "float64",
    torch.bool: "bool",
    torch.bfloat16: "bfloat16",
}


def tensor_bytes(t):
    flat = t.detach().contiguous().reshape(-1)
    return bytes(flat.view(torch.uint8).tolist()) if flat.numel() > 0 else b""


class Neutral:
    def __init__(self):
        self.storages = {}

    def storage_number(self, t):
        if t.numel() == 0:
            return None
        ptr = t.storage().data_ptr()
        return self.storages.setdefault(ptr, len(self.storages))

    def encode(self, v):
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return str(v)  # TorchVersion is a str subclass
        if isinstance(v, int):
            return v if abs(v) <= 2**53 else {"__int__": str(v)}
        if isinstance(v, float):
            if math.isnan(v):
                return {"__float__": "nan"}
            if math.isinf(v):
                return {"__float__": "inf" if v > 0 else "-inf"}
            return v
        if isinstance(v, bytes):
            return {"__bytes__": v.hex()}
        if isinstance(v, torch.device):
            return str(v)
        if isinstance(v, torch.Tensor):
            return {
                "__tensor__": {
                    "dtype": DTYPE_NAMES[v.dtype],
                    "shape": list(v.shape),
                    "stride": list(v.stride()),
                    "offset": v.storage_offset(),
                    "hex": tensor_bytes(v).hex(),
                    "requires_grad": v.requires_grad,
                    "storage": self.storage_number(v),
                }
            }
        if isinstance(v, dict):
            return {"__dict__": [[self.encode(k), self.encode(x)] for k, x in v.items()]}
        if isinstance(v, (list, tuple)):
            return [self.encode(x) for x in v]
        if isinstance(v, (set, frozenset)):
            return [self.encode(x) for x in sorted(v)]
        raise TypeError(f"cannot encode {type(v)}")


def decode(v):
    """Neutral form -> Python values; tensors stay neutral dicts (compared field by field)."""
    if isinstance(v, list):
        return [decode(x) for x in v]
    if isinstance(v, dict):
        if "__dict__" in v:
            return collections.OrderedDict((decode_key(k), decode(x)) for k, x in v["__dict__"])
        if "__int__" in v:
            return int(v["__int__"])
        if "__float__" in v:
            return float(v["__float__"])
        if "__bytes__" in v:
            return bytes.fromhex(v["__bytes__"])
        if "__tensor__" in v:
            return v
    return v


def decode_key(k):
    return decode(k) if isinstance(k, dict) else k


def reference_structure():
    torch.manual_seed(0)
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    model(torch.randn(5, 4))  # gives BatchNorm's running stats non-trivial values
    x = torch.randn(3, 5)
    return {
        "nested": {
            "a": {"b": {"c": 1, "d": [1, 2, {"e": "deep"}]}},
            "list": [1, 2.5, "x", None, True, False],
            "tuple": (1, (2, 3), ()),
            "empty_list": [],
            "empty_dict": {},
        },
        "tensors": {
            "int64": torch.tensor([[1, -2, 2**40], [2**62, -(2**63), 0]], dtype=torch.int64),
            "float32": torch.randn(2, 3),
            "float64": torch.randn(4, dtype=torch.float64),
            "float16": torch.randn(3).half(),
            "bfloat16": torch.randn(3).bfloat16(),
            "int32": torch.tensor([1, -1, 2**31 - 1], dtype=torch.int32),
            "int16": torch.tensor([-(2**15), 7], dtype=torch.int16),
            "int8": torch.tensor([-128, 127], dtype=torch.int8),
            "uint8": torch.tensor([0, 1, 255], dtype=torch.uint8),
            "bool": torch.tensor([True, False, True]),
            "scalar": torch.tensor(3.5),
            "empty": torch.zeros(0, 3),
            "special": torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0]),
            "transposed": x.t(),
            "strided": x[:, ::2],
            "requires_grad": torch.ones(2, requires_grad=True),
            "parameter": nn.Parameter(torch.full((2, 2), 0.5)),
        },
        "views": [base, base[1], base[:, 1:3], base.t()],
        "state_dict": model.state_dict(),
        "optimizer": {
            "state": {0: {"momentum_buffer": torch.randn(3, 4)}, 1: {"momentum_buffer": torch.randn(3)}},
            "param_groups": [{"lr": 0.1, "momentum": 0.9, "dampening": 0, "weight_decay": 0.0001, "nesterov": False, "params": [0, 1]}],
        },
        "numbers": {
            "int": 7,
            "negative": -123456789,
            "int32_edge": 2**31,
            "safe_max": 2**53 - 1,
            "big": 2**64 + 1,
            "negative_big": -(2**70),
            "float": 0.1,
            "whole_float": 2.0,
            "nan": float("nan"),
            "inf": float("inf"),
            "negative_inf": -float("inf"),
        },
        "strings": ["", "hello", "\u00fcn\u00efc\u00f6d\u00e9 \u2713 \U0001d11e", "line\nbreak"],
        "bytes": b"\x00\x01\xfe\xff",
        "empty_bytes": b"",
        "bools": [True, False],
        "none": None,
        "int_keys": {1: "a", 2: "b"},
        "mixed_keys": {"a": 1, 3: 2},
        "set": {3, 1, 2},
        "frozenset": frozenset([5]),
        "device": torch.device("cpu"),
        "epoch": 42,
        "torch_version": torch.__version__,
    }


def cmd_reference(path, expected_path, protocol="2"):
    value = reference_structure()
    torch.save(value, path, pickle_protocol=int(protocol))
    with open(expected_path, "w") as f:
        json.dump(Neutral().encode(value), f)


# ---- checking a file moco-ts wrote ----------------------------------------------------------------


def compare(actual, expected, where, errors, compare_offsets, storage_map):
    if isinstance(expected, dict) and "__tensor__" in expected:
        e = expected["__tensor__"]
        if not isinstance(actual, torch.Tensor):
            errors.append(f"{where}: expected a tensor, got {type(actual).__name__}")
            return
        got = Neutral()
        a = got.encode(actual)["__tensor__"]
        for field in ("dtype", "shape", "stride", "hex", "requires_grad"):
            if a[field] != e[field]:
                errors.append(f"{where}: {field} {a[field]!r} != expected {e[field]!r}")
        if compare_offsets and a["offset"] != e["offset"]:
            errors.append(f"{where}: offset {a['offset']} != expected {e['offset']}")
        if e["storage"] is not None and actual.numel() > 0:
            ptr = actual.storage().data_ptr()
            previous = storage_map.setdefault(e["storage"], ptr)
            if previous != ptr:
                errors.append(f"{where}: expected to share storage #{e['storage']} with earlier tensors, but does not")
            if list(storage_map.values()).count(ptr) > 1:
                errors.append(f"{where}: shares a storage with a tensor it should not")
        return
    if isinstance(expected, collections.OrderedDict):
        if not isinstance(actual, dict):
            errors.append(f"{where}: expected a dict, got {type(actual).__name__}")
            return
        if list(actual.keys()) != list(expected.keys()) or [type(k) for k in actual] != [type(k) for k in expected]:
            errors.append(f"{where}: keys {list(actual.keys())!r} != expected {list(expected.keys())!r}")
            return
        for k in expected:
            compare(actual[k], expected[k], f"{where}[{k!r}]", errors, compare_offsets, storage_map)
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            errors.append(f"{where}: expected a list, got {type(actual).__name__}")
            return
        if len(actual) != len(expected):
            errors.append(f"{where}: length {len(actual)} != expected {len(expected)}")
            return
        for i, (a, e) in enumerate(zip(actual, expected)):
            compare(a, e, f"{where}[{i}]", errors, compare_offsets, storage_map)
        return
    if type(actual) is not type(expected):
        errors.append(f"{where}: {actual!r} ({type(actual).__name__}) != expected {expected!r} ({type(expected).__name__})")
    elif isinstance(expected, float) and math.isnan(expected):
        if not math.isnan(actual):
            errors.append(f"{where}: {actual!r} != expected nan")
    elif actual != expected:
        errors.append(f"{where}: {actual!r} != expected {expected!r}")


def data_offset(raw, header_offset):
    # The local header's own name and extra lengths (ZipInfo.extra is the central directory's).
    raw.seek(header_offset + 26)
    name_length, extra_length = struct.unpack("<HH", raw.read(4))
    return header_offset + 30 + name_length + extra_length


def cmd_check(path, expected_path):
    errors = []
    facts = {}
    with open(expected_path) as f:
        expected = decode(json.load(f))
    try:
        # weights_only=False: this file holds every type we write (an empty bytes value included,
        # which torch >= 2.6's default weights-only unpickler refuses by design); the same on 1.13.
        value = torch.load(path, weights_only=False)
    except Exception as e:  # report instead of crashing, so the test prints the reason
        print(json.dumps({"ok": False, "errors": [f"torch.load failed: {type(e).__name__}: {e}"], "facts": {}}))
        return
    compare(value, expected, "value", errors, False, {})

    # The state dicts must work where they are meant to be used, not only look right.
    if isinstance(value, dict) and "linear" in value:
        try:
            linear = nn.Linear(4, 3)
            linear.load_state_dict(value["linear"])
            facts["linear_weight_sum"] = float(linear.weight.sum())
            optimizer = torch.optim.SGD(linear.parameters(), lr=0.5, momentum=0.5)
            optimizer.load_state_dict(value["optimizer"])
            facts["optimizer_lr"] = optimizer.param_groups[0]["lr"]
            facts["optimizer_state_keys"] = sorted(type(k).__name__ for k in value["optimizer"]["state"])
            linear(torch.ones(1, 4)).sum().backward()
            optimizer.step()  # uses the loaded momentum buffers
            facts["optimizer_step_ok"] = True
        except Exception as e:
            errors.append(f"loading into nn.Linear/SGD failed: {type(e).__name__}: {e}")
    if isinstance(value, dict) and "views" in value:
        views = value["views"]
        facts["views_share_storage"] = len({v.storage().data_ptr() for v in views}) == 1
    with zipfile.ZipFile(path) as z, open(path, "rb") as raw:
        facts["zip_ok"] = z.testzip() is None
        facts["records"] = [i.filename for i in z.infolist()]
        facts["aligned"] = all(data_offset(raw, i.header_offset) % 64 == 0 for i in z.infolist())
    print(json.dumps({"ok": not errors, "errors": errors, "facts": facts}))


# ---- bad inputs ---------------------------------------------------------------------------------


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def cmd_malicious(path, marker):
    torch.save({"weights": torch.zeros(2), "payload": Evil(marker)}, path)


def cmd_complex(path):
    torch.save({"z": torch.zeros(2, dtype=torch.complex64)}, path)


class IntRequiringGrad:
    """An int64 tensor rebuilt with requires_grad=True: what only a damaged file holds (torch refuses it)."""

    def __reduce__(self):
        t = torch.arange(3)
        return (torch._utils._rebuild_tensor_v2, (t.storage(), 0, (3,), (1,), True, collections.OrderedDict()))


def cmd_int_requires_grad(path):
    torch.save({"w": torch.zeros(2), "steps": IntRequiringGrad()}, path)


def cmd_cuda_location(path):
    # What a checkpoint saved from GPU tensors records, without needing a GPU to write one.
    torch.serialization.location_tag = lambda storage: "cuda:0"
    torch.save({"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}, path)


def cmd_no_data_pkl(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/version", "3\n")
        z.writestr("archive/data/0", b"\0" * 8)


def rewrite(src, dst, keep=lambda name: True, compression=zipfile.ZIP_STORED, force_zip64=False):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression=compression) as zout:
        for info in zin.infolist():
            if not keep(info.filename):
                continue
            with zin.open(info) as fin, zout.open(info.filename, "w", force_zip64=force_zip64) as fout:
                fout.write(fin.read())


def cmd_drop_record(src, dst, suffix):
    rewrite(src, dst, keep=lambda name: not name.endswith(suffix))


def cmd_deflate(src, dst):
    rewrite(src, dst, compression=zipfile.ZIP_DEFLATED)


def cmd_zip64(src, dst):
    rewrite(src, dst, force_zip64=True)


COMMANDS = {
    "reference": cmd_reference,
    "check": cmd_check,
    "malicious": cmd_malicious,
    "complex": cmd_complex,
    "int-requires-grad": cmd_int_requires_grad,
    "cuda-location": cmd_cuda_location,
    "no-data-pkl": cmd_no_data_pkl,
    "drop-record": cmd_drop_record,
    "deflate": cmd_deflate,
    "zip64": cmd_zip64,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
