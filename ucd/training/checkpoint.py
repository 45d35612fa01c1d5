"""Checkpoints: atomic save, integrity-checked load, and the checks a next step relies on.

A checkpoint carries the model weights, the classes learned at each step, the resolved run
config (nanoGPT-style: a checkpoint is self-describing), the methods' state and training
metrics, plus a digest of its payload so that a truncated or altered file is detected.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

from ucd.facts.config import ModelConfig, build_section, config_hash
from ucd.facts.spec import StepSpec

FORMAT = "ucd-checkpoint/1"
# Model settings that must agree between consecutive steps.
MODEL_KEYS = ("backbone", "output_stride", "width", "head_channels", "aspp_rates")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, or does not fit the step that wants to use it."""


class UnsafeFileError(CheckpointError):
    """A file holds more than tensors and plain containers: refused before anything in it runs."""


def load_plain(source: str | Path | bytes, path: str | Path) -> Any:
    """``torch.load`` restricted to tensors, numbers, strings and plain containers
    (``weights_only=True``): a pickle that names any other callable (a class, ``open``,
    ``os.system``) is refused when that name is read, before it is called, so loading a file
    shared by someone else never runs its code. ``path`` names the file in messages.
    """
    stream = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        return torch.load(stream, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise  # a truncated or corrupt file: the caller's message
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
        what = f"names {found.group(1)}" if found else "holds objects"
        raise UnsafeFileError(
            f"{path} {what}, which is not a tensor, number, string or plain container: refused "
            "without loading it (a checkpoint or resumable state written by ucd holds only "
            "those; a file from elsewhere may run code when unpickled)"
        ) from None


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temporary file, fsync, rename) with a digest of its bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "format": FORMAT, "config_hash": config_hash(payload["config"])}
    buf = io.BytesIO()
    torch.save(payload, buf)
    blob = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(blob)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    digest_path = path.with_name(path.name + ".sha256")
    tmp = digest_path.with_name(f".{digest_path.name}.tmp{os.getpid()}")
    tmp.write_text(_digest(blob) + "\n")
    tmp.replace(digest_path)


def load_checkpoint(path: str | Path, *, verify: bool = True) -> dict[str, Any]:
    """Load a checkpoint, checking that it exists, matches its digest and has our format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    blob = path.read_bytes()
    digest_path = path.with_name(path.name + ".sha256")
    if verify and digest_path.is_file():
        expected = digest_path.read_text().strip()
        if _digest(blob) != expected:
            raise CheckpointError(
                f"checkpoint {path} is corrupt: its SHA-256 does not match {digest_path.name} "
                "(truncated or modified); retrain this step (delete the file and rerun)"
            )
    try:
        payload = load_plain(blob, path)
    except UnsafeFileError:
        raise
    except Exception as err:  # truncated zip, pickle error, ...
        raise CheckpointError(
            f"checkpoint {path} cannot be read ({err}); retrain this step"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ucd checkpoint (format {FORMAT} expected)")
    if payload.get("config_hash") != config_hash(payload["config"]):
        raise CheckpointError(f"checkpoint {path}: its config does not match its recorded hash")
    return payload


def check_previous(prev: dict[str, Any], spec: StepSpec, path: str | Path) -> None:
    """Refuse a previous-step checkpoint that does not fit the step ``spec`` is about to train.

    The previous step may come from another task of the same dataset when it trained the same
    classes on the same images (a step 0 shared by tasks 15-5 and 15-1): classes per step,
    dataset, setting, seed and the model's shape must agree.
    """
    run = spec.run
    k = run.step
    cfg = prev["config"]
    where = f"previous-step checkpoint {path}"
    for key in ("dataset", "setting", "seed"):
        if cfg[key] != getattr(run, key):
            raise CheckpointError(
                f"{where} is for {key} {cfg[key]!r}, this step is {getattr(run, key)!r}"
            )
    if cfg["step"] != k - 1:
        raise CheckpointError(f"{where} is step {cfg['step']}, step {k - 1} expected")
    expected = [list(c) for c in spec.classes[:-1]]
    if [list(c) for c in prev["classes"]] != expected:
        raise CheckpointError(
            f"{where} has classes per step {prev['classes']}, but task {run.task} of "
            f"{run.dataset} expects {expected} before step {k}"
        )
    before = build_section(ModelConfig, cfg["model"], f"{where}: model")
    for key in MODEL_KEYS:
        if getattr(before, key) != getattr(run.model, key):
            raise CheckpointError(
                f"{where} has model.{key}={getattr(before, key)!r}, this step asks for "
                f"{getattr(run.model, key)!r}"
            )
