"""SeededSamples: augmentation is a pure function of (seed, epoch, index); global RNGs restored."""

from __future__ import annotations

import random

import numpy as np
import torch

from ucd.training.resume import SeededSamples


class _Draws:
    """A dataset whose item is one draw of each global RNG (what a transform would use)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> tuple[float, float, float]:
        return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_same_key_same_sample_and_global_state_untouched() -> None:
    samples = SeededSamples(_Draws(), seed=7)
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    expected = (torch.rand(()), random.random(), np.random.rand())
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    a = samples[(1, 2)]
    got = (torch.rand(()), random.random(), np.random.rand())  # as if no sample was drawn
    assert a == samples[(1, 2)]
    assert a != samples[(2, 2)] and a != samples[(1, 3)] and a != SeededSamples(_Draws(), 8)[(1, 2)]
    assert got == expected


def test_torch_stream_is_that_of_manual_seed() -> None:
    """Seeding only the CPU generator gives the stream torch.manual_seed(s) gives on the CPU."""
    from ucd.data.seeding import sample_seed

    torch.manual_seed(sample_seed(7, 1, 2))
    expected = float(torch.rand(()))
    assert SeededSamples(_Draws(), seed=7)[(1, 2)][2] == expected
