"""The cost of every job of a dry run. A training job trains its step (epochs x floor(images of
the step / batch) iterations, times seconds per iteration of its kind) and, when it writes a
metrics.json, evaluates the checkpoint too (validation images times seconds per image); a job
of a separate evaluation rule only evaluates. Other jobs use no GPU and are only counted."""

from __future__ import annotations

from dataclasses import dataclass, field

from ucd.cost.counts import Count, iterations, set_size, step_images
from ucd.cost.dag import Job
from ucd.cost.rates import EvalRates, Figure, Rates, Shape, eval_shape, shape_of
from ucd.facts.config import RunConfig
from ucd.facts.spec import StepSpec
from ucd.planning.plan import Cell, Plan

TRAIN_RULES = ("train", "train_shared")
EVAL_RULES = ("evaluate", "evaluate_shared")  # a workflow that evaluates in its own jobs


@dataclass
class Part:
    """Training or evaluation inside a job: its images, units, shape and figure."""

    what: str  # "train" (units: iterations) or "eval" (units: validation images)
    count: Count
    units: int | None
    shape: Shape
    figure: Figure | None

    @property
    def seconds(self) -> float | None:
        if self.figure is None or self.units is None:
            return None
        return self.figure.seconds * self.units


@dataclass
class JobCost:
    """One job with what it costs; a part without a figure or count is left out, and said."""

    job: Job
    spec: StepSpec | None = None
    parts: list[Part] = field(default_factory=list)
    problem: str = ""

    @property
    def run(self) -> RunConfig | None:
        """The run config the job trains or evaluates (None: a job without one)."""
        return None if self.spec is None else self.spec.run

    @property
    def costed(self) -> bool:
        return bool(self.parts)

    @property
    def complete(self) -> bool:
        return all(p.seconds is not None for p in self.parts)

    def part(self, what: str) -> Part | None:
        return next((p for p in self.parts if p.what == what), None)

    @property
    def seconds(self) -> float:
        """Estimated wall time of the job (the parts with a figure)."""
        return sum(p.seconds or 0.0 for p in self.parts)

    def hours(self) -> tuple[float, float]:
        """(GPU-hours, hours of CPU-only jobs)."""
        s, gpus = self.seconds, self.job.gpus
        return (s * gpus / 3600, 0.0) if gpus else (0.0, s / 3600)


def spec_of(plan: Plan, shared: dict, job: Job) -> StepSpec:
    """The spec of the step a training or evaluation job trains or evaluates."""
    w = job.wildcards
    if "group" in w:
        key = (w["dataset"], w["group"], int(w["seed"]))
        if key not in shared:
            raise ValueError(f"{job.name()}: the plan has no shared training {key}")
        return shared[key]
    cell = Cell(w["dataset"], w["task"], w["setting"], w["method"])
    return plan.spec(cell, int(w["step"]), int(w["seed"]))


def train_part(spec: StepSpec, gpus: int, rates: Rates) -> Part:
    """Training a step: its iterations and seconds per iteration."""
    count = step_images(spec.run, spec.all_classes)
    units = None if count.images is None else iterations(spec.run, count.images)
    shape = shape_of(spec, gpus)
    return Part("train", count, units, shape, rates.train(shape))


def eval_part(run: RunConfig, gpus: int, rates: EvalRates) -> Part:
    """Evaluating a step's checkpoint on the whole validation set."""
    count = set_size(run.dataset, run.data.root, "val")
    shape = eval_shape(run, gpus)
    return Part("eval", count, count.images, shape, rates.figure(shape))


def job_cost(job: Job, spec: StepSpec, rates: Rates, eval_rates: EvalRates) -> JobCost:
    """The parts of one training or evaluation job."""
    cost, run = JobCost(job, spec), spec.run
    if job.rule in TRAIN_RULES:
        cost.parts.append(train_part(spec, job.gpus, rates))
        units = cost.parts[0].units
        if units == 0:
            cost.problem = (f"{cost.parts[0].count.images} images < batch "
                            f"{run.optim.batch_size}: the job would fail")
    if job.rule in EVAL_RULES or any(p.endswith("metrics.json") for p in job.output):
        cost.parts.append(eval_part(run, job.gpus, eval_rates))
    return cost


def estimate(jobs: list[Job], plan: Plan, rates: Rates, eval_rates: EvalRates) -> list[JobCost]:
    """A JobCost per job, in the order of ``jobs``."""
    shared = plan.shared_specs()
    out = []
    for job in jobs:
        if job.rule in TRAIN_RULES + EVAL_RULES:
            out.append(job_cost(job, spec_of(plan, shared, job), rates, eval_rates))
        else:
            out.append(JobCost(job))
    return out
