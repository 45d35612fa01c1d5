"""Datasets and class-incremental tasks, read from tasks.yaml (the one source of truth).

A task is a list of steps (lists of class indices); step 0 holds background (0). Steps must
list classes in class-index order, so the model at step k has T_k channels = classes 0..T_k-1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

SETTINGS = ("disjoint", "overlapped")


@dataclass(frozen=True)
class DatasetInfo:
    """Static description of one dataset: classes, colours, reader and reported settings."""

    name: str
    num_classes: int  # with background
    class_names: list[str]  # index 0 = background
    palette: list[tuple[int, int, int]]
    ignore_index: int = 255
    settings: tuple[str, ...] = SETTINGS  # settings the paper reports (others allowed)
    layout: str = "voc"
    reader: dict[str, Any] = field(default_factory=dict, compare=False)
    source: str = ""
    images: dict[str, int] = field(default_factory=dict, compare=False)  # published set sizes


@dataclass(frozen=True)
class Task:
    """A class-incremental task: the classes learned at each step."""

    dataset: str
    name: str
    steps: tuple[tuple[int, ...], ...]
    expected_counts: dict[str, tuple[int | None, ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def n_steps(self) -> int:
        return len(self.steps)

    def _check_step(self, k: int) -> None:
        if not isinstance(k, int) or not 0 <= k < self.n_steps:
            raise ValueError(
                f"step {k!r} out of range for task {self.dataset}/{self.name} "
                f"(steps 0..{self.n_steps - 1})"
            )

    def classes_seen(self, k: int) -> list[int]:
        """Sorted classes learned at steps 0..k (with background)."""
        self._check_step(k)
        return sorted(c for s in self.steps[: k + 1] for c in s)

    def new_classes(self, k: int) -> list[int]:
        """Classes learned at step k (step 0 includes background)."""
        self._check_step(k)
        return sorted(self.steps[k])

    def n_classes(self, k: int) -> int:
        """T_k: number of classes seen up to and including step k."""
        return len(self.classes_seen(k))

    @property
    def base_classes(self) -> list[int]:
        """Step-0 classes without background (the paper's "old" column)."""
        return [c for c in sorted(self.steps[0]) if c != 0]

    def added_classes(self, k: int) -> list[int]:
        """Classes learned at steps 1..k (the paper's "new" column after step k)."""
        self._check_step(k)
        return sorted(c for s in self.steps[1 : k + 1] for c in s)

    def step_of(self) -> dict[int, int]:
        """Map class -> step at which it is learned."""
        return {c: k for k, s in enumerate(self.steps) for c in s}


def voc_colormap(n: int) -> list[tuple[int, int, int]]:
    """The Pascal VOC colour map (bits of the class index interleaved into r, g, b)."""
    out = []
    for i in range(n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out.append((r, g, b))
    return out


def _parse_step(spec: Any, where: str) -> list[int]:
    items = spec if isinstance(spec, list) else [spec]
    out: list[int] = []
    for it in items:
        if isinstance(it, bool):
            raise ValueError(f"{where}: bad class {it!r}")
        if isinstance(it, int):
            out.append(it)
        elif isinstance(it, str) and ".." in it:
            a, b = it.split("..", 1)
            try:
                lo, hi = int(a), int(b)
            except ValueError:
                raise ValueError(f"{where}: bad range {it!r} (expected 'a..b')") from None
            if hi < lo:
                raise ValueError(f"{where}: empty range {it!r}")
            out.extend(range(lo, hi + 1))
        else:
            raise ValueError(f"{where}: bad class {it!r} (int, 'a..b' or a list of those)")
    return out


def parse_task(dataset: str, name: str, spec: Any, num_classes: int) -> Task:
    """Build and validate a Task from its tasks.yaml entry."""
    where = f"task {dataset}/{name}"
    expected: dict[str, tuple[int | None, ...]] = {}
    if isinstance(spec, dict):
        if "steps" not in spec:
            raise ValueError(f"{where}: entry has no 'steps'")
        for setting, counts in (spec.get("expected_counts") or {}).items():
            expected[setting] = tuple(counts)
        spec = spec["steps"]
    if not isinstance(spec, list) or not spec:
        raise ValueError(f"{where}: steps must be a non-empty list")
    steps = [_parse_step(s, f"{where} step {k}") for k, s in enumerate(spec)]
    flat = [c for s in steps for c in s]
    if any(not s for s in steps):
        raise ValueError(f"{where}: empty step")
    if len(set(flat)) != len(flat):
        raise ValueError(f"{where}: a class appears in more than one step")
    if 0 not in steps[0]:
        raise ValueError(f"{where}: step 0 must contain background (class 0)")
    bad = [c for c in flat if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"{where}: classes {bad} outside 0..{num_classes - 1}")
    if flat != list(range(len(flat))):
        raise ValueError(
            f"{where}: steps must list classes 0..{len(flat) - 1} in class-index order"
        )
    for setting, counts in expected.items():
        if setting not in SETTINGS or len(counts) != len(steps):
            raise ValueError(f"{where}: expected_counts[{setting!r}] must have one per step")
    return Task(dataset, name, tuple(tuple(s) for s in steps), expected)


def _parse_dataset(name: str, d: dict) -> tuple[DatasetInfo, dict[str, Task]]:
    classes = list(d["classes"])
    n = len(classes)
    pal = d.get("palette", "colormap")
    palette = voc_colormap(n) if pal == "colormap" else [tuple(int(v) for v in p) for p in pal]
    if len(palette) != n:
        raise ValueError(f"dataset {name}: palette has {len(palette)} colours for {n} classes")
    settings = tuple(d.get("settings", SETTINGS))
    if any(s not in SETTINGS for s in settings):
        raise ValueError(f"dataset {name}: settings must be among {SETTINGS}")
    images = dict(d.get("images") or {})
    if any(k not in ("train", "val") or not isinstance(v, int) or isinstance(v, bool) or v < 1
           for k, v in images.items()):
        raise ValueError(f"dataset {name}: images must map train/val to counts >= 1, "
                         f"got {images!r}")
    info = DatasetInfo(
        name=name,
        num_classes=n,
        class_names=classes,
        palette=palette,
        ignore_index=int(d.get("ignore_index", 255)),
        settings=settings,
        layout=d.get("layout", "voc"),
        reader=dict(d.get("reader") or {}),
        source=" ".join(str(d.get("source", "")).split()),
        images=images,
    )
    tasks = {str(t): parse_task(name, str(t), spec, n) for t, spec in d.get("tasks", {}).items()}
    return info, tasks


@functools.cache
def _registry() -> tuple[dict[str, DatasetInfo], dict[str, dict[str, Task]]]:
    text = resources.files("ucd.data").joinpath("tasks.yaml").read_text()
    raw = yaml.safe_load(text)
    infos, tasks = {}, {}
    for name, d in raw["datasets"].items():
        infos[name], tasks[name] = _parse_dataset(name, d)
    return infos, tasks


def list_datasets() -> list[str]:
    """Names of every registered dataset."""
    return list(_registry()[0])


def get_dataset_info(name: str) -> DatasetInfo:
    """The DatasetInfo of `name`; ValueError listing the valid names otherwise."""
    infos = _registry()[0]
    if name not in infos:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {', '.join(infos)}")
    return infos[name]


def get_task(dataset: str, task: str) -> Task:
    """The Task `task` of `dataset`; ValueError listing valid datasets/tasks otherwise."""
    get_dataset_info(dataset)
    tasks = _registry()[1][dataset]
    if str(task) not in tasks:
        raise ValueError(
            f"unknown task {task!r} for dataset {dataset!r}; valid tasks: {', '.join(tasks)}"
        )
    return tasks[str(task)]


def list_tasks(dataset: str | None = None) -> list[Task]:
    """Every task, or those of one dataset."""
    if dataset is not None:
        get_dataset_info(dataset)
        return list(_registry()[1][dataset].values())
    return [t for ts in _registry()[1].values() for t in ts.values()]


def check_setting(dataset: str, setting: str) -> str:
    """Validate a setting name (disjoint/overlapped; any dataset may use either).

    Cityscapes: the paper reports overlapped only, but disjoint is well defined (docs/protocol.md
    gives its image counts), so it is allowed; `DatasetInfo.settings` lists the reported ones.
    """
    get_dataset_info(dataset)
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; valid settings: {', '.join(SETTINGS)}")
    return setting
