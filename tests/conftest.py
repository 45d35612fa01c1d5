"""Shared fixtures: a tiny embedded benchmark and a tiny workflow config (fast on 2 CPU cores)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

# ci_strict: under CI=true a skip fails unless allowed (tests/ci_strict.py); pytester tests it
pytest_plugins = ["pytester", "ci_strict"]

TINY_MODEL = {
    "backbone": "resnet18",
    "width": 8,
    "head_channels": 16,
    "output_stride": 8,
    "norm": "abn",
    "pretrained": None,
}


@pytest.fixture(scope="session")
def tiny_digits(tmp_path_factory) -> Path:
    """A small digits benchmark (32x32 images), generated once per test session."""
    from ucd.data import digits

    root = tmp_path_factory.mktemp("digits")
    digits.generate(root, seed=0, n_train=96, n_val=24, size=32, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_splits(tiny_digits, tmp_path_factory) -> Path:
    """Split files of digits 5-5 (both settings) for the tiny benchmark."""
    from ucd.data import splits

    out = tmp_path_factory.mktemp("splits")
    for setting in ("disjoint", "overlapped"):
        s = splits.compute_split("digits", tiny_digits, "5-5", setting, workers=1, progress=False)
        splits.save_split(s, out / f"{setting}.json")
    return out


@pytest.fixture()
def tiny_config(tiny_digits, tiny_splits) -> dict:
    """A workflow config dict for the tiny benchmark (copy: tests may change it)."""
    return copy.deepcopy(
        {
            "results": "results",
            "datasets": {
                "digits": {
                    "root": str(tiny_digits),
                    "model": TINY_MODEL,
                    "optim": {"lr": 0.02, "epochs": 1, "batch_size": 8},
                    "incremental": {"optim": {"lr": 0.01}},
                    "data": {"crop_size": 32, "num_workers": 0},
                }
            },
        }
    )


def flat(data: dict, prefix: str = "") -> dict:
    """A nested mapping as {"a.b.c": value} (empty mappings kept as values)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def make_run(
    config: dict,
    splits_dir: Path,
    *,
    method: str = "ft",
    step: int = 0,
    setting: str = "disjoint",
    task: str = "5-5",
    seed: int = 42,
):
    """Resolve a run config for the tiny benchmark, pointing at the session's split file."""
    import dataclasses

    from ucd.planning.resolve import resolve

    run = resolve(config, dataset="digits", task=task, setting=setting, method=method, step=step,
                  seed=seed)
    split = str(splits_dir / f"{setting}.json")
    return run.replace(data=dataclasses.replace(run.data, split=split))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models run fastest on one thread, and parallel test processes do not oversubscribe."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
