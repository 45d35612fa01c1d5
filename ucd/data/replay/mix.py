"""Replayed images mixed into every batch at a fixed ratio, as RECALL interleaves them.

RECALL's official code interleaves the two streams (``interleave_ratio_old`` replayed images
per ``interleave_ratio_new`` new ones, 4:4 at batch size 4, data_loader.py
``interleave_datasets``): half of the images trained on are replayed. Here each global batch
holds ``round(B * r / (1 + r))`` replayed images for a ratio r, spread evenly through the batch
(so every rank's share of a distributed batch keeps the ratio). An epoch is one pass over the
step's own images; replayed images are drawn without replacement from a stream of shuffled
passes over the replay set that runs on across epochs. Every batch is a pure function of
(seed, epoch, batch index), so a resumed step sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, Sampler

from ucd.data.seeding import sample_seed


class ReplayMix(Dataset):
    """The step's images (indices 0..n_new-1) followed by the replayed ones."""

    def __init__(self, new: Dataset, replay: Dataset, ratio: float) -> None:
        self.new, self.replay, self.ratio = new, replay, float(ratio)
        self.n_new, self.n_replay = len(new), len(replay)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return self.n_new + self.n_replay

    def __getitem__(self, i: int):
        return self.new[i] if i < self.n_new else self.replay[i - self.n_new]

    def make_batch_sampler(self, batch_size: int, seed: int) -> MixedBatchSampler:
        """The engine's batch sampler for this dataset (instead of a plain shuffle)."""
        return MixedBatchSampler(self.n_new, self.n_replay, batch_size, self.ratio, seed)


def split_batch(batch_size: int, ratio: float) -> tuple[int, int]:
    """(new, replayed) images of a batch at ``ratio`` replayed images per new image."""
    replayed = round(batch_size * ratio / (1 + ratio))
    return batch_size - replayed, replayed


def replay_slots(batch_size: int, n_replay: int) -> list[bool]:
    """Which positions of a batch hold replayed images: ``n_replay`` of them, evenly spread."""
    return [(i + 1) * n_replay // batch_size > i * n_replay // batch_size
            for i in range(batch_size)]


class MixedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of ``(epoch, index)`` keys (``ucd.training.resume.SeededSamples``), each with a fixed
    number of replayed images; ``start(epoch, batch)`` skips batches already trained."""

    def __init__(self, n_new: int, n_replay: int, batch_size: int, ratio: float,
                 seed: int) -> None:
        self.new_per_batch, self.per_batch = split_batch(batch_size, ratio)
        if self.new_per_batch < 1 or (ratio > 0 and self.per_batch < 1):
            raise ValueError(f"replay_ratio {ratio} at batch size {batch_size} leaves "
                             f"{self.new_per_batch} new and {self.per_batch} replayed images "
                             "per batch: both must be >= 1")
        if n_new < self.new_per_batch or (self.per_batch and n_replay < 1):
            raise ValueError(f"{n_new} new and {n_replay} replayed images cannot fill batches "
                             f"of {self.new_per_batch} new + {self.per_batch} replayed images")
        self.n_new, self.n_replay, self.batch_size, self.seed = n_new, n_replay, batch_size, seed
        self.slots = replay_slots(batch_size, self.per_batch)
        self.epoch, self.skip = 0, 0
        self._passes: dict[int, list[int]] = {}

    def start(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.n_new // self.new_per_batch  # drop_last

    def _replayed(self, position: int) -> int:
        """Index (into ReplayMix) of the replayed image at a position of the replay stream."""
        n_pass, offset = divmod(position, self.n_replay)
        if n_pass not in self._passes:
            g = torch.Generator().manual_seed(sample_seed(self.seed, n_pass, -2))
            self._passes = {n_pass: torch.randperm(self.n_replay, generator=g).tolist()}
        return self.n_new + self._passes[n_pass][offset]

    def batch(self, epoch: int, b: int, perm: list[int]) -> list[int]:
        """Indices of batch ``b`` of ``epoch`` given the epoch's permutation of new images."""
        new = iter(perm[b * self.new_per_batch: (b + 1) * self.new_per_batch])
        start = (epoch * len(self) + b) * self.per_batch
        replayed = iter(self._replayed(start + j) for j in range(self.per_batch))
        return [next(replayed) if slot else next(new) for slot in self.slots]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -1))
        perm = torch.randperm(self.n_new, generator=g).tolist()
        for b in range(self.skip, len(self)):
            yield [(self.epoch, i) for i in self.batch(self.epoch, b, perm)]
