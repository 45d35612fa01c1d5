"""The experiment plan: the grid's cells, seeds and steps, which trainings are shared, and the
results path scheme. The Snakefile is a thin layer over this module (and ``ucd cost`` reads the
same plan), so what runs and where it is written is decided once, here.

Results path scheme (RESULTS = the config's ``results``)::

    RESULTS/data/{dataset}/                                   generated data
    RESULTS/splits/{dataset}/{task}/{setting}.json            images per step
    RESULTS/{dataset}/{task}/{setting}/{method}/seed{seed}/step{k}/
        run.yaml  model.pt  metrics.json  predictions.npz  train.log
    RESULTS/{dataset}/{task}/{setting}/{method}/seed{seed}/final
    RESULTS/{dataset}/_shared/{group}/seed{seed}/step0/       a shared training
    RESULTS/replay/{dataset}/{task}/{setting}/step{k}/n{N}/   replay set (N images per class)

A training is shared when several cells would train exactly the same thing: step 0 of every
method whose ``step0`` is another method's (plain cross-entropy on the step-0 classes; also
across tasks with the same step-0 classes and later classes, e.g. 15-5 and 15-1), and Joint
(all data, all classes: the same for every task and setting of a dataset). Such a cell's step
directory holds its own metrics.json, summarised from the shared training's confusion matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from ucd.data.tasks import get_dataset_info, get_task, list_tasks
from ucd.facts.config import ConfigError, LabelsConfig, RunConfig
from ucd.facts.spec import VOLATILE, StepSpec, training_key
from ucd.facts.tablespec import required_runs
from ucd.methods import get_method, step_spec
from ucd.planning.resolve import method_of, resolve

__all__ = ["VOLATILE", "Cell", "Plan", "StepSpec", "canonical_task", "grid_cells", "parse_cell",
           "training_key"]

DEFAULT_SEEDS = (42,)
class Cell(NamedTuple):
    """One (dataset, task, setting, method) of the grid."""

    dataset: str
    task: str
    setting: str
    method: str

    @property
    def path(self) -> str:
        return "/".join(self)


def parse_cell(text: str) -> Cell:
    """'dataset/task/setting/method' -> Cell."""
    parts = text.strip().split("/")
    if len(parts) != 4 or not all(parts):
        raise ConfigError(f"benchmark {text!r} must read 'dataset/task/setting/method'")
    return Cell(*parts)


def grid_cells(config: Mapping[str, Any]) -> list[Cell]:
    """Every cell of the grid, in config order, without duplicates (``benchmark``, when set,
    replaces the grid by the cells it names)."""
    chosen = config.get("benchmark")
    if chosen:
        items = chosen if isinstance(chosen, list) else str(chosen).split(",")
        return list(dict.fromkeys(parse_cell(t) for t in items if t.strip()))
    cells: dict[Cell, None] = {}
    for i, entry in enumerate(config.get("grid") or []):
        if "tables" in entry:
            try:
                runs = required_runs(entry["tables"], embedded=bool(entry.get("embedded")))
            except ValueError as err:
                raise ConfigError(f"grid.{i}.tables: {err}") from None
            keep = entry.get("methods")
            cells.update((Cell(*r), None) for r in runs if keep is None or r[3] in keep)
        else:
            for bench in entry["benchmarks"]:
                d, t, s = bench.split("/")
                cells.update((Cell(d, t, s, m), None) for m in entry["methods"])
    return list(cells)


def canonical_task(dataset: str, task: str) -> str:
    """The first task of the registry whose step 0 trains the same classes on the same images
    as ``task``'s (same step-0 classes, same classes after it): their step 0 is one training."""
    t = get_task(dataset, task)
    later = sorted(c for s in t.steps[1:] for c in s)
    for other in list_tasks(dataset):
        if other.steps[0] == t.steps[0] and sorted(c for s in other.steps[1:] for c in s) == later:
            return other.name
    return task


@dataclass
class Plan:
    """The plan of a workflow config (cached resolution of every run config it needs)."""

    config: Mapping[str, Any]

    def __post_init__(self) -> None:
        self.results = str(self.config.get("results", "results"))
        self.cells = grid_cells(self.config)
        # int(): `--config seeds=[1,2]` gives strings (the schema admits digit strings)
        self.seeds = tuple(dict.fromkeys(int(s) for s in self.config.get("seeds") or DEFAULT_SEEDS))
        self._runs: dict[tuple, RunConfig] = {}
        self._shared: dict[tuple, RunConfig | None] = {}
        self._specs: dict[tuple, StepSpec] = {}

    # -- runs ----------------------------------------------------------------------------
    def base_method(self, method: str) -> str:
        return method_of(self.config, method)[0]

    def steps(self, dataset: str, task: str, method: str) -> tuple[int, ...]:
        """Training steps of a method on a task (Joint: one step on all data and classes)."""
        if get_method(self.base_method(method)).joint:
            return (0,)
        return tuple(range(get_task(dataset, task).n_steps))

    def run(self, cell: Cell, step: int, seed: int) -> RunConfig:
        """The resolved run config of one step of a cell."""
        key = (cell, step, seed)
        if key not in self._runs:
            self._runs[key] = resolve(self.config, dataset=cell.dataset, task=cell.task,
                                      setting=cell.setting, method=cell.method, step=step,
                                      seed=seed)
        return self._runs[key]

    def shared_run(self, cell: Cell, step: int, seed: int) -> RunConfig | None:
        """The run config of the shared training this step reuses, or None (its own)."""
        key = (cell, step, seed)
        if key not in self._shared:
            self._shared[key] = self._make_shared(cell, step, seed)
        return self._shared[key]

    def _make_shared(self, cell: Cell, step: int, seed: int) -> RunConfig | None:
        """The one place that decides whether a step is a shared training and which: Joint,
        and the step 0 of a method whose ``step0`` names an owner (trained as the owner's
        run, with the owner's parameters as configured)."""
        method = get_method(self.base_method(cell.method))
        if step != 0 or not (method.joint or method.shares_step0):
            return None
        run = self.run(cell, 0, seed)
        # the policy as it acts at step 0 ("incremental" and "never" train the same step 0)
        run = run.replace(labels=LabelsConfig("always" if run.ignore_to_background else "never"))
        if method.joint:  # every task and setting of the dataset: one training
            info = get_dataset_info(cell.dataset)
            task = list_tasks(cell.dataset)[0].name
            setting = "overlapped" if "overlapped" in info.settings else info.settings[0]
            return run.replace(task=task, setting=setting,
                               data=dataclasses.replace(run.data, split=None))
        owner = get_method(method.step0)
        task = canonical_task(cell.dataset, cell.task)
        split = str(Path(self.results) / "splits" / cell.dataset / task / f"{cell.setting}.json")
        # the owner's own parameters as configured (method_params.ft reaches its step 0)
        params = self.run(Cell(cell.dataset, task, cell.setting, owner.name), 0, seed).params
        return run.replace(method=owner.name, base_method=owner.name, task=task,
                           params=params, data=dataclasses.replace(run.data, split=split))

    def spec(self, cell: Cell, step: int, seed: int) -> StepSpec:
        """The step spec of one step of a cell: its run config and method facts, with the
        spec of the shared training that provides it (if any)."""
        key = (cell, step, seed)
        if key not in self._specs:
            shared_run = self.shared_run(cell, step, seed)
            shared = group = None
            if shared_run is not None:
                shared = step_spec(shared_run)
                group = f"{'joint' if shared.all_classes else 'step0'}-{shared.key[:10]}"
                shared = dataclasses.replace(shared, group=group)
            self._specs[key] = step_spec(self.run(cell, step, seed), shared, group)
        return self._specs[key]

    def trained_spec(self, cell: Cell, step: int, seed: int) -> StepSpec:
        """The spec of the training that produces a step's checkpoint (a shared one's)."""
        return self.spec(cell, step, seed).trained

    def group(self, cell: Cell, step: int, seed: int) -> str | None:
        """Name of the shared training this step reuses (None: the cell trains it itself)."""
        return self.spec(cell, step, seed).group

    # -- paths ---------------------------------------------------------------------------
    def step_dir(self, cell: Cell, seed: int, step: int) -> str:
        return f"{self.results}/{cell.path}/seed{seed}/step{step}"

    def shared_dir(self, dataset: str, group: str, seed: int) -> str:
        return f"{self.results}/{dataset}/_shared/{group}/seed{seed}/step0"

    def checkpoint(self, cell: Cell, seed: int, step: int) -> str:
        """model.pt after ``step`` (a shared step: the shared training's)."""
        group = self.group(cell, step, seed)
        if group is not None:
            return f"{self.shared_dir(cell.dataset, group, seed)}/model.pt"
        return f"{self.step_dir(cell, seed, step)}/model.pt"

    def final(self, cell: Cell, seed: int) -> str:
        return f"{self.results}/{cell.path}/seed{seed}/final"

    def metrics(self, cells: list[Cell] | None = None) -> list[str]:
        """metrics.json of every step and seed of the given cells (default: the grid)."""
        cells = self.cells if cells is None else cells
        return [f"{self.step_dir(c, s, k)}/metrics.json" for c in cells
                for s in self.seeds for k in self.steps(c.dataset, c.task, c.method)]

    def finals(self, cells: list[Cell] | None = None) -> list[str]:
        cells = self.cells if cells is None else cells
        return [self.final(c, s) for c in cells for s in self.seeds]

    def shared_trainings(self) -> dict[tuple[str, str, int], RunConfig]:
        """Every shared training of the grid: (dataset, group, seed) -> its run config."""
        return {key: spec.run for key, spec in self.shared_specs().items()}

    def shared_specs(self) -> dict[tuple[str, str, int], StepSpec]:
        """Every shared training of the grid: (dataset, group, seed) -> its step spec."""
        out = {}
        for cell in self.cells:
            for seed in self.seeds:
                for k in self.steps(cell.dataset, cell.task, cell.method):
                    spec = self.spec(cell, k, seed)
                    if spec.shared is not None:
                        out[(cell.dataset, spec.group, seed)] = spec.shared
        return out

    def replay_source(self, dataset: str) -> dict[str, Any]:
        """The replay source configured for a dataset (``replay.<dataset>``), checked."""
        from ucd.data.replay import SOURCES

        spec = (self.config.get("replay") or {}).get(dataset)
        if not spec:
            raise ConfigError(
                f"replay.{dataset} names no replay source, but a method of the grid replays on "
                f"{dataset}: add e.g. `replay: {{{dataset}: {{source: folder, root: DIR}}}}` "
                f"(sources: {', '.join(SOURCES)})"
            )
        kind = spec.get("source")
        needs = {"folder": "root", "generator": "generator", "digits": None}
        if kind not in needs:
            raise ConfigError(f"replay.{dataset}.source must be one of {', '.join(SOURCES)}, "
                              f"got {kind!r}")
        if needs[kind] and not spec.get(needs[kind]):
            raise ConfigError(f"replay.{dataset}: source {kind} needs {needs[kind]}")
        if kind == "digits" and not (self.config["datasets"].get(dataset) or {}).get("generate"):
            raise ConfigError(f"replay.{dataset}: source digits needs the generated benchmark "
                              f"(datasets.{dataset}.generate: true)")
        return dict(spec)

    def replay_sets(self) -> dict[str, tuple[str, str, str, int]]:
        """Every replay set the grid trains on: directory -> (dataset, task, setting, step),
        each dataset's replay source checked."""
        out: dict[str, tuple[str, str, str, int]] = {}
        for cell in self.cells:
            for seed in self.seeds:
                for k in self.steps(cell.dataset, cell.task, cell.method):
                    path = self.run(cell, k, seed).data.replay
                    if path is not None and path not in out:
                        if path.startswith(f"{self.results}/replay/"):  # built by the workflow
                            self.replay_source(cell.dataset)
                        out[path] = (cell.dataset, cell.task, cell.setting, k)
        return out

    def check(self) -> None:
        """Resolve every step of every cell and seed, so a bad value fails before any job."""
        if not self.cells:
            raise ConfigError("grid: no runs (every entry is empty or filtered out)")
        for cell in self.cells:
            for seed in self.seeds:
                for k in self.steps(cell.dataset, cell.task, cell.method):
                    self.spec(cell, k, seed)
        self.replay_sets()
