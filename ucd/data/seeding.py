"""Per-sample seeds: a sample's augmentation (and a replay mix's draws) depend only on the run's
seed, the epoch and the sample's index, so a resumed or re-sharded run draws the same numbers.
Data-level, so that the data layer's samplers need nothing from the training layer."""

from __future__ import annotations


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A per-sample seed that depends only on (run seed, epoch, sample index)."""
    return (((seed * 1_000_003) + epoch) * 1_000_003 + index) % (2**63 - 1)
