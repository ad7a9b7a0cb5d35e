#!/usr/bin/python3
"""Python's side of the legacy (pre-1.6, non-zip) torch.save format tests.

Usage: /usr/bin/python3 test/py/legacy_check.py COMMAND ARGS...

  reference CKPT EXPECTED PROTOCOL   torch.save serialize_check.py's reference structure in the legacy
                                     format with pickle protocol PROTOCOL; its neutral form to EXPECTED
  moco CKPT EXPECTED                 a checkpoint shaped like the released MoCo ones (epoch, arch,
                                     state_dict with module.encoder_q.*, optimizer), legacy format,
                                     its storages recorded as on cuda:0
  malicious CKPT MARKER              legacy torch.save of an object whose __reduce__ is
                                     os.system('touch MARKER')
  layout CKPT                        prints {"object", "keys", "data", "size"}: where the object
                                     pickle, the storage key list and the storage data start
  craft FILES                        FILES is JSON {path: spec}: writes each path by hand as torch.save
                                     lays out a legacy file, from a spec that can also break it (see
                                     craft()); prints {path: neutral form of torch.load's result, or
                                     {"error": message}}

The neutral form is serialize_check.py's.
"""
import collections
import io
import json
import os
import pickle
import pickletools
import struct
import sys

import torch
import torch.nn as nn

from serialize_check import Evil, Neutral, reference_structure

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def legacy_save(value, path, protocol=2):
    torch.save(value, path, pickle_protocol=protocol, _use_new_zipfile_serialization=False)


def cmd_reference(path, expected_path, protocol):
    value = reference_structure()
    legacy_save(value, path, int(protocol))
    with open(expected_path, "w") as f:
        json.dump(Neutral().encode(value), f)


class Encoder(nn.Module):
    """A tiny network with torchvision ResNet's parameter names and MoCo v2's MLP head."""

    def __init__(self, dim):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = nn.Sequential(nn.Sequential())
        self.layer1[0].conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.layer1[0].bn1 = nn.BatchNorm2d(8)
        self.fc = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, dim))

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.layer1[0].bn1(self.layer1[0].conv1(x)))
        return self.fc(x.mean((2, 3)))


class MoCo(nn.Module):
    def __init__(self, dim=16, K=32):
        super().__init__()
        self.encoder_q = Encoder(dim)
        self.encoder_k = Encoder(dim)
        for q, k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
            k.data.copy_(q.data)
            k.requires_grad = False
        self.register_buffer("queue", nn.functional.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))


class Distributed(nn.Module):
    """What DistributedDataParallel adds to the keys: the `module.` prefix."""

    def __init__(self, module):
        super().__init__()
        self.module = module


def cmd_moco(path, expected_path):
    torch.manual_seed(0)
    model = Distributed(MoCo())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    loss = model.module.encoder_q(torch.randn(4, 3, 8, 8)).square().sum()
    loss.backward()
    optimizer.step()
    model.module.queue_ptr[0] = 4
    # The released checkpoints were saved from GPUs; record that without needing one.
    torch.serialization.location_tag = lambda storage: "cuda:0"
    checkpoint = {
        "epoch": 800,
        "arch": "resnet50",
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
    }
    legacy_save(checkpoint, path)
    with open(expected_path, "w") as f:
        json.dump(Neutral().encode(checkpoint), f)


def cmd_malicious(path, marker):
    legacy_save({"weights": torch.zeros(2), "payload": Evil(marker)}, path)


def cmd_layout(path):
    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, sys_info
            pickle.load(f)
        object_start = f.tell()
        for _ in pickletools.genops(f):  # walks the object's pickle without running it
            pass
        keys_start = f.tell()
        pickle.load(f)
        data_start = f.tell()
        size = os.fstat(f.fileno()).st_size
    print(json.dumps({"object": object_start, "keys": keys_start, "data": data_start, "size": size}))


# ---- files written by hand ------------------------------------------------------------------------


class Storage:
    """Stands for a storage in the pickle; persistent_id turns it into torch's legacy id."""

    def __init__(self, key, numel, view):
        self.key, self.numel, self.view = key, numel, view


class TensorStub:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


class LegacyPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel, obj.view)
        return None


def craft(spec):
    """One float storage "root" of 10 elements (0..9) and tensors over it, laid out as torch.save's
    legacy writer does. SPEC keys: tensors ([[view or null, offset, size, stride], ...], default
    a storage view and a plain view), magic, version, little_endian, count_delta (added to the
    recorded element count), keys (the storage key list), trailing (bytes appended)."""
    numel = 10
    tensors = spec.get(
        "tensors",
        [[["view", 2, 6], 1, [2, 2], [2, 1]], [["view", 2, 6], 0, [6], [1]], [None, 0, [5, 2], [1, 5]]],
    )
    obj = {
        f"t{i}": TensorStub(Storage("root", numel, tuple(view) if view else None), offset, size, stride)
        for i, (view, offset, size, stride) in enumerate(tensors)
    }
    sys_info = {
        "protocol_version": PROTOCOL_VERSION,
        "little_endian": spec.get("little_endian", True),
        "type_sizes": {"short": 2, "int": 4, "long": 8},
    }
    out = io.BytesIO()
    pickle.dump(spec.get("magic", MAGIC_NUMBER), out, protocol=2)
    pickle.dump(spec.get("version", PROTOCOL_VERSION), out, protocol=2)
    pickle.dump(sys_info, out, protocol=2)
    LegacyPickler(out, protocol=2).dump(obj)
    pickle.dump(spec.get("keys", ["root"]), out, protocol=2)
    out.write(struct.pack("<q", numel + spec.get("count_delta", 0)))
    out.write(torch.arange(numel, dtype=torch.float32).numpy().tobytes())
    out.write(b"\0" * spec.get("trailing", 0))
    return out.getvalue()


def cmd_craft(files):
    results = {}
    for path, spec in json.loads(files).items():
        with open(path, "wb") as f:
            f.write(craft(spec))
        try:
            results[path] = Neutral().encode(torch.load(path))
        except Exception as e:  # the test wants to know whether torch.load refused it too
            results[path] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(results))


COMMANDS = {
    "reference": cmd_reference,
    "moco": cmd_moco,
    "malicious": cmd_malicious,
    "layout": cmd_layout,
    "craft": cmd_craft,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
