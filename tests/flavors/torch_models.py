"""Module classes for the pytorch flavor tests. They live in a module of their own because the
flavor records a class's import path, and a class defined in a test function cannot be
imported back."""

from __future__ import annotations

import torch
from torch import nn


class TinyNet(nn.Module):
    """Constructible with no arguments."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        self.register_buffer("scale", torch.tensor([2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x) * self.scale


class SizedNet(nn.Module):
    """Needs constructor arguments: saved only with ``modelreg_init_args`` set."""

    def __init__(self, n_in: int, hidden: int) -> None:
        super().__init__()
        self.first = nn.Linear(n_in, hidden)
        self.second = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(torch.tanh(self.first(x)))


class TiedNet(nn.Module):
    """Two attributes share one weight tensor, as tied embeddings do."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Linear(3, 3, bias=False)
        self.decode = nn.Linear(3, 3, bias=False)
        self.decode.weight = self.encode.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
