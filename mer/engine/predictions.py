"""Per-clip predictions of a model on a data set, and their metrics (UF1, UAR, AU F1)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mer.engine.metrics import au_metrics, choose_au_thresholds, classification_metrics, per_dataset_metrics


@dataclass
class Predictions:
    """Per-clip outputs of :func:`evaluate`, in dataset order."""

    clip_ids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    true: list[int] = field(default_factory=list)
    probs: list[list[float]] = field(default_factory=list)  # (N, E) emotion probabilities
    au_true: list[list[float]] = field(default_factory=list)  # (N, K) clip AU targets
    au_probs: list[list[float]] = field(default_factory=list)  # (N, K) clip AU probabilities
    au_thresholds: list[list[float]] = field(
        default_factory=list
    )  # (N, K) the model's AU decision thresholds; empty: none chosen
    datasets: list[str] = field(default_factory=list)  # (N,) each clip's set in a composite; empty outside one

    @property
    def pred(self) -> list[int]:
        return [int(np.argmax(p)) for p in self.probs]

    def metrics(self, num_classes: int) -> dict:
        """Classification metrics, and AU metrics at 0.5 (``au_f1``) and, when the model has
        thresholds chosen on validation, at those (``au_f1_tuned``, ``per_au_f1_tuned``); for the
        clips of a composite also each set's UF1, UAR and clip count (``per_dataset``)."""
        out = classification_metrics(self.true, self.pred, num_classes)
        if self.datasets:
            out["per_dataset"] = per_dataset_metrics(self.true, self.pred, self.datasets, num_classes)
        if self.au_probs:
            au_true, au_probs = np.array(self.au_true), np.array(self.au_probs)
            out.update(au_metrics(au_true, au_probs))
            if self.au_thresholds:
                tuned = au_metrics(au_true, au_probs, np.array(self.au_thresholds))
                out.update(au_f1_tuned=tuned["au_f1"], per_au_f1_tuned=tuned["per_au_f1"])
        return out

    def choose_au_thresholds(self) -> list[float] | None:
        """Per-AU decision thresholds chosen on these (validation) predictions; None without AUs."""
        return choose_au_thresholds(self.au_true, self.au_probs).tolist() if self.au_probs else None

    def with_au_thresholds(self, thresholds) -> Predictions:
        """The same predictions, decided at the model's per-AU ``thresholds`` (K,); None: at 0.5."""
        if thresholds is not None and self.au_probs:
            self.au_thresholds = [[float(t) for t in thresholds] for _ in self.au_probs]
        return self

    def extend(self, other: Predictions) -> Predictions:
        """``other``'s clips appended; a per-clip list only one side has (AU thresholds, sets: e.g.
        a fold saved before they were recorded) is dropped, so each list keeps one entry per clip."""
        if self.clip_ids and other.clip_ids:
            partial = {
                name: [] for name in ("au_thresholds", "datasets") if bool(getattr(self, name)) != bool(getattr(other, name))
            }
            self.__dict__.update(partial)  # without thresholds: AU F1 at 0.5 only
            other = Predictions(**{**other.__dict__, **partial})
        for name in ("clip_ids", "subjects", "true", "probs", "au_true", "au_probs", "au_thresholds", "datasets"):
            getattr(self, name).extend(getattr(other, name))
        return self
