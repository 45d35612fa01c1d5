# Helpers of the workflow (no rules here): input functions over the plan (ucd.plan decides the
# grid, seeds, steps, shared trainings and the results path scheme) and per-rule resources.

import json
import os
import shlex
import sys
from pathlib import Path

from ucd.config import ConfigError
from ucd.evaluation.records import cell_metrics, final_record, write_json_atomic
from ucd.plan import Cell, Plan
from ucd.reporting.tables import (
    available,
    display_name,
    get_spec,
    load_tables,
    required_runs,
)
from ucd.zygote import control as zygote, wire as zygote_wire

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


def cell_of(w) -> Cell:
    return Cell(w.dataset, w.task, w.setting, w.method)


def _check_step(w) -> int:
    k = int(w.step)
    valid = PLAN.steps(w.dataset, w.task, w.method)
    if k not in valid:
        raise ConfigError(
            f"{w.method} on {w.dataset}/{w.task} has steps {', '.join(map(str, valid))}, "
            f"not {k}"
        )
    return k


def table_cells(table: str) -> list:
    """The grid's cells that a table or figure shows (only those are run for its target)."""
    wanted = set(required_runs([table], embedded=EMBEDDED))
    return [c for c in PLAN.cells if tuple(c) in wanted]


def grid_methods(dataset: str, task: str, setting: str) -> list[str]:
    """Methods of the grid on one benchmark, in grid order."""
    return [c.method for c in PLAN.cells if c[:3] == (dataset, task, setting)]


# ------------------------------------------------------------------ input functions


def data_inputs(dataset: str) -> dict:
    """The dataset root when the workflow generates it (real datasets are not declared, so a
    dry run works without them; `ucd data split` reports a missing root)."""
    ds = config["datasets"].get(dataset, {})
    return {"data": f"{RESULTS}/data/{dataset}"} if ds.get("generate") else {}


def training_inputs(run) -> dict:
    """The split file (when the step reads one), the replay set (when the method replays) and
    the generated data a training needs, with its images decoded once (`decode_data`).
    """
    files = {"split": run.data.split} if run.data.split else {}
    if run.data.replay:
        files["replay"] = run.data.replay
    data = data_inputs(run.dataset)
    if data:
        data["decoded"] = f"{RESULTS}/decoded/{run.dataset}"
    return {**files, **data}


def decoded_arg(w, input) -> str:
    """`--decoded DIR` when the training reads its dataset's images decoded once."""
    return f"--decoded {input.decoded}" if "decoded" in input.keys() else ""


def run_json(run) -> str:
    """A run config as one line of JSON, for the training job's command line."""
    return json.dumps(run.to_dict(), separators=(",", ":"))


def train_inputs(w) -> dict:
    """Split, data and, for step k > 0, the checkpoint of step k-1. A step that a
    shared training provides asks for a file no rule makes, so `metrics_from_shared` (ruleorder)
    makes its metrics."""
    k = _check_step(w)
    cell, seed = cell_of(w), int(w.seed)
    if PLAN.group(cell, k, seed) is not None:
        return {
            "shared": f"{PLAN.step_dir(cell, seed, k)}/.shared-training-not-trained-here"
        }
    files = {}
    if k > 0:
        files["prev"] = PLAN.checkpoint(cell, seed, k - 1)
    return {**files, **training_inputs(PLAN.run(cell, k, seed))}


def replay_args(dataset: str) -> str:
    """`ucd data replay` options naming the dataset's replay source (config `replay:`)."""
    spec = PLAN.replay_source(dataset)
    digits = spec["source"] == "digits"
    args = {
        "--source": spec["source"],
        "--root": config["datasets"][dataset]["root"] if digits else spec.get("root"),
        "--generator": spec.get("generator"),
        "--weights": spec.get("weights"),
        "--seed": spec.get("seed", 0),
    }
    given = {k: v for k, v in args.items() if v is not None}
    return " ".join(f"{k} {shlex.quote(str(v))}" for k, v in given.items())


def shared_train_inputs(w) -> dict:
    return training_inputs(shared_run(w))


def shared_run(w):
    """The run config of a shared training named by its group."""
    found = SHARED.get((w.dataset, w.group, int(w.seed)))
    if found is None:
        raise ConfigError(
            f"no run of the grid uses the shared training {w.group!r} with seed {w.seed}; "
            "a run outside the grid or its seeds is named with --config "
            "benchmark=DATASET/TASK/SETTING/METHOD (and seeds=[...])"
        )
    return found


def write_log(path: str, text: str) -> None:
    """The one-line log of a small in-process rule (what it wrote)."""
    Path(path).write_text(f"{text}\n")


def prev_arg(w, input) -> str:
    return f"--prev {input.prev}" if "prev" in input.keys() else ""


def shared_metrics(w) -> str:
    """metrics.json of the shared training a cell's step reuses. For a step the cell trains
    itself this returns a path no rule produces, so Snakemake falls back to `train`.
    """
    group = PLAN.group(cell_of(w), int(w.step), int(w.seed))
    return f"{PLAN.shared_dir(w.dataset, group or '.none', int(w.seed))}/metrics.json"


def final_inputs(w) -> list[str]:
    cell = cell_of(w)
    return [
        f"{PLAN.step_dir(cell, int(w.seed), k)}/metrics.json"
        for k in PLAN.steps(w.dataset, w.task, w.method)
    ]


def qualitative_inputs(dataset: str, task: str, setting: str) -> dict[str, str]:
    """predictions.npz after the last step (first seed) of the methods shown in the maps."""
    ran = grid_methods(dataset, task, setting)
    out = {}
    for m in config["report"].get("qualitative_methods", []):
        if m in ran:
            cell, k = Cell(dataset, task, setting, m), PLAN.steps(dataset, task, m)[-1]
            group = PLAN.group(cell, k, PLAN.seeds[0])
            where = (
                PLAN.shared_dir(dataset, group, PLAN.seeds[0])
                if group
                else PLAN.step_dir(cell, PLAN.seeds[0], k)
            )
            out[m] = f"{where}/predictions.npz"
    return out


def predictions_args(dataset: str, task: str, setting: str) -> str:
    """NAME=PATH arguments of `ucd report qualitative`, display names quoted for the shell."""
    files = qualitative_inputs(dataset, task, setting)
    return " ".join(shlex.quote(f"{display_name(m)}={p}") for m, p in files.items())


def note_arg() -> str:
    """` --note TEXT` (leading space: it ends a command) of the report commands when the config sets `report.note` (the rehearsal
    marks every caption and figure with it), else nothing."""
    note = config["report"].get("note")
    return f" --note {shlex.quote(note)}" if note else ""


def table_caption(item: str) -> str:
    return get_spec(item, embedded=EMBEDDED).caption


def table_outputs(item: str) -> list[str]:
    """Files a table (LaTeX, HTML, and the paper comparison) or a figure (PDF, PNG) target
    builds."""
    if item not in available(embedded=EMBEDDED):
        raise ConfigError(
            f"{item} is not available{' on the embedded benchmark' if EMBEDDED else ''}; "
            f"valid: {', '.join(available(embedded=EMBEDDED))}"
        )
    if item.startswith("figure"):
        return [f"{RESULTS}/figures/{item}.{ext}" for ext in ("pdf", "png")]
    names = [item]
    if config["report"].get("compare") and not EMBEDDED:
        names.append(f"{item}_compare")
    return [f"{RESULTS}/tables/{n}.{ext}" for n in names for ext in ("tex", "html")]


def report_targets() -> list[str]:
    """Everything all_tables builds: the summary of every step of every run of the grid (the
    `final` flags are for one run, `all_runs`: hundreds of small jobs otherwise), the
    verdicts on the paper's claims, the fidelity report, the configured tables and figures,
    per-step curves and qualitative maps of every benchmark.
    """
    out = [f"{RESULTS}/summary.csv", f"{RESULTS}/claims.md", f"{RESULTS}/fidelity.md"]
    for item in config["report"]["tables"]:
        out += table_outputs(item)
    benches = list(dict.fromkeys(c[:3] for c in PLAN.cells))
    for kind in ("curves", "qualitative"):
        if config["report"].get(kind):
            out += [
                f"{RESULTS}/figures/{kind}/{'/'.join(b)}.png"
                for b in benches
                if kind == "curves" or qualitative_inputs(*b)
            ]
    return out


# ------------------------------------------------------------------ resources


def _rule_resources(name: str) -> dict:
    res = config["resources"]
    return {**res["default"], **(res.get(name) or {})}


def threads_of(name: str) -> int:
    return int(_rule_resources(name).get("cpus", 1))


def resources_of(name: str) -> dict:
    """Snakemake resources of a rule from config (unset or empty values are left out, so a
    profile's default-resources apply)."""
    res = _rule_resources(name)
    out = {k: res[k] for k in PASSED_RESOURCES if res.get(k) not in (None, "")}
    out["cpus_per_task"] = threads_of(name)
    if res.get("gpus"):
        out["gpu"] = int(res["gpus"])
    return out


def train_launcher() -> str:
    """`ucd_command` for one GPU or none; torchrun with one process per GPU otherwise
    ("-m --" keeps torchrun's parser off ucd's --run)."""
    gpus = int(_rule_resources("train").get("gpus") or 0)
    if gpus <= 1:
        return config["ucd_command"]
    python = shlex.quote(sys.executable)
    return f"{python} -m torch.distributed.run --standalone --nproc_per_node={gpus} -m -- ucd"


# ------------------------------------------------------------------ fork server


def fork_server_dir() -> str | None:
    """RESULTS/.ucd-zygote when this run's training jobs go through a fork server (ucd.zygote):
    config `fork_server`, a local run (Snakemake's own process starts every job on this
    machine: not SLURM, whose jobs run elsewhere, each in its own interpreter) and one
    process per training job (torchrun starts its ranks itself)."""
    if not config.get("fork_server", True) or not workflow.local_exec:
        return None
    if not workflow.is_main_process or train_launcher() != config["ucd_command"]:
        return None
    return os.path.abspath(f"{RESULTS}/.ucd-zygote")


def start_fork_server() -> None:
    """onstart: point the jobs at the server directory; the first training job that finds no
    server there starts one (with its own environment, so later jobs match it), which stops
    when this Snakemake process ends, if onsuccess/onerror did not stop it before."""
    where = fork_server_dir()
    if where:
        zygote.set_owner(where, os.getpid())
        os.environ[zygote_wire.ENV] = where


def stop_fork_server() -> None:
    """onsuccess/onerror: stop the server (it finishes running jobs first)."""
    where = os.environ.pop(zygote_wire.ENV, None)
    if where and not zygote.stop(where):
        print(f"the fork server of {where} did not stop; it stops itself when idle")
    if where:
        zygote.set_owner(where, None)


# "auto": jobs run the package with the Python that runs Snakemake (its virtual environment),
# also inside SLURM jobs, whose PATH need not hold that environment.
if config.get("ucd_command", "auto") == "auto":
    config["ucd_command"] = f"{shlex.quote(sys.executable)} -m ucd"
