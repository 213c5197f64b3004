"""The DataLoader of training and evaluation: one (scheduled) DistributedSampler, reseeded per epoch.

``trainer.batch_size`` is the global batch: under torchrun each of N processes takes 1/N of it,
and the order comes from one DistributedSampler, so N processes see the same batches as one.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler, default_collate

from mer import distributed as dist


class ScheduledSampler(DistributedSampler):
    """DistributedSampler whose epoch can be partly class-balanced.

    With ``balance`` 0 it is the plain shuffled DistributedSampler. With ``balance`` b in (0, 1]
    the epoch's N indices are drawn with replacement, p_i proportional to (1 - b) / N + b / (E * n_{y_i}):
    b = 1 gives every class the same expected share. The draw depends on (seed, epoch) only, and
    every rank takes its slice of the same draw.
    """

    def __init__(self, dataset, labels, **kw) -> None:
        super().__init__(dataset, **kw)
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        self.balance = 0.0

    def set_balance(self, balance: float) -> None:
        self.balance = float(balance)

    def __iter__(self):
        if self.balance <= 0 or not self.shuffle:
            return super().__iter__()
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        counts = torch.bincount(self.labels).float()
        present = int((counts > 0).sum())
        n = len(self.labels)
        p = (1.0 - self.balance) / n + self.balance / (present * counts[self.labels])
        indices = torch.multinomial(p, self.total_size, replacement=True, generator=g).tolist()
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def collate_clips(items: list[dict | None]) -> dict | None:
    """default_collate of the clips that loaded; a clip that failed is None (its dataset warned,
    naming it) and is left out; a batch of failures only is None."""
    items = [item for item in items if item is not None]
    return default_collate(items) if items else None


def make_loader(dataset, *, batch_size: int, train: bool, seed: int, num_workers: int, device: torch.device) -> DataLoader:
    """Training order from one (scheduled) DistributedSampler (world of 1 without torchrun), reseeded per epoch."""
    world, rank = dist.world_size(), dist.rank()
    per_rank = max(1, batch_size // world)
    kw = dict(num_replicas=world, rank=rank, shuffle=train, seed=seed, drop_last=False)
    labels = getattr(dataset, "labels", None)
    sampler = ScheduledSampler(dataset, labels, **kw) if train and labels is not None else DistributedSampler(dataset, **kw)
    return DataLoader(
        dataset,
        batch_size=per_rank,
        sampler=sampler,
        collate_fn=collate_clips,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        drop_last=train and len(dataset) >= batch_size,
        persistent_workers=False,
        generator=torch.Generator().manual_seed(seed),
    )
