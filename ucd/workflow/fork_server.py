"""Start and stop of the fork server of a local run's training jobs (:mod:`ucd.zygote`),
from the Snakefile's ``onstart``, ``onsuccess`` and ``onerror``."""

from __future__ import annotations

import os
from typing import Any

from ucd.workflow.helpers import WorkflowHelpers
from ucd.zygote import control as zygote
from ucd.zygote import wire as zygote_wire


def fork_server_dir(wf: WorkflowHelpers, workflow: Any) -> str | None:
    """RESULTS/.ucd-zygote when this run's training jobs go through a fork server: config
    `fork_server`, a local run (Snakemake's own process starts every job on this machine: not
    SLURM, whose jobs run elsewhere, each in its own interpreter) and one process per
    training job (torchrun starts its ranks itself). `workflow` is Snakemake's."""
    if not wf.config.get("fork_server", True) or not workflow.local_exec:
        return None
    if not workflow.is_main_process or wf.train_launcher() != wf.config["ucd_command"]:
        return None
    return os.path.abspath(f"{wf.results}/.ucd-zygote")


def start_fork_server(wf: WorkflowHelpers, workflow: Any) -> None:
    """onstart: point the jobs at the server directory; the first training job that finds no
    server there starts one (with its own environment, so later jobs match it), which stops
    when this Snakemake process ends, if onsuccess/onerror did not stop it before."""
    where = fork_server_dir(wf, workflow)
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
