"""Input functions, parameters and resources of the workflow's rules.

:class:`WorkflowHelpers` holds the workflow config and its :class:`~ucd.planning.plan.Plan`; the
rule files call its methods as input functions (``unpack(WF.train_inputs)``) and parameters. It
decides nothing about the grid (the plan does): it names the files a rule reads and writes and the
arguments of its command line.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ucd.evaluation.records import cell_metrics, write_json_atomic
from ucd.facts.config import ConfigError, RunConfig
from ucd.planning.plan import Cell, Plan
from ucd.reporting.tables import available, display_name, get_spec, required_runs

# Resource keys passed to Snakemake (and the SLURM executor) when set; `cpus` and `gpus` map
# to threads/cpus_per_task and gpu.
PASSED_RESOURCES = (
    "mem_mb",
    "runtime",
    "gpu_model",
    "gres",
    "slurm_partition",
    "slurm_account",
    "constraint",
    "qos",
    "slurm_extra",
)


def ucd_command(config: Mapping[str, Any]) -> str:
    """The command jobs run the package with. "auto": the Python that runs Snakemake (its
    virtual environment), also inside SLURM jobs, whose PATH need not hold that environment."""
    command = config.get("ucd_command", "auto")
    return f"{shlex.quote(sys.executable)} -m ucd" if command == "auto" else command


def cell_of(w: Any) -> Cell:
    """The grid cell named by a job's wildcards."""
    return Cell(w.dataset, w.task, w.setting, w.method)


def run_json(run: RunConfig) -> str:
    """A run config as one line of JSON, for the training job's command line."""
    return json.dumps(run.to_dict(), separators=(",", ":"))


def decoded_arg(w: Any, input: Any) -> str:  # noqa: A002 (Snakemake passes `input` by name)
    """`--decoded DIR` when the training reads its dataset's images decoded once."""
    return f"--decoded {input.decoded}" if "decoded" in input.keys() else ""


def prev_arg(w: Any, input: Any) -> str:  # noqa: A002 (Snakemake passes `input` by name)
    """`--prev CHECKPOINT` of a step k > 0 (the model of step k-1)."""
    return f"--prev {input.prev}" if "prev" in input.keys() else ""


def write_log(path: str, text: str) -> None:
    """The one-line log of a small in-process rule (what it wrote)."""
    Path(path).write_text(f"{text}\n")


def write_cell_metrics(plan: Plan, w: Any, src: str, out: str, log: str) -> None:
    """metrics.json of a cell whose step is a shared training: the shared training's confusion
    matrix `src` summarised with the cell's own step spec (its task's old and new classes)."""
    spec = plan.spec(cell_of(w), int(w.step), int(w.seed))
    write_json_atomic(cell_metrics(src, spec), out)
    write_log(log, f"wrote {out} from {src}")


class WorkflowHelpers:
    """The rules' view of one workflow config and its plan (see the module doc)."""

    def __init__(self, config: Mapping[str, Any], plan: Plan) -> None:
        self.config = config
        self.plan = plan
        self.results = config["results"]
        self.embedded = bool(config["report"].get("embedded"))
        self.shared = plan.shared_trainings()

    # ------------------------------------------------------------------ steps and runs

    def check_step(self, w: Any) -> int:
        """The job's step, refused unless the cell's task has it."""
        k = int(w.step)
        valid = self.plan.steps(w.dataset, w.task, w.method)
        if k not in valid:
            raise ConfigError(
                f"{w.method} on {w.dataset}/{w.task} has steps {', '.join(map(str, valid))}, "
                f"not {k}"
            )
        return k

    def step_run(self, w: Any) -> RunConfig:
        """The run config of a cell's step."""
        return self.plan.run(cell_of(w), self.check_step(w), int(w.seed))

    def step_run_json(self, w: Any) -> str:
        """The run config of a cell's step as the training job's `--run-json`."""
        return run_json(self.step_run(w))

    def step_run_dict(self, w: Any) -> dict[str, Any]:
        """The run config of a cell's step as plain data (a rule's params)."""
        return self.step_run(w).to_dict()

    def shared_run(self, w: Any) -> RunConfig:
        """The run config of a shared training named by its group."""
        found = self.shared.get((w.dataset, w.group, int(w.seed)))
        if found is None:
            raise ConfigError(
                f"no run of the grid uses the shared training {w.group!r} with seed {w.seed}; "
                "a run outside the grid or its seeds is named with --config "
                "benchmark=DATASET/TASK/SETTING/METHOD (and seeds=[...])"
            )
        return found

    def shared_run_json(self, w: Any) -> str:
        """The run config of a shared training as the training job's `--run-json`."""
        return run_json(self.shared_run(w))

    # ------------------------------------------------------------------ input functions

    def data_inputs(self, dataset: str) -> dict[str, str]:
        """The dataset root when the workflow generates it (real datasets are not declared,
        so a dry run works without them; `ucd data split` reports a missing root)."""
        ds = self.config["datasets"].get(dataset, {})
        return {"data": f"{self.results}/data/{dataset}"} if ds.get("generate") else {}

    def training_inputs(self, run: RunConfig) -> dict[str, str]:
        """The split file (when the step reads one), the replay set (when the method replays)
        and the generated data a training needs, with its images decoded once
        (`decode_data`)."""
        files = {"split": run.data.split} if run.data.split else {}
        if run.data.replay:
            files["replay"] = run.data.replay
        data = self.data_inputs(run.dataset)
        if data:
            data["decoded"] = f"{self.results}/decoded/{run.dataset}"
        return {**files, **data}

    def train_inputs(self, w: Any) -> dict[str, str]:
        """Split, data and, for step k > 0, the checkpoint of step k-1. A step that a shared
        training provides asks for a file no rule makes, so `metrics_from_shared` (ruleorder)
        makes its metrics."""
        k = self.check_step(w)
        cell, seed = cell_of(w), int(w.seed)
        if self.plan.group(cell, k, seed) is not None:
            return {
                "shared": f"{self.plan.step_dir(cell, seed, k)}"
                "/.shared-training-not-trained-here"
            }
        files = {"prev": self.plan.checkpoint(cell, seed, k - 1)} if k > 0 else {}
        return {**files, **self.training_inputs(self.plan.run(cell, k, seed))}

    def shared_train_inputs(self, w: Any) -> dict[str, str]:
        """Split and data of a shared training."""
        return self.training_inputs(self.shared_run(w))

    def shared_metrics(self, w: Any) -> str:
        """metrics.json of the shared training a cell's step reuses. For a step the cell
        trains itself this returns a path no rule produces, so Snakemake falls back to
        `train`."""
        group = self.plan.group(cell_of(w), int(w.step), int(w.seed))
        return f"{self.plan.shared_dir(w.dataset, group or '.none', int(w.seed))}/metrics.json"

    def final_inputs(self, w: Any) -> list[str]:
        """metrics.json of every step of a run (its `final` flag waits for all of them)."""
        cell = cell_of(w)
        return [
            f"{self.plan.step_dir(cell, int(w.seed), k)}/metrics.json"
            for k in self.plan.steps(w.dataset, w.task, w.method)
        ]

    def replay_args(self, dataset: str) -> str:
        """`ucd data replay` options naming the dataset's replay source (config `replay:`)."""
        spec = self.plan.replay_source(dataset)
        digits = spec["source"] == "digits"
        args = {
            "--source": spec["source"],
            "--root": self.config["datasets"][dataset]["root"] if digits else spec.get("root"),
            "--generator": spec.get("generator"),
            "--weights": spec.get("weights"),
            "--seed": spec.get("seed", 0),
        }
        given = {k: v for k, v in args.items() if v is not None}
        return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in given.items())

    # ------------------------------------------------------------------ report

    def table_cells(self, table: str) -> list[Cell]:
        """The grid's cells that a table or figure shows (only those are run for its
        target)."""
        wanted = set(required_runs([table], embedded=self.embedded))
        return [c for c in self.plan.cells if tuple(c) in wanted]

    def table_metrics(self, table: str) -> list[str]:
        """metrics.json of every step of the cells a table or figure shows."""
        return self.plan.metrics(self.table_cells(table))

    def grid_methods(self, dataset: str, task: str, setting: str) -> list[str]:
        """Methods of the grid on one benchmark, in grid order."""
        return [c.method for c in self.plan.cells if c[:3] == (dataset, task, setting)]

    def qualitative_inputs(self, dataset: str, task: str, setting: str) -> dict[str, str]:
        """predictions.npz after the last step (first seed) of the methods shown in the
        maps."""
        ran = self.grid_methods(dataset, task, setting)
        seed, out = self.plan.seeds[0], {}
        for m in self.config["report"].get("qualitative_methods", []):
            if m in ran:
                cell = Cell(dataset, task, setting, m)
                k = self.plan.steps(dataset, task, m)[-1]
                group = self.plan.group(cell, k, seed)
                where = (
                    self.plan.shared_dir(dataset, group, seed)
                    if group
                    else self.plan.step_dir(cell, seed, k)
                )
                out[m] = f"{where}/predictions.npz"
        return out

    def predictions_args(self, dataset: str, task: str, setting: str) -> str:
        """NAME=PATH arguments of `ucd report qualitative`, display names quoted for the
        shell."""
        files = self.qualitative_inputs(dataset, task, setting)
        return " ".join(shlex.quote(f"{display_name(m)}={p}") for m, p in files.items())

    def note_arg(self) -> str:
        """` --note TEXT` (leading space: it ends a command) of the report commands when the
        config sets `report.note` (the rehearsal marks every caption and figure with it),
        else nothing."""
        note = self.config["report"].get("note")
        return f" --note {shlex.quote(note)}" if note else ""

    def embedded_arg(self) -> str:
        """`--embedded` of the report commands when the config renders the embedded tables."""
        return "--embedded" if self.embedded else ""

    def table_caption(self, item: str) -> str:
        """The caption of a table or figure (a rule's params: its report entry shows it)."""
        return get_spec(item, embedded=self.embedded).caption

    def table_outputs(self, item: str) -> list[str]:
        """Files a table (LaTeX, HTML, and the paper comparison) or a figure (PDF, PNG)
        target builds."""
        if item not in available(embedded=self.embedded):
            raise ConfigError(
                f"{item} is not available{' on the embedded benchmark' if self.embedded else ''}"
                f"; valid: {', '.join(available(embedded=self.embedded))}"
            )
        if item.startswith("figure"):
            return [f"{self.results}/figures/{item}.{ext}" for ext in ("pdf", "png")]
        names = [item]
        if self.config["report"].get("compare") and not self.embedded:
            names.append(f"{item}_compare")
        return [f"{self.results}/tables/{n}.{ext}" for n in names for ext in ("tex", "html")]

    def report_targets(self) -> list[str]:
        """Everything all_tables builds: the summary of every step of every run of the grid
        (the `final` flags are for one run, `all_runs`: hundreds of small jobs otherwise), the
        verdicts on the paper's claims, the fidelity report, the configured tables and
        figures, per-step curves and qualitative maps of every benchmark."""
        r = self.results
        out = [f"{r}/summary.csv", f"{r}/claims.md", f"{r}/fidelity.md"]
        for item in self.config["report"]["tables"]:
            out += self.table_outputs(item)
        benches = list(dict.fromkeys(c[:3] for c in self.plan.cells))
        for kind in ("curves", "qualitative"):
            if self.config["report"].get(kind):
                out += [
                    f"{r}/figures/{kind}/{'/'.join(b)}.png"
                    for b in benches
                    if kind == "curves" or self.qualitative_inputs(*b)
                ]
        return out

    # ------------------------------------------------------------------ resources

    def _rule_resources(self, name: str) -> dict[str, Any]:
        res = self.config["resources"]
        return {**res["default"], **(res.get(name) or {})}

    def threads_of(self, name: str) -> int:
        """Threads of a rule (config `resources.<rule>.cpus`, else the default's)."""
        return int(self._rule_resources(name).get("cpus", 1))

    def resources_of(self, name: str) -> dict[str, Any]:
        """Snakemake resources of a rule from config (unset or empty values are left out, so
        a profile's default-resources apply)."""
        res = self._rule_resources(name)
        out = {k: res[k] for k in PASSED_RESOURCES if res.get(k) not in (None, "")}
        out["cpus_per_task"] = self.threads_of(name)
        if res.get("gpus"):
            out["gpu"] = int(res["gpus"])
        return out

    def train_launcher(self) -> str:
        """`ucd_command` for one GPU or none; torchrun with one process per GPU otherwise
        ("-m --" keeps torchrun's parser off ucd's --run-json)."""
        gpus = int(self._rule_resources("train").get("gpus") or 0)
        if gpus <= 1:
            return self.config["ucd_command"]
        python = shlex.quote(sys.executable)
        return f"{python} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m -- ucd"

