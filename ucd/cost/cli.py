"""``ucd cost CONFIG... [--target TARGET] [--gpu-mem GB]``: what a grid costs before it is
submitted, from the DAG the workflow would run."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ucd.facts.config import deep_merge, load_yaml

DEFAULT_TIMES = "step_times.json"  # under the config's results directory


def workflow_config(snakefile: Path, configs: list[str], overrides: list[str]) -> dict:
    """The config Snakemake builds: the Snakefile's config.yaml, then the config files, then
    ``--config KEY=VALUE`` (values read as YAML)."""
    config: dict = {}
    for path in [snakefile.parent / "config.yaml", *configs]:
        config = deep_merge(config, load_yaml(path) or {})
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--config {item!r}: expected KEY=VALUE")
        config = deep_merge(config, {key: yaml.safe_load(value)})
    return config


def rule_gpus(config: dict, rule: str) -> int:
    """GPUs of a rule in the workflow config (``resources.default``, then the rule's)."""
    res = config.get("resources") or {}
    return int({**(res.get("default") or {}), **(res.get(rule) or {})}.get("gpus") or 0)


def _header(args: argparse.Namespace, n_jobs: int, config: dict, times: list[str]) -> list[str]:
    scope = ("only the jobs whose outputs are missing or out of date (snakemake -n)"
             if args.missing else
             "the whole grid, done or not (snakemake -n --forceall; --missing: only what "
             "is left)")
    return [
        f"ucd cost: target {args.target} of {' + '.join(args.configs)}",
        f"Counted: {scope}; {n_jobs} jobs in the dry run.",
        f"Step-times files: {', '.join(times) or 'none'}; finished runs are read from "
        f"{config.get('results', 'results')}/ with resources.train.gpus = "
        f"{rule_gpus(config, 'train')} (a training job also evaluates; a metrics.json does "
        "not record its GPUs).",
    ]


@dataclass
class Result:
    """What ``ucd cost`` found: every job with its cost, the DAG, and the report's header."""

    costs: list
    dag: Any
    header: list[str]


def collect(args: argparse.Namespace) -> Result:
    """Dry-run the target and cost every job (arguments as ``ucd cost`` parses them)."""
    from ucd.cost.dag import Dag, dry_run, repo_snakefile
    from ucd.cost.estimate import estimate
    from ucd.cost.measured import finished_runs, load_times
    from ucd.cost.rates import EvalRates, Rates, table7
    from ucd.planning.plan import Plan

    snakefile = Path(args.snakefile) if args.snakefile else repo_snakefile()
    config = workflow_config(snakefile, args.configs, args.config)
    plan = Plan(config)
    extra = ["--config", *args.config] if args.config else []
    jobs = dry_run(args.configs, args.target, snakefile=snakefile, forceall=not args.missing,
                   extra=extra)
    default = Path(plan.results) / DEFAULT_TIMES
    times = args.times
    if times is None:
        times = [str(default)] if default.is_file() else []
    measured = [f for path in times for f in load_times(path)]
    gpus = rule_gpus(config, "train")  # evaluation runs in the training job
    train_done, eval_done = finished_runs(plan.results, gpus, gpus)
    rates = Rates(measured, train_done, table7())
    costs = estimate(jobs, plan, rates, EvalRates(args.eval_s_per_image, eval_done))
    return Result(costs, Dag(jobs), _header(args, len(jobs), config, times))


def _cmd_cost(args: argparse.Namespace) -> int:
    if args.gpu_mem is not None and args.gpu_mem <= 0:
        raise ValueError(f"--gpu-mem must be > 0 GB, got {args.gpu_mem}")
    if args.eval_s_per_image is not None and args.eval_s_per_image <= 0:
        raise ValueError(f"--eval-s-per-image must be > 0, got {args.eval_s_per_image}")
    from ucd.cost.report import render

    found = collect(args)
    print(render(found.costs, found.dag, found.header, args.gpu_mem), end="")
    return 0


def register(sub: Any) -> None:
    """Add the ``cost`` subcommand to ``ucd``'s parser."""
    p = sub.add_parser("cost", help="GPU-hours, memory and critical path of a grid, before "
                                    "it is submitted",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="+", metavar="CONFIG", help="workflow config files")
    p.add_argument("--target", default="all_tables", help="Snakemake target (all_tables)")
    p.add_argument("--gpu-mem", type=float, default=None, metavar="GB",
                   help="memory of one GPU: flag the kinds of jobs that do not fit")
    p.add_argument("--missing", action="store_true",
                   help="count only what is missing or out of date (default: the whole grid)")
    p.add_argument("--times", action="append", default=None, metavar="FILE",
                   help="step-times file of benchmarks/gpu_step.py --times (repeatable; "
                        f"default: RESULTS/{DEFAULT_TIMES} when it exists)")
    p.add_argument("--eval-s-per-image", type=float, default=None, metavar="S",
                   help="seconds per validation image of an evaluation job")
    p.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                   help="passed to Snakemake's --config")
    p.add_argument("--snakefile", default=None, help="default: the repository's Snakefile")
    p.set_defaults(func=_cmd_cost)
