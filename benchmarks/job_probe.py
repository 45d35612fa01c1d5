"""Run one `ucd train` job in this process with a clock on each of its phases (job_cost.py).

    python [-X importtime] -m benchmarks.job_probe OUT.json -- train --run-json ... --out ...

(from the repository root, so that its ``ucd`` is the one imported, as by ``python -m ucd``)

The job runs as ``python -m ucd`` runs it in a fresh interpreter (``ucd.launch.main``, or
``ucd.cli.main`` in code from before ucd.launch); the phases are timed by wrapping the
functions that do them (no profiler, so nothing is inflated). Every phase is exclusive: a phase
called inside another is subtracted from it. Writes, to OUT.json when the job's process starts
to exit (an atexit handler), the wall-clock time this process started running Python code
(``JOB_COST_LAUNCH`` is the parent's clock just before it started the process), each phase's
wall and CPU seconds, and the modules imported during the job (lazy imports).
"""

import time

FIRST = time.time()  # the first line of Python this process runs (after the interpreter start)
FIRST_CPU = time.process_time()

import atexit  # noqa: E402
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
    import ucd.data.step
    import ucd.evaluation.evaluate as ev
    import ucd.evaluation.records
    import ucd.facts.config
    import ucd.training.engine

    for owner, attr, name in [
        (ucd.cli, "main", "other (CLI, config, logging)"),
        (ucd.training.engine, "train_step", "training"),
        (ucd.training.engine, "load_checkpoint", "checkpoint read"),
        (ev, "load_checkpoint", "checkpoint read"),
        (ucd.training.engine, "prepare_model", "model build"),
        (ev, "build_model", "model build"),
        (ucd.training.engine, "training_dataset", "data set-up"),
        (ucd.training.engine, "make_loader", "data set-up"),
        (ev, "make_dataset", "data set-up"),
        (ev, "evaluate_checkpoint", "evaluation"),
        (ucd.training.engine, "save_checkpoint", "checkpoint write"),
        (ucd.facts.config, "write_yaml_atomic", "writing outputs"),
        (ucd.evaluation.records, "write_json_atomic", "writing outputs"),
        (np, "savez_compressed", "writing outputs"),
    ]:
        clock.wrap(owner, attr, name)
    clock.wrap(ucd.data.step.StepDataset, "_decode", "",
               split=lambda args: f"decode ({args[0].meta['split']} images)")


def prepare(out: str, launch: float, first: float, first_cpu: float) -> None:
    """Import what a job imports (timed), wrap its phases, and write the record at exit."""
    clock = Clock()
    t, c = time.perf_counter(), time.process_time()
    import ucd.cli  # noqa: F401  (what `python -m ucd` imports first)

    t_cli, c_cli = time.perf_counter(), time.process_time()
    import ucd.evaluation.evaluate  # noqa: F401
    import ucd.training.engine  # noqa: F401  (what `ucd train` imports before it trains)

    t_train, c_train = time.perf_counter(), time.process_time()
    instrument(clock)
    before = set(sys.modules)

    def record() -> None:  # at exit: after the job, before the interpreter's own exit work
        with open(out, "w") as f:
            json.dump({
                "launch": launch, "first": first, "first_cpu": first_cpu,
                "import_cli": t_cli - t, "import_training": t_train - t_cli,
                "import_cli_cpu": c_cli - c, "import_training_cpu": c_train - c_cli,
                "wall": clock.wall, "cpu": clock.cpu,
                "lazy_modules": sorted(set(sys.modules) - before),
                "end": time.time(), "end_cpu": time.process_time(),
                "ucd": sys.modules["ucd"].__file__,
            }, f)

    atexit.register(record)


def main(argv: list[str]) -> None:
    """A fresh interpreter's job: ``OUT -- UCD ARGS``."""
    out, ucd_argv = argv[0], argv[argv.index("--") + 1:]
    prepare(out, float(os.environ.get("JOB_COST_LAUNCH", FIRST)), FIRST, FIRST_CPU)
    try:  # what `python -m ucd` runs (ucd.launch: also how the process exits)
        from ucd.launch import main as launch
    except ImportError:  # the code before ucd.launch: `raise SystemExit(main())`
        import ucd.cli

        def launch(argv):
            raise SystemExit(ucd.cli.main(argv))
    launch(ucd_argv)


def served(argv: list[str]) -> int:
    """A fork server's job (the server's ``--entry``, in place of ``ucd.cli.main``):
    ``train --probe OUT LAUNCH -- UCD ARGS``; the record's "first" is when the forked
    child starts the job, its CPU counts from the fork."""
    first, first_cpu = time.time(), time.process_time()
    out, launch = argv[argv.index("--probe") + 1], float(argv[argv.index("--probe") + 2])
    prepare(out, launch, first, first_cpu)
    import ucd.cli

    return ucd.cli.main(argv[argv.index("--") + 1:])


if __name__ == "__main__":
    main(sys.argv[1:])
