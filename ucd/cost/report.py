"""The text ``ucd cost`` prints: where every number comes from, jobs and iterations per rule,
GPU-hours per table and in total, peak memory per kind of job, and the critical path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ucd.cost.counts import Count
from ucd.cost.dag import Dag
from ucd.cost.estimate import EVAL_RULES, TRAIN_RULES, JobCost, Part
from ucd.cost.rates import Figure, Shape

TABLE_RULES = {"table": "table", "figure": "figure"}  # rule -> wildcard naming the item


def hours(h: float) -> str:
    """Hours, one decimal from 10 h on, three significant digits below."""
    return f"{h:,.1f}" if h >= 10 else f"{h:.3g}"


@dataclass
class Totals:
    """Summed hours of some jobs, and how many costed jobs had no figure or count."""

    gpu_h: float = 0.0
    cpu_h: float = 0.0
    jobs: int = 0
    unknown: int = 0

    def add(self, cost: JobCost) -> None:
        if not cost.costed:
            return
        self.jobs += 1
        if not cost.complete:
            self.unknown += 1
        g, c = cost.hours()
        self.gpu_h += g
        self.cpu_h += c

    def text(self) -> str:
        out = f"{hours(self.gpu_h):>10s} GPU-h"
        if self.cpu_h:
            out += f" + {hours(self.cpu_h)} h of CPU-only jobs"
        if self.unknown:
            out += f"  ({self.unknown} job(s) with a part without a figure, left out)"
        return out


def _bench(cost: JobCost) -> str:
    run = cost.run
    if cost.spec.all_classes:
        return f"{run.dataset} (Joint: all images, one step)"
    return f"{run.dataset}/{run.task}/{run.setting}"


MARKS = {"split": "s", "data": "d", "published": "p", "estimate": "~", "unknown": "?"}


def counts_section(costs: Sequence[JobCost]) -> list[str]:
    """Training images per step of every benchmark, each count marked with its source."""
    seen: dict[str, dict[int, Count]] = defaultdict(dict)
    legend: dict[str, set[str]] = defaultdict(set)
    for c in costs:
        part = c.part("train")
        if part is not None:
            seen[_bench(c)][c.run.step] = part.count
            split = part.count.origin == "split"
            legend[part.count.origin].add("the benchmark's split file (ucd data split)" if split
                                          else part.count.source)
    lines = ["Training images per step (iterations = epochs x floor(images / batch)), marked "
             "with their source:"]
    width = max(map(len, seen), default=0)
    for bench in sorted(seen):
        nums = " ".join(f"{k}:{'?' if n.images is None else n.images}{MARKS[n.origin]}"
                        for k, n in sorted(seen[bench].items()))
        lines.append(f"  {bench:{width}s}  {nums}")
    for origin, mark in MARKS.items():
        lines += [f"    {mark}  {text}" for text in sorted(legend[origin])]
    if legend["estimate"]:
        lines.append("       (estimates: an image holds several classes, so overlapped steps "
                     "reuse images and can hold more)")
    return lines


def _fits(fig: Figure, gpu_mem: float | None) -> str:
    if gpu_mem is None or fig.mem_gb is None or fig.shape.kind == "eval":
        return ""
    return "fits" if fig.mem_gb <= gpu_mem else f"DOES NOT FIT in {gpu_mem:g} GB"


def how_to_measure(shape: Shape) -> str:
    """What gives a figure for a shape no source covers."""
    if shape.kind == "eval":
        return "--eval-s-per-image, or finish one run (its metrics.json is read)"
    backbone, stride, *rest = shape.model.split("/")
    opts = [f"--backbone {backbone}", f"--output-stride {stride[2:]}"]
    flags = {"w": "--width", "h": "--head-channels"}
    opts += [f"{flags[r[0]]} {r[1:]}" if r[0] in flags else f"--amp {r}" for r in rest]
    device = "" if shape.gpus else "--device cpu "
    return (f"python benchmarks/gpu_step.py {device}{' '.join(opts)} --crop {shape.crop} "
            f"--batch {shape.per_gpu} --times RESULTS/step_times.json, or finish one run")


def figures_section(costs: Sequence[JobCost], gpu_mem: float | None) -> list[str]:
    """Seconds per iteration (per image for evaluation) and peak memory per kind of job, each
    with its source ([n] below) and how it was moved to the job's batch and crop."""
    groups: dict[Figure | None, list[Part]] = defaultdict(list)
    for c in costs:
        for part in c.parts:
            if part.units is not None:
                groups[part.figure].append(part)
    sources: dict[str, int] = {}
    lines = ["Seconds per iteration (evaluation: per image) and peak memory per device, by "
             "kind of work (jobs, kind, network, crop, device x images per device):"]
    order = sorted((f for f in groups if f is not None),
                   key=lambda f: (f.shape.kind, -f.shape.per_gpu, f.shape.crop))
    width = 0 if gpu_mem is None else len(f"DOES NOT FIT in {gpu_mem:g} GB")
    for fig in order:
        n = sources.setdefault(fig.source, len(sources) + 1)
        mem = "    ?   " if fig.mem_gb is None else f"{fig.mem_gb:6.1f} GB"
        lines.append(f"  {len(groups[fig]):5d} x {fig.shape.describe()}  {fig.seconds:7.3f} s"
                     f"  {mem} {_fits(fig, gpu_mem):{width}s} [{n}] {fig.note}".rstrip())
    missing: dict[Shape, int] = defaultdict(int)
    for part in groups.get(None, []):
        missing[part.shape] += 1
    for shape, n in missing.items():
        lines.append(f"  {n:5d} x {shape.describe()}  no figure, left out: {how_to_measure(shape)}")
    lines += [f"    [{n}] {text}" for text, n in sources.items()]
    return lines


def rules_section(costs: Sequence[JobCost]) -> list[str]:
    """Jobs, training iterations, validation images and hours per rule."""
    per: dict[str, list[JobCost]] = defaultdict(list)
    for c in costs:
        per[c.job.rule].append(c)
    first = (*TRAIN_RULES, *EVAL_RULES)
    order = sorted(per, key=lambda r: (first.index(r) if r in first else len(first), r))
    lines = [f"  {'rule':20s} {'jobs':>6s} {'iterations':>12s} {'val images':>11s}    hours"]
    for rule in order:
        members = per[rule]
        sums = [sum(p.units or 0 for m in members for p in m.parts if p.what == what)
                for what in ("train", "eval")]
        t = Totals()
        for m in members:
            t.add(m)
        if not t.jobs:
            lines.append(f"  {rule:20s} {len(members):6d} {'-':>12s} {'-':>11s}    no GPU")
            continue
        lines.append(f"  {rule:20s} {len(members):6d} {sums[0]:12,d} {sums[1]:11,d} {t.text()}")
    return ["Jobs per rule (a training job also evaluates its checkpoint):", *lines]


def _natural(name: str) -> tuple[bool, str, int]:
    """table2 before table10, tables before figures."""
    stem = name.rstrip("0123456789")
    return stem != "table", stem, int(name[len(stem):] or 0)


def tables_section(costs: Sequence[JobCost], dag: Dag) -> list[str]:
    """Hours per table and figure: every job its target depends on."""
    lines = ["GPU-hours per table (a job several tables need counts in each of their lines, "
             "once in the total):"]
    items = [(c.job.wildcards.get(TABLE_RULES[c.job.rule], c.job.rule), i)
             for i, c in enumerate(costs) if c.job.rule in TABLE_RULES]
    for name, i in sorted(items, key=lambda x: _natural(x[0])):
        t = Totals()
        for j in dag.ancestors([i]):
            t.add(costs[j])
        lines.append(f"  {name:10s} {t.jobs:5d} jobs {t.text()}")
    return lines


def path_section(costs: Sequence[JobCost], dag: Dag) -> list[str]:
    """The longest chain of dependent jobs: no number of GPUs makes the grid faster."""
    seconds, path = dag.critical_path([c.seconds or 0.0 for c in costs])
    lines = [f"Critical path: {hours(seconds / 3600)} h of wall time however many GPUs run "
             "(the longest chain of dependent jobs):"]
    others = 0
    for i in path:
        c = costs[i]
        if not c.seconds:
            others += 1
            continue
        lines.append(f"  {hours(c.seconds / 3600):>8s} h  {c.job.name()}")
    lines.append(f"  (+ {others} job(s) on the chain without GPU time: run configs, splits, "
                 "reports)")
    return lines


def render(costs: Sequence[JobCost], dag: Dag, header: Sequence[str],
           gpu_mem: float | None) -> str:
    """The whole report."""
    total = Totals()
    for c in costs:
        total.add(c)
    summary = f"Total: {total.text().strip()} for {total.jobs} jobs that train or evaluate"
    blocks = [list(header), counts_section(costs), figures_section(costs, gpu_mem),
              rules_section(costs), tables_section(costs, dag), [summary],
              path_section(costs, dag)]
    return "\n\n".join("\n".join(b) for b in blocks if b) + "\n"
