"""What every Python side of a bench entry shares: the command line the runner passes, and the
process's memory figures from /proc."""
import argparse
import re

import torch


def parse_args(extra=None):
    """--threads N (applied to torch) and --quick; `extra(parser)` may add entry-specific options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--quick", action="store_true")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    return args


def status_mib(field):
    """A /proc/self/status memory field (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\d+) kB", f.read(), re.M).group(1)) / 1024
