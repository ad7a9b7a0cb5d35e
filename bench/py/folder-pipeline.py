"""Python side of bench entry folder-pipeline: the official MoCo v2 data pipeline (main_moco.py with
--aug-plus) over an image folder: torchvision's ImageFolder (PIL loader) with TwoCropsTransform of
RandomResizedCrop(224, scale=(0.2, 1)), RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), p=0.8),
RandomGrayscale(0.2), RandomApply(GaussianBlur([0.1, 2.0]), p=0.5) (moco/loader.py's, PIL's
ImageFilter.GaussianBlur), RandomHorizontalFlip, ToTensor, Normalize; a DataLoader with --batch
(64), shuffle, drop_last, num_workers 0, 1 and 2 (persistent workers, torch's default of one thread each).
Images/s of source images (each gives two views), after two warm-up batches (worker start-up)."""
import json
import random
import time

import torch
import torchvision.datasets as datasets
import torchvision.transforms as transforms
from PIL import ImageFilter

from bench_common import parse_args, status_mib



def folder_options(parser):
    parser.add_argument("folder")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, default=16, help="timed batches (3 with --quick)")


args = parse_args(folder_options)

BATCH = args.batch
WARMUP = 2
batches = 3 if args.quick else args.batches


class GaussianBlur:
    """moco/loader.py's: a PIL blur with sigma uniform in [0.1, 2.0]."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=random.uniform(self.sigma[0], self.sigma[1])))


class TwoCropsTransform:
    """moco/loader.py's: a query and a key view of one image."""

    def __init__(self, base_transform):
        self.base_transform = base_transform

    def __call__(self, x):
        return [self.base_transform(x), self.base_transform(x)]


normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
augmentation = transforms.Compose(
    [
        transforms.RandomResizedCrop(224, scale=(0.2, 1.0)),
        transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        transforms.RandomGrayscale(p=0.2),
        transforms.RandomApply([GaussianBlur([0.1, 2.0])], p=0.5),
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        normalize,
    ]
)
dataset = datasets.ImageFolder(args.folder, TwoCropsTransform(augmentation))


def measure(workers):
    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=BATCH,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
    )
    seen = 0
    start = None
    while seen < WARMUP + batches:
        for images, _ in loader:
            assert images[0].shape == (BATCH, 3, 224, 224)
            seen += 1
            if seen == WARMUP:
                start = time.perf_counter()
            if seen == WARMUP + batches:
                break
    seconds = time.perf_counter() - start
    del loader
    return batches * BATCH / seconds


rates = {workers: measure(workers) for workers in (0, 1, 2)}
print(
    json.dumps(
        {
            "values": {
                # Ours at 1 thread appears next to 0 and to 1 worker; at 2 threads next to 2 workers.
                "images_per_s_w0": rates[0],
                "images_per_s_1": rates[1],
                "images_per_s_2": rates[2],
            },
            "details": {
                "images": len(dataset),
                "batch": BATCH,
                "warmup_batches": WARMUP,
                "batches": batches,
                "main_threads": torch.get_num_threads(),
                "images_per_s_by_workers": rates,
                "main_peak_rss_mib": status_mib("VmHWM"),
            },
        }
    )
)
