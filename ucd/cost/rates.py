"""Seconds per iteration and peak memory per kind of training job, each with its source.

Sources, in order: the user's measurement file (``benchmarks/gpu_step.py --times FILE``),
finished runs (metrics.json next to their run.yaml), and, for GPU jobs, the paper's Table 7
(``cost.yaml`` says how it is read). A figure measured at another batch or crop is scaled
linearly with the pixels a device processes per iteration, and says so.
"""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from importlib import resources

import yaml

from ucd.facts.config import ModelConfig, RunConfig
from ucd.facts.spec import StepSpec
from ucd.methods import default_spec


@functools.cache
def settings() -> dict:
    """The cost model's own data (``ucd/cost/cost.yaml``)."""
    return yaml.safe_load(resources.files("ucd.cost").joinpath("cost.yaml").read_text())


def model_label(model: ModelConfig, amp: str = "none") -> str:
    """The network as far as time goes: backbone, output stride, then the stem width (when
    not 64), the ASPP channels (when not 256) and the precision (when not fp32)."""
    extra = [f"w{model.width}" if model.width != 64 else "",
             f"h{model.head_channels}" if model.head_channels != 256 else "",
             amp if amp != "none" else ""]
    return "/".join([model.backbone, f"os{model.output_stride}", *filter(None, extra)])


@dataclass(frozen=True)
class Shape:
    """What a training iteration's time depends on."""

    kind: str
    model: str
    crop: int
    per_gpu: int  # images per device per iteration: the global batch / GPUs (CPU: the batch)
    micro: int  # images per forward pass (train.per_gpu_batch, else per_gpu)
    gpus: int  # 0: a CPU job

    def describe(self) -> str:
        where = f"{self.gpus} GPU x" if self.gpus == 1 else (
            f"{self.gpus} GPUs x" if self.gpus else "CPU,")
        return (f"{self.kind:13s} {self.model:20s} crop {self.crop:4d}  "
                f"{where} {self.per_gpu:3d} images")


def shape_of(spec: StepSpec, gpus: int) -> Shape:
    """The shape of a training step run on ``gpus`` GPUs (0: CPU); its kind is the spec's
    (plain, old, or the costly terms it trains with)."""
    run = spec.run
    per_gpu = max(1, run.optim.batch_size // max(gpus, 1))
    micro = min(per_gpu, run.train.per_gpu_batch or per_gpu)
    return Shape(spec.cost_kind(), model_label(run.model, run.train.amp), run.data.crop_size,
                 per_gpu, micro, gpus)


def eval_shape(run: RunConfig, gpus: int) -> Shape:
    """The shape of evaluating a step's checkpoint (one image at a time, fp32)."""
    return Shape("eval", model_label(run.model), run.data.crop_size, 1, 1, gpus)


@dataclass(frozen=True)
class Figure:
    """Seconds per iteration (or per image) and peak memory per device of one shape, with
    its source and how it was moved to this shape (``note``)."""

    shape: Shape
    seconds: float
    mem_gb: float | None
    source: str
    note: str = ""


def _factor(to: Shape, ref: Shape, images: str) -> float:
    return (getattr(to, images) * to.crop**2) / (getattr(ref, images) * ref.crop**2)


def scaled(ref: Figure, to: Shape, note: str = "") -> Figure:
    """A figure moved to another batch/crop, linear in the pixels per device."""
    t, m = _factor(to, ref.shape, "per_gpu"), _factor(to, ref.shape, "micro")
    mem = None if ref.mem_gb is None else ref.mem_gb * m
    if t != 1 or m != 1:
        note += f"; x{t:.3g} from {ref.shape.per_gpu} images/device, crop {ref.shape.crop}"
    return Figure(to, ref.seconds * t, mem, ref.source, note.lstrip("; "))


def pick(shape: Shape, figures: Sequence[Figure]) -> Figure | None:
    """The figure of ``shape`` from one source's figures of the same kind, model and device
    type: the median of exact matches, else the nearest one scaled; None when none fits."""
    same = [f for f in figures if (f.shape.kind, f.shape.model) == (shape.kind, shape.model)
            and (f.shape.gpus > 0) == (shape.gpus > 0)]
    if not same:
        return None
    exact = [f for f in same if (f.shape.crop, f.shape.per_gpu) == (shape.crop, shape.per_gpu)]
    if exact:
        mems = [f.mem_gb for f in exact if f.mem_gb is not None]
        ref = Figure(exact[0].shape, statistics.median(f.seconds for f in exact),
                     max(mems) if mems else None, exact[0].source)
        return scaled(ref, shape, f"median of {len(exact)}" if len(exact) > 1 else "")
    ref = min(same, key=lambda f: (f.shape.crop != shape.crop,
                                   abs(math.log(f.shape.per_gpu / shape.per_gpu))))
    return scaled(ref, shape)


@dataclass(frozen=True)
class Table7:
    """The paper's Table 7 rows as figures, one per kind of job (cost.yaml says how)."""

    figures: dict[str, Figure]
    default: str

    def figure(self, shape: Shape) -> Figure | None:
        if shape.gpus == 0:
            return None
        ref = self.figures.get(shape.kind)
        note = ""
        if ref is None:
            ref = self.figures[self.default]
            note = f"no {shape.kind} row: the UCD row (more work than {shape.kind})"
        if ref.shape.model != shape.model:
            note += f"; a {ref.shape.model} figure used for {shape.model}"
        return scaled(ref, shape, note)


def table7() -> Table7:
    """Table 7's time and memory columns as seconds/iteration and GB per GPU."""
    from ucd.data.tasks import get_task
    from ucd.reporting.reference import load_reference

    t7 = settings()["table7"]
    dataset, task, setting = t7["benchmark"].split("/")
    images = get_task(dataset, task).expected_counts[setting][t7["step"]]
    iters = t7["epochs"] * (images // t7["batch_size"])
    out = {}
    for method, cells in load_reference()["table7"].items():
        minutes = cells[(t7["benchmark"], "time")].value
        memory = cells[(t7["benchmark"], "memory")].value
        kind = default_spec(method, t7["benchmark"], t7["step"]).cost_kind()
        shape = Shape(kind, t7["model"], t7["crop"], t7["images_per_gpu"], t7["images_per_gpu"],
                      t7["gpus"])
        per_gpu_mem = memory / t7["gpus"] if t7["memory_over_gpus"] else memory
        source = (f"paper Table 7, {method} row: {minutes:g} min / {iters} iterations "
                  f"({t7['epochs']} epochs x {images}//{t7['batch_size']}) and {memory:g} GB "
                  f"on {t7['gpus']} {t7['gpu']} x {t7['images_per_gpu']} images")
        out[kind] = Figure(shape, minutes * 60 / iters, per_gpu_mem, source)
    default_kind = default_spec(t7["default_row"], t7["benchmark"], t7["step"]).cost_kind()
    return Table7(out, default_kind)


@dataclass
class Rates:
    """Every source of training figures, asked in order: measured, finished runs, Table 7."""

    measured: list[Figure]
    finished: list[Figure]
    paper: Table7

    def train(self, shape: Shape) -> Figure | None:
        for figures in (self.measured, self.finished):
            found = pick(shape, figures)
            if found is not None:
                return found
        return self.paper.figure(shape)


@dataclass
class EvalRates:
    """Seconds per validation image: the user's stated figure, else finished runs, else the
    assumption of cost.yaml (GPU jobs only)."""

    stated: float | None
    finished: list[Figure]

    def figure(self, shape: Shape) -> Figure | None:
        if self.stated is not None:
            return Figure(shape, self.stated, None, "stated (--eval-s-per-image)")
        found = pick(shape, self.finished)
        if found is not None or shape.gpus == 0:
            return found
        ev = settings()["evaluation"]
        ref = Figure(replace(shape, crop=ev["crop"]), ev["s_per_image"], None,
                     "assumed, not measured (ucd/cost/cost.yaml evaluation.s_per_image)")
        return scaled(ref, shape)
