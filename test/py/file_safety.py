"""Seeds for the fuzz harness and torch.load's verdicts for test/file-safety.test.ts.

  seeds DIR        write real files, as Python writes them, into DIR
  prepare DIR      the seeds, plus ones.pt (torch.ones(3)) and dup.pt (two records named data.pkl)
  verdict FILE...  per file one JSON line: {"ok": true} or {"ok": false, "error": "<type>: <message>"}
"""
import collections
import gzip
import io
import json
import struct
import sys
import warnings
import zipfile

import numpy as np
import torch

warnings.simplefilter("ignore")


def seeds(out):
    torch.manual_seed(0)
    state = collections.OrderedDict(
        [("conv1.weight", torch.randn(4, 1, 3, 3)), ("bn1.running_mean", torch.zeros(4)), ("fc.bias", torch.arange(3.0))]
    )
    shared = torch.arange(12, dtype=torch.int64)
    value = {
        "epoch": 3,
        "arch": "resnet18",
        "state_dict": state,
        "optimizer": {"state": {0: {"momentum_buffer": torch.ones(2, 2)}}, "param_groups": [{"lr": 0.03, "params": [0]}]},
        "views": [shared[:4], shared[4:].view(2, 4)],
        "extra": (1.5, None, True, b"\x00\x01", "text", 2**70),
        "half": torch.ones(3, dtype=torch.float16),
    }
    torch.save(value, f"{out}/zip.pt")
    torch.save(value, f"{out}/legacy.pt", _use_new_zipfile_serialization=False)
    # The same archive with every record deflated, as other zip tools may rewrite it.
    with zipfile.ZipFile(f"{out}/zip.pt") as source, zipfile.ZipFile(f"{out}/deflated.pt", "w", zipfile.ZIP_DEFLATED) as d:
        for info in source.infolist():
            d.writestr(info.filename, source.read(info.filename))
    np.save(f"{out}/array.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    np.save(f"{out}/fortran.npy", np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)))
    # safetensors has no Debian package: its format is an 8-byte header length, JSON, raw data.
    a = np.arange(6, dtype=np.float32).tobytes()
    b = np.arange(4, dtype=np.int64).tobytes()
    header = {
        "__metadata__": {"format": "pt"},
        "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, len(a)]},
        "b": {"dtype": "I64", "shape": [4], "data_offsets": [len(a), len(a) + len(b)]},
    }
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(f"{out}/tensors.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + a + b)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    with open(f"{out}/images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(struct.pack(">I3I", 0x803, 6, 28, 28) + images.tobytes(), mtime=0))
    with open(f"{out}/labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">II", 0x801, 6) + bytes(range(6)))
    records = np.concatenate([np.arange(4, dtype=np.uint8)[:, None], rng.integers(0, 256, (4, 3072), dtype=np.uint8)], 1)
    with open(f"{out}/test_batch.bin", "wb") as f:
        f.write(records.tobytes())


def prepare(out):
    seeds(out)
    torch.save(torch.ones(3), f"{out}/ones.pt")
    # zipfile writes a second record of one name when asked; torch.load reads the first.
    with zipfile.ZipFile(f"{out}/ones.pt") as source, zipfile.ZipFile(f"{out}/dup.pt", "w") as d:
        for name in source.namelist():
            d.writestr(name, source.read(name))
        d.writestr("ones/data.pkl", b"\x80\x02K\x07.")


def verdict(path):
    try:
        torch.load(path)
        print(json.dumps({"ok": True}))
    except Exception as error:  # noqa: BLE001 - the verdict is the point
        print(json.dumps({"ok": False, "error": f"{type(error).__name__}: {error}"}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "seeds":
        seeds(args[0])
    elif command == "prepare":
        prepare(args[0])
    elif command == "verdict":
        for path in args:
            verdict(path)
    else:
        sys.exit(f"unknown command {command}")
