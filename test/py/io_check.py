#!/usr/bin/python3
"""Python's side of the safetensors and .npy tests. Debian has no Python safetensors, so
safetensors files are parsed and written here by hand (struct + json + numpy), as the format's
specification lays them out; .npy files go through numpy itself. Expected values travel as
torch.save files (test/serialize.test.ts proves that path).

Usage: /usr/bin/python3 test/py/io_check.py COMMAND ARGS...

  safetensors-check FILE REF...  parse each FILE by hand and compare its tensors with the dict of
                                 tensors in its REF (torch.save), exactly; check the layout the
                                 reference implementation writes. Prints {FILE: {"errors": [...],
                                 "names": [...in data order], "metadata": {...}}}
  safetensors-write DIR          write DIR/python.safetensors as the reference implementation lays it
                                 out, DIR/pretty.safetensors (indented JSON, other key and data
                                 orders), and their tensors to DIR/python.pt
  npy-check DIR                  np.load DIR/NAME.npy for each NAME of DIR/refs.pt and compare with
                                 it exactly; np.save it again and compare the bytes with the file.
                                 Prints {NAME: {"errors": [...], "same_bytes_as_np_save": bool}}
  npy-write DIR                  np.save arrays (every dtype, versions 1.0/2.0/3.0, and ones moco-ts
                                 refuses) to DIR/NAME.npy and the readable ones to DIR/refs.pt
"""
import io
import json
import struct
import sys

import numpy as np
import torch

from serialize_check import tensor_bytes

# safetensors dtype name -> (torch dtype, numpy dtype to read the raw bytes with)
ST_DTYPES = {
    "BOOL": (torch.bool, np.bool_),
    "U8": (torch.uint8, np.uint8),
    "I8": (torch.int8, np.int8),
    "I16": (torch.int16, "<i2"),
    "F16": (torch.float16, "<f2"),
    "BF16": (torch.bfloat16, "<i2"),  # numpy has no bfloat16: read the bits, view them in torch
    "I32": (torch.int32, "<i4"),
    "F32": (torch.float32, "<f4"),
    "F64": (torch.float64, "<f8"),
    "I64": (torch.int64, "<i8"),
}
ST_NAMES = {torch_dtype: name for name, (torch_dtype, _) in ST_DTYPES.items()}
# The reference implementation's Dtype enum order; its files list larger dtypes first.
ST_RANK = {name: i for i, name in enumerate(ST_DTYPES)}


def parse_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    raw_header = data[8 : 8 + n]
    header = json.loads(raw_header)
    body = data[8 + n :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        torch_dtype, np_dtype = ST_DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        array = np.frombuffer(body[begin:end], dtype=np_dtype).reshape(info["shape"])
        tensor = torch.from_numpy(array.copy())
        tensors[name] = tensor.view(torch.bfloat16) if info["dtype"] == "BF16" else tensor
    return n, raw_header, header, body, tensors


def check_safetensors(path, refs):
    errors = []
    n, raw_header, header, body, tensors = parse_safetensors(path)
    if n % 8 != 0:
        errors.append(f"header length {n} is not a multiple of 8")
    if not raw_header.startswith(b"{") or not raw_header.rstrip(b" ").endswith(b"}"):
        errors.append("header is not a JSON object padded with spaces")
    keys = list(header)
    if "__metadata__" in header and keys[0] != "__metadata__":
        errors.append("__metadata__ is not the first key")
    names = [k for k in keys if k != "__metadata__"]
    expected_order = sorted(names, key=lambda k: (-ST_RANK[header[k]["dtype"]], k.encode()))
    if names != expected_order:
        errors.append(f"tensors in order {names}, the reference implementation writes {expected_order}")
    offset = 0
    for name in names:
        begin, end = header[name]["data_offsets"]
        if begin != offset:
            errors.append(f"{name}: data starts at {begin}, expected {offset}")
        if begin % tensors[name].element_size() != 0:
            errors.append(f"{name}: data at {begin} is not aligned to its element size")
        offset = end
    if offset != len(body):
        errors.append(f"tensors cover {offset} bytes of {len(body)}")
    if sorted(tensors) != sorted(refs):
        errors.append(f"names {sorted(tensors)} != expected {sorted(refs)}")
    for name, ref in refs.items():
        ours = tensors.get(name)
        if ours is None:
            continue
        if ours.dtype != ref.dtype or list(ours.shape) != list(ref.shape):
            errors.append(f"{name}: {ours.dtype} {list(ours.shape)} != expected {ref.dtype} {list(ref.shape)}")
        elif tensor_bytes(ours) != tensor_bytes(ref):
            errors.append(f"{name}: values differ")
    return {"errors": errors, "names": names, "metadata": header.get("__metadata__")}


def cmd_safetensors_check(*pairs):
    files = zip(pairs[::2], pairs[1::2])
    print(json.dumps({path: check_safetensors(path, torch.load(ref)) for path, ref in files}))


def write_safetensors_by_hand(path, tensors, metadata, pretty=False):
    if pretty:  # any order, any JSON spacing: readers must not depend on the reference's choices
        order = sorted(tensors, reverse=True)
    else:
        order = sorted(tensors, key=lambda k: (-ST_RANK[ST_NAMES[tensors[k].dtype]], k.encode()))
    header = {} if metadata is None else {"__metadata__": metadata}
    chunks, offset = [], 0
    for name in order:
        raw = tensor_bytes(tensors[name])
        info = {"dtype": ST_NAMES[tensors[name].dtype], "shape": list(tensors[name].shape)}
        info["data_offsets"] = [offset, offset + len(raw)]
        header[name] = dict(reversed(list(info.items()))) if pretty else info
        chunks.append(raw)
        offset += len(raw)
    if pretty:
        header = dict(reversed(list(header.items())))
        text = json.dumps(header, indent=2).encode()
    else:
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def cmd_safetensors_write(directory):
    torch.manual_seed(0)
    base = torch.randn(4, 5)
    tensors = {
        "conv1.weight": torch.randn(4, 3, 3, 3),
        "bn1.num_batches_tracked": torch.tensor(7),
        "fc.bias": torch.randn(5, dtype=torch.float64),
        "half": torch.randn(6).half(),
        "bf16": torch.randn(6).bfloat16(),
        "ints": torch.tensor([[1, -1], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "longs": torch.tensor([2**62, -(2**63), 0]),
        "bytes": torch.tensor([0, 1, 255], dtype=torch.uint8),
        "chars": torch.tensor([-128, 127], dtype=torch.int8),
        "shorts": torch.tensor([-(2**15), 7], dtype=torch.int16),
        "mask": torch.tensor([True, False, True]),
        "empty": torch.zeros(0, 3),
        "special": torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0]),
        "transposed": base.t().contiguous(),
        "\u00fcn\u00efc\u00f6d\u00e9 \u2713": torch.ones(2),
    }
    write_safetensors_by_hand(f"{directory}/python.safetensors", tensors, {"format": "pt", "note": "by hand"})
    write_safetensors_by_hand(f"{directory}/pretty.safetensors", tensors, None, pretty=True)
    torch.save(tensors, f"{directory}/python.pt")


NP_OF_TORCH = {
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.int8: np.int8,
    torch.int16: np.int16,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.uint8: np.uint8,
    torch.bool: np.bool_,
}


def cmd_npy_check(directory):
    refs = torch.load(f"{directory}/refs.pt")
    report = {}
    for name, ref in refs.items():
        path = f"{directory}/{name}.npy"
        errors = []
        array = np.load(path)  # allow_pickle=False: an object array would be refused
        if array.dtype != np.dtype(NP_OF_TORCH[ref.dtype]):
            errors.append(f"dtype {array.dtype} != expected {np.dtype(NP_OF_TORCH[ref.dtype])}")
        if list(array.shape) != list(ref.shape):
            errors.append(f"shape {list(array.shape)} != expected {list(ref.shape)}")
        if not array.flags.c_contiguous:
            errors.append("not C-ordered")
        if array.tobytes() != tensor_bytes(ref):
            errors.append("values differ")
        again = io.BytesIO()
        np.save(again, array)
        with open(path, "rb") as f:
            same = again.getvalue() == f.read()
        report[name] = {"errors": errors, "same_bytes_as_np_save": same}
    print(json.dumps(report))


def cmd_npy_write(directory):
    rng = np.random.default_rng(0)
    readable = {
        "float32": rng.standard_normal((3, 4)).astype(np.float32),
        "float64": rng.standard_normal(5),
        "int64": np.array([[1, -2], [2**62, -(2**63)]], dtype=np.int64),
        "int32": np.array([1, -1, 2**31 - 1], dtype=np.int32),
        "uint8": np.array([[0, 1], [254, 255]], dtype=np.uint8),
        "int16": np.array([-(2**15), 7], dtype=np.int16),
        "int8": np.array([-128, 127], dtype=np.int8),
        "float16": np.array([0.5, -1.25, 65504], dtype=np.float16),
        "bool": np.array([True, False, True]),
        "scalar": np.array(3.5, dtype=np.float32),
        "cube": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "special": np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32),
    }
    for name, array in readable.items():
        np.save(f"{directory}/{name}.npy", array)
    for version in [(2, 0), (3, 0)]:
        name = f"version{version[0]}"
        readable[name] = np.arange(6, dtype=np.int64).reshape(3, 2)
        with open(f"{directory}/{name}.npy", "wb") as f:
            np.lib.format.write_array(f, readable[name], version=version)
    torch.save({name: torch.from_numpy(array.copy()) for name, array in readable.items()}, f"{directory}/refs.pt")

    refused = {
        "fortran": np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3)),
        "big-endian": np.arange(3, dtype=">f4"),
        "structured": np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]),
        "uint16": np.arange(3, dtype=np.uint16),
        "complex": np.zeros(2, dtype=np.complex64),
    }
    for name, array in refused.items():
        np.save(f"{directory}/{name}.npy", array)
    np.save(f"{directory}/object.npy", np.array([1, "a"], dtype=object), allow_pickle=True)


COMMANDS = {
    "safetensors-check": cmd_safetensors_check,
    "safetensors-write": cmd_safetensors_write,
    "npy-check": cmd_npy_check,
    "npy-write": cmd_npy_write,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
