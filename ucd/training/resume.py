"""Preemption-safe training: resumable state, signal handling, reproducible sample order.

A step saves its full training state (model, optimiser, position in the data, RNG states, the
terms' state) periodically and when SLURM signals preemption or the time limit (SIGTERM,
SIGUSR1), then exits with :data:`RESUME_EXIT_CODE` so the workflow reruns it; the rerun
continues from the state. Data order and augmentation depend only on (seed, step, epoch, sample
index), so a resumed step sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ucd.data.seeding import sample_seed
from ucd.facts.config import config_hash
from ucd.training.checkpoint import UnsafeFileError, load_plain

log = logging.getLogger("ucd.training.resume")

RESUME_EXIT_CODE = 75  # EX_TEMPFAIL: "try again", the state is saved
# 2: the SGD state of ucd.optim (now ucd.training.optim); 3: plain data only (weights_only=True)
RESUME_FORMAT = "ucd-resume/3"


class Preempted(SystemExit):
    """Raised after the resumable state was saved on a preemption signal."""

    def __init__(self, signame: str, path: Path) -> None:
        super().__init__(RESUME_EXIT_CODE)
        self.message = f"received {signame}: saved resumable state to {path}; rerun to resume"


class SignalFlag:
    """Records SIGTERM / SIGUSR1 instead of dying, so the loop can save and exit cleanly."""

    SIGNALS = ("SIGTERM", "SIGUSR1")

    def __init__(self) -> None:
        self.received: str | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> SignalFlag:
        for name in self.SIGNALS:
            sig = getattr(signal, name)
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside a test runner thread)
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class SeededSamples(Dataset):
    """Wraps a dataset so that item ``(epoch, i)`` is augmented from its own seed.

    The global CPU RNGs (Python, NumPy, torch) are seeded per sample and restored afterwards,
    so augmentation is a pure function of (seed, epoch, index), whatever the worker layout.
    Only torch's CPU generator is touched (transforms run on the CPU): ``torch.manual_seed``
    would also seed every accelerator backend, about 0.1 ms per sample, for the same stream.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        s = sample_seed(self.seed, epoch, index)
        gen = torch.default_generator
        py_state, np_state, torch_state = random.getstate(), np.random.get_state(), gen.get_state()
        random.seed(s)
        np.random.seed(s % 2**32)
        gen.manual_seed(s)
        try:
            return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            gen.set_state(torch_state)


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Shuffled batches of ``(epoch, index)`` keys; the permutation depends on (seed, epoch).

    ``start(epoch, batch)`` skips the batches already trained when resuming mid-epoch.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.skip = 0, 0

    def start(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return self.n // self.batch_size  # drop_last

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        g = torch.Generator().manual_seed(sample_seed(self.seed, self.epoch, -1))
        perm = torch.randperm(self.n, generator=g).tolist()
        for b in range(self.skip, len(self)):
            chunk = perm[b * self.batch_size : (b + 1) * self.batch_size]
            yield [(self.epoch, i) for i in chunk]


def resume_path(out: str | Path) -> Path:
    """Where the resumable state of the step writing ``out`` lives."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def rng_state() -> dict[str, Any]:
    """The CPU random generators' states as tensors, numbers and tuples (NumPy's key array as
    a tensor), so that a resumable state loads with ``weights_only=True``."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                      float(cached))}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])


def save_resume(path: Path, state: dict[str, Any], run: dict[str, Any]) -> None:
    """Write the resumable state atomically; a kill mid-write leaves the previous state intact."""
    state = {**state, "format": RESUME_FORMAT, "config_hash": config_hash(run), "rng": rng_state()}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    publish(tmp, path)


def publish(tmp: Path, path: Path) -> None:
    """Make a fully written temporary file the state: flush it to disk, then rename it."""
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    tmp.replace(path)


def load_resume(path: Path, run: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state for this exact run config, or None (stale, unreadable and refused ones
    are set aside, with a warning naming the file). Loaded with ``weights_only=True``
    (:func:`ucd.training.checkpoint.load_plain`): a state holding anything but tensors and plain
    containers is refused before any of it runs."""
    if not path.is_file():
        return None
    try:
        state = load_plain(path, path)
        ok = isinstance(state, dict) and state.get("format") == RESUME_FORMAT
    except UnsafeFileError as err:
        log.warning("%s; starting the step afresh", err)
        ok, state = False, None
    except Exception as err:  # noqa: BLE001 - any unreadable file is set aside, never trusted
        log.warning("resumable state %s is unreadable (%s): starting the step afresh", path, err)
        ok, state = False, None
    if state is not None and not ok:
        log.warning("resumable state %s has format %r, not %r: starting the step afresh", path,
                    state.get("format") if isinstance(state, dict) else None, RESUME_FORMAT)
    if state is not None and ok and state.get("config_hash") != config_hash(run):
        log.warning("resumable state %s was saved under another config: starting afresh", path)
        ok = False
    if not ok:
        path.replace(path.with_name(path.name + ".stale"))
        return None
    set_rng_state(state["rng"])
    return state
