"""Split files: which training images each step of a (dataset, task, setting) uses.

Computed once from the label files (in parallel), saved as JSON with the size and SHA-256 of
every training label file and a hash of the whole file, and reused by every method.
`load_split(..., root=...)` checks the data still matches: "fast" (default) checks the list
of label files, every file's size, and the full content of 64 evenly spread files (cheap
enough for the start of every training job); "full" re-hashes every file. A mismatch raises
SplitMismatchError and is never silently recomputed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ucd.data.base import InputDataError, check_label_values, get_reader, undecodable
from ucd.data.tasks import Task, check_setting, get_task
from ucd.facts.progress import Progress

FORMAT = "ucd-split/1"
FAST_SAMPLE = 64


class SplitMismatchError(ValueError):
    """The split file does not match the data (or its own content hash)."""


def _scan(args: tuple[str, bytes, bytes, str]) -> tuple[list[int], int, str]:
    """Classes present in one label file (decoded by the LUT), its size and SHA-256; the file
    must decode and hold only the dataset's label values (`valid`), else InputDataError."""
    path, lut, valid, dataset = args
    data = Path(path).read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode = im.mode
            raw = np.array(im, dtype=np.uint8) if mode in ("P", "L") else None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise InputDataError(undecodable(dataset, "label", path, err)) from err
    if raw is None:
        raise ValueError(f"label file '{path}' has image mode {mode}; expected P or L")
    check_label_values(raw, np.frombuffer(valid, bool), path, dataset)
    present = np.unique(np.frombuffer(lut, np.uint8)[raw]).tolist()
    return present, len(data), hashlib.sha256(data).hexdigest()


def select_images(image_classes: dict[str, list[int]], task: Task, setting: str) -> list[list[str]]:
    """Image ids of each step (docs/protocol.md), in the order of `image_classes`.

    overlapped: used at step k if it has a pixel of a class of step k (0 and 255 ignored).
    disjoint: additionally no pixel of a later step's class, i.e. only at its last step.
    """
    step_of = task.step_of()
    out: list[list[str]] = [[] for _ in task.steps]
    for i, classes in image_classes.items():
        steps = sorted({step_of[c] for c in classes if c not in (0, 255) and c in step_of})
        if not steps:
            continue
        for k in steps if setting == "overlapped" else steps[-1:]:
            out[k].append(i)
    return out


def _content_hash(split: dict[str, Any]) -> str:
    body = {k: v for k, v in split.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _inputs_hash(files: list[list[Any]]) -> str:
    h = hashlib.sha256()
    for rel, size, sha in files:
        h.update(f"{rel}\t{size}\t{sha}\n".encode())
    return h.hexdigest()


def compute_split(
    dataset: str,
    root: str | os.PathLike,
    task: str,
    setting: str,
    *,
    workers: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Scan the training labels under `root` and return the split (see module doc)."""
    check_setting(dataset, setting)
    t = get_task(dataset, task)
    reader = get_reader(dataset, root)
    samples = reader.samples("train")
    luts = (reader.lut.tobytes(), reader.valid_raw.tobytes(), dataset)
    jobs = [(str(s.label), *luts) for s in samples]
    workers = min(8, os.cpu_count() or 1) if workers is None else max(1, int(workers))
    bar = dict(total=len(jobs), desc=f"split {dataset} {task} {setting}", enabled=progress)
    if workers == 1 or len(jobs) < 64:
        results = [_scan(j) for j in Progress(jobs, **bar)]
    else:
        with ProcessPoolExecutor(workers) as ex:
            results = list(Progress(ex.map(_scan, jobs, chunksize=32), **bar))
    image_classes = {s.id: r[0] for s, r in zip(samples, results)}
    files = [[reader.relpath(s.label), r[1], r[2]] for s, r in zip(samples, results)]
    ids = select_images(image_classes, t, setting)
    split: dict[str, Any] = {
        "format": FORMAT,
        "dataset": dataset,
        "task": t.name,
        "setting": setting,
        "steps": [list(s) for s in t.steps],
        "counts": [len(x) for x in ids],
        "ids": ids,
        "image_classes": image_classes,
        "inputs": {"n_files": len(files), "hash": _inputs_hash(files), "files": files},
    }
    split["hash"] = _content_hash(split)
    return split


def save_split(split: dict[str, Any], path: str | os.PathLike) -> None:
    """Write `split` to `path` atomically (temporary file + rename), with its content hash."""
    split = dict(split)
    split["hash"] = _content_hash(split)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(split, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_split(
    path: str | os.PathLike,
    *,
    root: str | os.PathLike | None = None,
    verify: bool | str = True,
) -> dict[str, Any]:
    """Read a split file; check its own hash, and (with `root`) that the labels are unchanged.

    verify: True/"fast" or "full" (see module doc), False to skip the data check.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"split file '{path}' does not exist; create it with "
            "`python -m ucd data split DATASET TASK SETTING --root DIR --out FILE`"
        )
    try:
        split = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise SplitMismatchError(f"split file '{path}' is not valid JSON: {e}") from None
    if not isinstance(split, dict) or split.get("format") != FORMAT:
        raise SplitMismatchError(f"split file '{path}' is not a {FORMAT} split file")
    if split.get("hash") != _content_hash(split):
        raise SplitMismatchError(
            f"split file '{path}' was modified or corrupted (its content hash does not match); "
            "recompute it with `python -m ucd data split`"
        )
    if root is not None and verify:
        mode = "fast" if verify is True else verify
        if mode not in ("fast", "full"):
            raise ValueError(f"verify must be True, False, 'fast' or 'full' (got {verify!r})")
        verify_split(split, root, full=mode == "full", path=path)
    return split


def verify_split(
    split: dict[str, Any], root: str | os.PathLike, *, full: bool = False, path: Any = None
) -> None:
    """Raise SplitMismatchError if the training labels under `root` differ from the split's."""
    reader = get_reader(split["dataset"], root)
    current = {reader.relpath(s.label): s.label for s in reader.samples("train")}
    stored = split["inputs"]["files"]
    names = {rel for rel, _, _ in stored}
    problems = [f"{r}: new file" for r in sorted(set(current) - names)]
    problems += [f"{r}: missing" for r in sorted(names - set(current))]
    step = max(1, len(stored) // FAST_SAMPLE)
    for n, (rel, size, sha) in enumerate(stored):
        if rel not in current:
            continue
        p = current[rel]
        if p.stat().st_size != size:
            problems.append(f"{rel}: size {p.stat().st_size} != {size}")
        elif (full or n % step == 0) and hashlib.sha256(p.read_bytes()).hexdigest() != sha:
            problems.append(f"{rel}: content changed")
    if problems:
        where = f" '{path}'" if path else ""
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise SplitMismatchError(
            f"split file{where} does not match the labels under '{root}' "
            f"({len(problems)} differences: {shown}). The labels changed since the split was "
            "computed; recompute it explicitly with `python -m ucd data split "
            f"{split['dataset']} {split['task']} {split['setting']} --root ... --out ...` "
            "(it is never recomputed automatically)"
        )
