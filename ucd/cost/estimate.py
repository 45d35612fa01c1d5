"""The cost of every job of a dry run: a training job's iterations (images of its step, from
its run config resolved by the plan) times seconds per iteration of its kind; an evaluation
job's validation images times seconds per image. Other jobs use no GPU and are counted only."""

from __future__ import annotations

from dataclasses import dataclass

from ucd.config import RunConfig
from ucd.cost.counts import Count, iterations, set_size, step_images
from ucd.cost.dag import Job
from ucd.cost.rates import EvalRates, Figure, Rates, Shape, eval_shape, shape_of
from ucd.plan import Cell, Plan

TRAIN_RULES = ("train", "train_shared")
EVAL_RULES = ("evaluate", "evaluate_shared")


@dataclass
class JobCost:
    """One job with what it costs (figure None: no figure applies, the job is left out)."""

    job: Job
    run: RunConfig | None = None
    count: Count | None = None  # images of the step (training) or of the validation set
    units: int | None = None  # iterations (training) or images (evaluation)
    shape: Shape | None = None
    figure: Figure | None = None
    problem: str = ""

    @property
    def costed(self) -> bool:
        return self.job.rule in TRAIN_RULES + EVAL_RULES

    @property
    def seconds(self) -> float | None:
        """Estimated wall time of the job (None: no figure or no count)."""
        if self.figure is None or self.units is None:
            return None
        return self.figure.seconds * self.units

    def hours(self) -> tuple[float, float]:
        """(GPU-hours, hours of CPU-only jobs)."""
        s = self.seconds or 0.0
        gpus = self.job.gpus
        return (s * gpus / 3600, 0.0) if gpus else (0.0, s / 3600)


def run_of(plan: Plan, shared: dict, job: Job) -> RunConfig:
    """The run config a training or evaluation job trains or evaluates."""
    w = job.wildcards
    if "group" in w:
        key = (w["dataset"], w["group"], int(w["seed"]))
        if key not in shared:
            raise ValueError(f"{job.name()}: the plan has no shared training {key}")
        return shared[key]
    cell = Cell(w["dataset"], w["task"], w["setting"], w["method"])
    return plan.run(cell, int(w["step"]), int(w["seed"]))


def _train_cost(cost: JobCost, rates: Rates) -> None:
    from ucd.methods import get_method

    run = cost.run
    cost.count = step_images(run, get_method(run.base_method).joint)
    if cost.count.images is None:
        return
    cost.units = iterations(run, cost.count.images)
    if cost.units == 0:
        cost.problem = (f"{cost.count.images} images < batch {run.optim.batch_size}: "
                        "the job would fail")
    cost.shape = shape_of(run, cost.job.gpus)
    cost.figure = rates.train(cost.shape)


def _eval_cost(cost: JobCost, rates: EvalRates) -> None:
    run = cost.run
    cost.count = set_size(run.dataset, run.data.root, "val")
    cost.units = cost.count.images
    cost.shape = eval_shape(run, cost.job.gpus)
    cost.figure = rates.figure(cost.shape)


def estimate(jobs: list[Job], plan: Plan, rates: Rates, eval_rates: EvalRates) -> list[JobCost]:
    """A JobCost per job, in the order of ``jobs``."""
    shared = plan.shared_trainings()
    out = []
    for job in jobs:
        cost = JobCost(job)
        if cost.costed:
            cost.run = run_of(plan, shared, job)
            if job.rule in TRAIN_RULES:
                _train_cost(cost, rates)
            else:
                _eval_cost(cost, eval_rates)
        out.append(cost)
    return out
