"""The jobs of a Snakemake dry run and their dependencies: what ``ucd cost`` counts is the DAG
the workflow would run, not a second description of it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_RULE = re.compile(r"^(?:local)?rule (\S+):$")
_FIELD = re.compile(r"^    (\w+): (.*)$")
_LISTS = ("input", "output")
_MAPS = ("wildcards", "resources")


@dataclass
class Job:
    """One job of a dry run: its rule, files, wildcards, resources and shell command."""

    rule: str
    jobid: int = -1
    input: list[str] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    shell: str = ""

    @property
    def gpus(self) -> int:
        """GPUs the job asks for (the ``gpu`` resource; 0 when unset)."""
        try:
            return int(self.resources.get("gpu", 0))
        except ValueError:
            return 0

    def name(self) -> str:
        """A short readable name: the rule and its wildcards."""
        w = self.wildcards
        keys = ("dataset", "task", "setting", "method", "group", "seed", "step")
        parts = [f"{k}{w[k]}" if k in ("seed", "step") else w[k] for k in keys if k in w]
        rest = [f"{k}={v}" for k, v in w.items() if k not in keys]
        return f"{self.rule} {'/'.join(parts + rest)}".rstrip()


def _pairs(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in text.split(", ") if "=" in kv)


def parse_dry_run(text: str) -> list[Job]:
    """The jobs printed by ``snakemake -n`` (rule, jobid, files, wildcards, resources, shell)."""
    jobs: list[Job] = []
    job = None
    for line in text.splitlines():
        m = _RULE.match(line)
        if m:
            job = Job(m.group(1))
            jobs.append(job)
            continue
        if job is None:
            continue
        if line.startswith("Shell command: "):
            job.shell, job = line[len("Shell command: "):], None
            continue
        f = _FIELD.match(line)
        if f and f.group(1) in _LISTS:
            setattr(job, f.group(1), [p for p in f.group(2).split(", ") if p])
        elif f and f.group(1) in _MAPS:
            setattr(job, f.group(1), _pairs(f.group(2)))
        elif f and f.group(1) == "jobid":
            job.jobid = int(f.group(2))
        elif not line.startswith("    "):
            job = None
    return jobs


def repo_snakefile() -> Path:
    """The Snakefile next to the package (a source checkout)."""
    return Path(__file__).resolve().parents[2] / "Snakefile"


def dry_run(configs: Sequence[str], target: str, *, snakefile: str | Path | None = None,
            forceall: bool = True, extra: Iterable[str] = (), timeout: int = 900) -> list[Job]:
    """Run ``snakemake -n TARGET`` in the current directory with the given config files."""
    snakefile = Path(snakefile or repo_snakefile())
    if not snakefile.is_file():
        raise FileNotFoundError(f"no Snakefile at {snakefile}; give --snakefile")
    for c in configs:
        if not Path(c).is_file():
            raise FileNotFoundError(f"config file {c} does not exist")
    cmd = [sys.executable, "-m", "snakemake", target, "-n", "-s", str(snakefile), *extra]
    if forceall:
        cmd.append("--forceall")
    if configs:
        cmd += ["--configfile", *[str(Path(c).resolve()) for c in configs]]
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [package_root,
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"the dry run of {target} failed:\n{out[-3000:]}")
    return parse_dry_run(out)


@dataclass
class Dag:
    """Jobs and their dependencies (a job depends on the jobs that produce its inputs)."""

    jobs: list[Job]

    def __post_init__(self) -> None:
        producer = {path: i for i, job in enumerate(self.jobs) for path in job.output}
        self.parents: list[list[int]] = [
            sorted({producer[p] for p in job.input if p in producer} - {i})
            for i, job in enumerate(self.jobs)
        ]

    def ancestors(self, roots: Iterable[int]) -> set[int]:
        """The given jobs and every job they depend on, directly or not."""
        seen: set[int] = set()
        todo = list(roots)
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(self.parents[i])
        return seen

    def order(self) -> list[int]:
        """The jobs in an order where every job comes after the jobs it depends on."""
        done: set[int] = set()
        visiting: set[int] = set()
        out: list[int] = []
        for start in range(len(self.jobs)):
            stack = [(start, False)]
            while stack:
                i, expanded = stack.pop()
                if expanded:
                    visiting.discard(i)
                    done.add(i)
                    out.append(i)
                    continue
                if i in done:
                    continue
                if i in visiting:
                    raise ValueError(f"the jobs form a cycle through {self.jobs[i].name()}")
                visiting.add(i)
                stack.append((i, True))
                stack.extend((p, False) for p in self.parents[i] if p not in done)
        return out

    def critical_path(self, durations: Sequence[float]) -> tuple[float, list[int]]:
        """The chain of dependent jobs with the longest total duration (``durations[i]`` of job
        i): (its duration, the job indices from first to last)."""
        best: dict[int, tuple[float, int | None]] = {}
        for i in self.order():
            before = max(((best[p][0], p) for p in self.parents[i]), default=(0.0, None))
            best[i] = (before[0] + durations[i], before[1])
        if not best:
            return 0.0, []
        end = max(best, key=lambda i: best[i][0])
        path, node = [], end
        while node is not None:
            path.append(node)
            node = best[node][1]
        return best[end][0], path[::-1]
