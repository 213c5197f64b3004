"""Staged schedules: how the loss's emphasis moves over training epochs.

A schedule maps (epoch, epochs) to a :class:`ScheduleState`: how class-balanced the emotion loss is
(0 = instance-balanced, 1 = fully class-balanced weights), the AU loss weight lambda, and how
class-balanced the sampling is. ``schedule=none`` keeps everything constant.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from mer.registry import Registry

SCHEDULES: Registry[Callable[..., Schedule]] = Registry("schedule")


@dataclass(frozen=True)
class ScheduleState:
    class_balance: float  # mix of class-balanced weights into the emotion loss, in [0, 1]
    au_weight: float  # lambda of the AU loss
    balanced_sampling: float  # share of class-balanced sampling, in [0, 1]


class Schedule:
    def __init__(self, au_weight: float = 1.0) -> None:
        self.au_weight = au_weight

    def __call__(self, epoch: int, epochs: int) -> ScheduleState:
        raise NotImplementedError


@SCHEDULES.register("none")
class ConstantSchedule(Schedule):
    """Instance-balanced throughout; the AU weight stays ``au_weight``."""

    def __call__(self, epoch: int, epochs: int) -> ScheduleState:
        return ScheduleState(class_balance=0.0, au_weight=self.au_weight, balanced_sampling=0.0)


def build_schedule(name: str, **options) -> Schedule:
    return SCHEDULES.build(name, **options)


def blend(progress: float, curve: str = "cosine") -> float:
    """0 -> 1 as ``progress`` goes 0 -> 1: linear, cosine (smooth at both ends) or smoothstep."""
    t = min(max(progress, 0.0), 1.0)
    if curve == "linear":
        return t
    if curve == "cosine":
        return 0.5 - 0.5 * math.cos(math.pi * t)
    if curve == "smoothstep":
        return t * t * (3.0 - 2.0 * t)
    raise ValueError(f"unknown blending curve {curve!r}; valid choices: cosine, linear, smoothstep")


@SCHEDULES.register("phased")
class PhasedProgressiveSchedule(Schedule):
    """Phased progressive learning: representation, transition, classifier.

    Until ``transition_start`` (a share of the epochs) training is instance-balanced, which learns
    features from every sample; from ``transition_start`` to ``transition_end`` the class-balanced
    share rises along ``curve`` (not in one jump), and after it the classifier trains fully
    class-balanced. ``sampling`` > 0 also moves that share of the sampling to class-balanced.
    The AU weight can move from ``au_weight`` to ``au_weight_end`` over the same transition
    (AU supervision helps representation learning early; the emotion classifier matters late).
    """

    def __init__(
        self,
        au_weight: float = 1.0,
        transition_start: float = 0.3,
        transition_end: float = 0.7,
        curve: str = "cosine",
        sampling: float = 0.0,
        au_weight_end: float | None = None,
    ) -> None:
        super().__init__(au_weight)
        if not 0.0 <= transition_start <= transition_end <= 1.0:
            raise ValueError(f"need 0 <= transition_start <= transition_end <= 1, got {transition_start}, {transition_end}")
        blend(0.5, curve)  # validate the name now
        self.start, self.end, self.curve, self.sampling = transition_start, transition_end, curve, sampling
        self.au_weight_end = au_weight if au_weight_end is None else au_weight_end

    def progress(self, epoch: int, epochs: int) -> float:
        position = epoch / max(epochs - 1, 1)  # 0 at the first epoch, 1 at the last
        if self.end <= self.start:
            return float(position >= self.end)
        return blend((position - self.start) / (self.end - self.start), self.curve)

    def __call__(self, epoch: int, epochs: int) -> ScheduleState:
        alpha = self.progress(epoch, epochs)
        au_weight = self.au_weight + alpha * (self.au_weight_end - self.au_weight)
        return ScheduleState(class_balance=alpha, au_weight=au_weight, balanced_sampling=alpha * self.sampling)


@SCHEDULES.register("drw")
class DeferredReweighting(Schedule):
    """Cao et al. 2019 (LDAM-DRW): instance-balanced until ``start`` (share of epochs), then fully re-weighted."""

    def __init__(self, au_weight: float = 1.0, start: float = 0.7) -> None:
        super().__init__(au_weight)
        self.start = start

    def __call__(self, epoch: int, epochs: int) -> ScheduleState:
        on = float(epoch >= round(self.start * epochs))
        return ScheduleState(class_balance=on, au_weight=self.au_weight, balanced_sampling=0.0)
