"""Where a process runs and how its randomness starts: the device and the seeds, for every command."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def select_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else the CPU. Under torchrun each process takes the GPU of its
    LOCAL_RANK (``cuda`` alone would put every process on GPU 0)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
