# Helpers of the workflow (no rules here): the grid of runs, the results path scheme (see the
# Snakefile header), input functions and per-rule resources. The config
# checks are in checks.smk.

import shlex
import sys
from collections import namedtuple
from functools import cache

from ucd.config import ConfigError, resolve_method_name, run_config, step0_group
from ucd.data.tasks import get_task
from ucd.methods import get_method, list_methods
from ucd.reporting.tables import (
    available,
    display_name,
    get_spec,
    load_tables,
    required_runs,
)

Cell = namedtuple("Cell", "dataset task setting method")

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


# ------------------------------------------------------------------ the grid


def parse_cell(text: str) -> Cell:
    """'dataset/task/setting/method' -> Cell."""
    parts = text.strip().split("/")
    if len(parts) != 4 or not all(parts):
        raise ConfigError(f"benchmark {text!r} must read 'dataset/task/setting/method'")
    return Cell(*parts)


def grid_cells(config: dict) -> list[Cell]:
    """Every (dataset, task, setting, method) of the grid, in config order, without duplicates.

    `benchmark` (if set) replaces the grid by the cells it names.
    """
    chosen = config.get("benchmark")
    if chosen:
        items = chosen if isinstance(chosen, list) else str(chosen).split(",")
        return list(dict.fromkeys(parse_cell(t) for t in items if t.strip()))
    cells: dict[Cell, None] = {}
    for i, entry in enumerate(config["grid"]):
        if "tables" in entry:
            try:
                runs = required_runs(
                    entry["tables"], embedded=bool(entry.get("embedded"))
                )
            except ValueError as err:
                raise ConfigError(f"grid.{i}.tables: {err}") from None
            keep = entry.get("methods")
            cells.update((Cell(*r), None) for r in runs if keep is None or r[3] in keep)
        else:
            for bench in entry["benchmarks"]:
                d, t, s = bench.split("/")
                cells.update((Cell(d, t, s, m), None) for m in entry["methods"])
    return list(cells)


def table_cells(table: str) -> list[Cell]:
    """The grid's cells that a table or figure shows (only those are run for its target)."""
    wanted = set(required_runs([table], embedded=EMBEDDED))
    return [c for c in GRID if tuple(c) in wanted]


# ------------------------------------------------------------------ runs and steps


@cache
def is_joint(method: str) -> bool:
    return bool(get_method(resolve_method_name(config, method)[0]).joint)


@cache
def steps(dataset: str, task: str, method: str) -> tuple[int, ...]:
    """Training steps of a method on a task (Joint: one step on all data and classes)."""
    return (0,) if is_joint(method) else tuple(range(get_task(dataset, task).n_steps))


@cache
def step_config(dataset: str, task: str, setting: str, method: str, step: int) -> dict:
    """The resolved run config (RUN.yaml) of one training step."""
    return run_config(
        config,
        dataset=dataset,
        task=task,
        setting=setting,
        method=method,
        step=int(step),
    )


@cache
def group_of(dataset: str, task: str, setting: str, method: str) -> str | None:
    """Shared step-0 group of a method (None: it trains its own step 0)."""
    return step0_group(config, dataset, task, setting, method)


@cache
def shared_config(dataset: str, task: str, setting: str, group: str) -> dict:
    """Run config of a shared step-0 training: plain fine-tuning (what every member of the
    group trains at step 0, with the registry's default parameters) with the group's step-0
    settings; it does not depend on which members the grid holds or on their parameters.
    """
    bench = (dataset, task, setting)
    candidates = [c.method for c in GRID if c[:3] == bench]
    candidates += [*(config.get("variants") or {}), *list_methods()]
    member = next((m for m in candidates if group_of(*bench, m) == group), None)
    if member is None:
        raise ConfigError(
            f"no method or variant uses the shared step-0 group {group!r}"
        )
    run = step_config(*bench, member, 0)
    params = get_method("ft").default_params()
    return {**run, "method": "ft", "base_method": "ft", "params": params}


def generated_root(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}"


def bench_dir(w) -> str:
    return f"{RESULTS}/{w.dataset}/{w.task}/{w.setting}"


def checkpoint_path(
    dataset: str, task: str, setting: str, method: str, step: int
) -> str:
    """model.pt after `step` of a method (step 0 of a sharing method: the shared one)."""
    bench = f"{RESULTS}/{dataset}/{task}/{setting}"
    group = group_of(dataset, task, setting, method) if step == 0 else None
    if group is not None:
        return f"{bench}/_shared/{group}/step0/model.pt"
    return f"{bench}/{method}/step{step}/model.pt"


def metrics_paths(cells) -> list[str]:
    """metrics.json of every step of the given cells."""
    return [
        f"{RESULTS}/{c.dataset}/{c.task}/{c.setting}/{c.method}/step{k}/metrics.json"
        for c in cells
        for k in steps(c.dataset, c.task, c.method)
    ]


def final_paths(cells) -> list[str]:
    return [f"{RESULTS}/{'/'.join(c)}/final" for c in cells]


# ------------------------------------------------------------------ input functions


def data_inputs(dataset: str) -> dict:
    """The dataset root when the workflow generates it (real datasets are not declared, so a
    dry run works without them; `ucd data split` reports a missing root)."""
    ds = config["datasets"].get(dataset, {})
    return {"data": generated_root(dataset)} if ds.get("generate") else {}


def _check_step(w) -> int:
    k = int(w.step)
    valid = steps(w.dataset, w.task, w.method)
    if k not in valid:
        raise ConfigError(
            f"{w.method} on {w.dataset}/{w.task} has steps {', '.join(map(str, valid))}, "
            f"not {k}"
        )
    return k


def train_inputs(w) -> dict:
    """run.yaml, split, (generated) data and, for step k > 0, the checkpoint of step k-1."""
    k = _check_step(w)
    run = step_config(w.dataset, w.task, w.setting, w.method, k)
    files = {
        "run": f"{bench_dir(w)}/{w.method}/step{k}/run.yaml",
        "split": run["data"]["split"],
    }
    if k > 0:
        files["prev"] = checkpoint_path(w.dataset, w.task, w.setting, w.method, k - 1)
    return {**files, **data_inputs(w.dataset)}


def shared_train_inputs(w) -> dict:
    run = shared_config(w.dataset, w.task, w.setting, w.group)
    return {
        "run": f"{bench_dir(w)}/_shared/{w.group}/step0/run.yaml",
        "split": run["data"]["split"],
        **data_inputs(w.dataset),
    }


def prev_arg(w, input) -> str:
    return f"--prev {input.prev}" if "prev" in input.keys() else ""


def shared_step0_metrics(w) -> str:
    """Metrics of the shared step 0 a method reuses. For a method that trains its own step 0
    this returns a path no rule produces, so Snakemake falls back to `evaluate` (ruleorder).
    """
    group = group_of(w.dataset, w.task, w.setting, w.method)
    return f"{bench_dir(w)}/_shared/{group or '.none'}/step0/metrics.json"


def final_inputs(w) -> list[str]:
    return metrics_paths([Cell(w.dataset, w.task, w.setting, w.method)])


def grid_methods(dataset: str, task: str, setting: str) -> list[str]:
    """Methods of the grid on one benchmark, in grid order."""
    return [c.method for c in GRID if c[:3] == (dataset, task, setting)]


def qualitative_inputs(dataset: str, task: str, setting: str) -> dict[str, str]:
    """predictions.npz after the last step of the methods shown in qualitative maps."""
    ran = grid_methods(dataset, task, setting)
    bench = f"{RESULTS}/{dataset}/{task}/{setting}"
    return {
        m: f"{bench}/{m}/step{steps(dataset, task, m)[-1]}/predictions.npz"
        for m in config["report"].get("qualitative_methods", [])
        if m in ran
    }


def predictions_args(dataset: str, task: str, setting: str) -> str:
    """NAME=PATH arguments of `ucd report qualitative`, display names quoted for the shell."""
    files = qualitative_inputs(dataset, task, setting)
    return " ".join(shlex.quote(f"{display_name(m)}={p}") for m, p in files.items())


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
    """Everything all_tables builds: every run of the grid (`final`), the summary, the
    configured tables and figures, per-step curves and qualitative maps of every benchmark.
    """
    out = [*final_paths(GRID), f"{RESULTS}/summary.csv"]
    for item in config["report"]["tables"]:
        out += table_outputs(item)
    benches = list(dict.fromkeys(c[:3] for c in GRID))
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


# "auto": jobs run the package with the Python that runs Snakemake (its virtual environment),
# also inside SLURM jobs, whose PATH need not hold that environment.
if config.get("ucd_command", "auto") == "auto":
    config["ucd_command"] = f"{shlex.quote(sys.executable)} -m ucd"
