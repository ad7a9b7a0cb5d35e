"""torchvision references for test/data-folder-crops.test.ts.

get_params SPEC.json OUT.json
    torchvision 0.14's own RandomResizedCrop.get_params, its random draws replaced by the ones the
    TypeScript side made (recorded in SPEC): each `torch.empty(1).uniform_(lo, hi)` takes the next
    recorded unit value u and gives lo + (hi - lo) * u; each `torch.randint(lo, hi, ...)` takes the
    next recorded integer, after checking that torchvision asks for the same range. Writes the boxes
    (top, left, height, width) and how many draws each used.

resized_crops SPEC.json OUT.bin
    The official MoCo pipeline's crop on PIL images: Image.open(path).convert("RGB"), then
    F.resized_crop(img, top, left, height, width, size, BILINEAR) (PIL's resize, antialiased), then
    F.hflip where flagged; writes the crops as uint8 HWC bytes, one after the other.
"""
import json
import sys

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode, RandomResizedCrop


class Draws:
    """The recorded draws, consumed in order by the patched torch.empty(1).uniform_ and torch.randint."""

    def __init__(self, events):
        self.events = events
        self.pos = 0

    def next(self, kind):
        if self.pos >= len(self.events):
            raise AssertionError(f"torchvision draws more than recorded ({self.pos})")
        event = self.events[self.pos]
        self.pos += 1
        if kind not in event:
            raise AssertionError(f"draw {self.pos - 1}: torchvision draws a {kind}, TypeScript recorded {event}")
        return event


class Uniform:
    def __init__(self, draws):
        self.draws = draws

    def uniform_(self, lo, hi):
        u = self.draws.next("u")["u"]
        lo, hi = float(lo), float(hi)
        return torch.tensor([lo + (hi - lo) * u], dtype=torch.float64)


def get_params(spec_path, out_path):
    spec = json.load(open(spec_path))
    results = []
    real_empty, real_randint = torch.empty, torch.randint
    try:
        for case in spec["cases"]:
            draws = Draws(case["events"])

            def randint(lo, hi, size, draws=draws):
                event = draws.next("int")
                if [lo, hi] != event["range"]:
                    raise AssertionError(f"randint({lo}, {hi}): TypeScript drew from {event['range']}")
                return torch.tensor([event["int"]])

            torch.empty = lambda *args, draws=draws, **kwargs: Uniform(draws)
            torch.randint = randint
            img = real_empty(1, case["height"], case["width"])
            box = RandomResizedCrop.get_params(img, case["scale"], case["ratio"])
            results.append({"box": [int(v) for v in box], "draws": draws.pos})
            if draws.pos != len(case["events"]):
                raise AssertionError(f"torchvision used {draws.pos} of {len(case['events'])} recorded draws")
    finally:
        torch.empty, torch.randint = real_empty, real_randint
    json.dump(results, open(out_path, "w"))


def resized_crops(spec_path, out_path):
    spec = json.load(open(spec_path))
    height, width = spec["size"]
    out = []
    for crop in spec["crops"]:
        img = Image.open(crop["path"]).convert("RGB")
        top, left, h, w = crop["box"]
        y = TF.resized_crop(img, top, left, h, w, [height, width], InterpolationMode.BILINEAR)
        if crop["flip"]:
            y = TF.hflip(y)
        out.append(np.asarray(y, dtype=np.uint8).reshape(height, width, 3))
    np.stack(out).tofile(out_path)


if __name__ == "__main__":
    {"get_params": get_params, "resized_crops": resized_crops}[sys.argv[1]](*sys.argv[2:])
