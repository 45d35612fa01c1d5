"""Run one `ucd train` job in this process with a clock on each of its phases (job_cost.py).

    python [-X importtime] benchmarks/job_probe.py OUT.json -- train --run-json ... --out ...

The job runs through ``ucd.cli.main`` exactly as ``python -m ucd`` runs it; the phases are
timed by wrapping the functions that do them (no profiler, so nothing is inflated). Every
phase is exclusive: a phase called inside another is subtracted from it. Writes, to OUT.json,
the wall-clock time this process started running Python code (``JOB_COST_LAUNCH`` is the
parent's clock just before it started the process), each phase's wall and CPU seconds, and
the modules imported during the job (lazy imports).
"""

import time

FIRST = time.time()  # the first line of Python this process runs (after the interpreter start)
FIRST_CPU = time.process_time()

import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


class Clock:
    """Exclusive wall and CPU seconds per phase name (a nested phase pauses its caller)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.stack: list[list] = []  # [name, wall start, cpu start, wall of children, cpu ...]

    def wrap(self, owner, attr: str, name: str, split=None) -> None:
        """Time every call of ``owner.attr`` as phase ``name`` (or ``split(args)``'s name)."""
        func = getattr(owner, attr)

        def timed(*args, **kwargs):
            self.stack.append([split(args) if split else name, time.perf_counter(),
                               time.process_time(), 0.0, 0.0])
            try:
                return func(*args, **kwargs)
            finally:
                phase, w0, c0, cw, cc = self.stack.pop()
                w, c = time.perf_counter() - w0, time.process_time() - c0
                self.wall[phase] = self.wall.get(phase, 0.0) + w - cw
                self.cpu[phase] = self.cpu.get(phase, 0.0) + c - cc
                if self.stack:
                    self.stack[-1][3] += w
                    self.stack[-1][4] += c

        setattr(owner, attr, timed)


def instrument(clock: Clock) -> None:
    """Wrap the functions of the training path that make up a job's phases."""
    import numpy as np

    import ucd.cli
    import ucd.config
    import ucd.data.step
    import ucd.engine
    import ucd.evaluation.evaluate as ev
    import ucd.evaluation.records

    for owner, attr, name in [
        (ucd.cli, "main", "other (CLI, config, logging)"),
        (ucd.engine, "train_step", "training"),
        (ucd.engine, "load_checkpoint", "checkpoint read"),
        (ev, "load_checkpoint", "checkpoint read"),
        (ucd.engine, "prepare_model", "model build"),
        (ev, "build_model", "model build"),
        (ucd.engine, "training_dataset", "data set-up"),
        (ucd.engine, "make_loader", "data set-up"),
        (ev, "make_dataset", "data set-up"),
        (ev, "evaluate_checkpoint", "evaluation"),
        (ucd.engine, "save_checkpoint", "checkpoint write"),
        (ucd.config, "write_yaml_atomic", "writing outputs"),
        (ucd.evaluation.records, "write_json_atomic", "writing outputs"),
        (np, "savez_compressed", "writing outputs"),
    ]:
        clock.wrap(owner, attr, name)
    clock.wrap(ucd.data.step.StepDataset, "_decode", "",
               split=lambda args: f"decode ({args[0].meta['split']} images)")


def main(argv: list[str]) -> int:
    out, ucd_argv = argv[0], argv[argv.index("--") + 1:]
    clock = Clock()
    t = time.perf_counter()
    import ucd.cli  # noqa: F401  (what `python -m ucd` imports first)

    t_cli = time.perf_counter()
    import ucd.engine  # noqa: F401  (what `ucd train` imports before it trains)
    import ucd.evaluation.evaluate  # noqa: F401

    t_train = time.perf_counter()
    instrument(clock)
    before = set(sys.modules)
    code = ucd.cli.main(ucd_argv)
    record = {
        "launch": float(os.environ.get("JOB_COST_LAUNCH", FIRST)),
        "first": FIRST, "first_cpu": FIRST_CPU,
        "import_cli": t_cli - t, "import_training": t_train - t_cli,
        "wall": clock.wall, "cpu": clock.cpu, "lazy_modules": sorted(set(sys.modules) - before),
        "exit_code": code, "end": time.time(),
    }
    with open(out, "w") as f:
        json.dump(record, f)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
