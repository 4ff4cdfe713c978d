"""The log of a training run: every number the step function returned, with the step it came at.

:class:`History` is what :func:`i2icourse.train.fit` returns, what a checkpoint stores (as tensors,
so ``torch.load(weights_only=True)`` reads it back) and what :func:`i2icourse.plot.figures.plot_history`
draws.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch


@dataclass
class History:
    """Logged numbers over training: ``history['loss']`` is a list of (step, value) pairs."""

    records: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.records.setdefault(name, []).append((step, float(value)))

    def __getitem__(self, name: str) -> list[tuple[int, float]]:
        return self.records[name]

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def names(self) -> list[str]:
        return list(self.records)

    def steps(self, name: str) -> list[int]:
        return [s for s, _ in self.records[name]]

    def values(self, name: str) -> list[float]:
        return [v for _, v in self.records[name]]

    def last(self, name: str) -> float:
        return self.records[name][-1][1]

    def mean_last(self, name: str, n: int) -> float:
        """Mean of the last ``n`` values: a steadier figure than the last one for noisy losses."""
        vals = self.values(name)[-n:]
        return sum(vals) / len(vals)

    def state_dict(self) -> dict:
        return {name: torch.tensor(rows, dtype=torch.float64) for name, rows in self.records.items()}

    def load_state_dict(self, state: dict) -> None:
        self.records = {name: [(int(s), float(v)) for s, v in t.tolist()] for name, t in state.items()}
