"""torchvision references for test/augment.test.ts, run through test/py/opcheck.py.

Every function applies torchvision 0.14's functional ops (torchvision.transforms.functional on
float tensors in [0, 1], i.e. functional_tensor.py) to one image at a time, with the per-image
parameters that the TypeScript side drew, and stacks the results. Nothing here is batched or
clever: it is the reference the batched TypeScript implementation is compared with.
"""
import json

import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode, RandomResizedCrop

JITTER = ["brightness", "contrast", "saturation", "hue"]


def resized_crops(x, boxes, size, flips=None):
    out = []
    for b, (top, left, h, w) in enumerate(boxes):
        y = TF.resized_crop(x[b], top, left, h, w, list(size), InterpolationMode.BILINEAR, antialias=False)
        if flips is not None and flips[b]:
            y = TF.hflip(y)
        out.append(y)
    return torch.stack(out)


def per_image(fn, x, values):
    return torch.stack([fn(x[b], v) for b, v in enumerate(values)])


def brightness(x, factors):
    return per_image(TF.adjust_brightness, x, factors)


def contrast(x, factors):
    return per_image(TF.adjust_contrast, x, factors)


def saturation(x, factors):
    return per_image(TF.adjust_saturation, x, factors)


def hue(x, shifts):
    return per_image(TF.adjust_hue, x, shifts)


def grayscale(x, flags):
    return torch.stack([TF.rgb_to_grayscale(x[b], 3) if f else x[b] for b, f in enumerate(flags)])


def hflip(x, flags):
    return torch.stack([TF.hflip(x[b]) if f else x[b] for b, f in enumerate(flags)])


def blur(x, sigmas, sizes):
    out = []
    for b, (sigma, k) in enumerate(zip(sigmas, sizes)):
        out.append(TF.gaussian_blur(x[b], [k, k], [sigma, sigma]) if sigma > 0 else x[b])
    return torch.stack(out)


def normalize(x, mean, std):
    return torch.stack([TF.normalize(x[b], mean, std) for b in range(x.shape[0])])


def crop_fallbacks(shapes, ratio):
    """get_params when every try fails (scale 4: no crop fits), i.e. its centre-crop fallback."""
    out = []
    for h, w in shapes:
        img = torch.zeros(1, h, w)
        out.append(list(RandomResizedCrop.get_params(img, [4.0, 4.0], list(ratio))))
    return out


def pipeline(x, params_json, size, mean, std, kernel_sizes):
    """Applies one drawn AugmentParams (as JSON) image by image, in torchvision's order."""
    params = json.loads(params_json)
    out = []
    for b in range(x.shape[0]):
        img = None
        flip = False
        for step in params["steps"]:
            op = step["op"]
            if op == "randomResizedCrop":
                box = step["boxes"][b]
                img = TF.resized_crop(
                    x[b], box["top"], box["left"], box["height"], box["width"], list(size),
                    InterpolationMode.BILINEAR, antialias=False,
                )
            elif op == "colorJitter":
                if not step["applied"][b]:
                    continue
                for k in step["order"][4 * b : 4 * b + 4]:
                    name = JITTER[k]
                    value = step[name][b]
                    if value is None:
                        continue
                    img = getattr(TF, "adjust_" + name)(img, value)
            elif op == "randomGrayscale":
                if step["applied"][b]:
                    img = TF.rgb_to_grayscale(img, img.shape[0])
            elif op == "gaussianBlur":
                sigma = step["sigma"][b]
                if sigma > 0:
                    k = kernel_sizes[b]
                    img = TF.gaussian_blur(img, [k, k], [sigma, sigma])
            elif op == "horizontalFlip":
                if step["applied"][b]:
                    img = TF.hflip(img)
        if mean is not None:
            if img.shape[0] == 1 and len(mean) == 3:
                img = img.expand(3, -1, -1)
            img = TF.normalize(img, mean, std)
        out.append(img)
    return torch.stack(out)
