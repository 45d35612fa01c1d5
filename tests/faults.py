"""Fault injection for the reliability tests, from outside the production code.

In-process: ``sigterm_at(monkeypatch, n)`` sends SIGTERM to this process right after training
iteration ``n``; ``kill_in_save(monkeypatch, n)`` SIGKILLs it after the resumable state of
iteration ``n`` is written to its temporary file and before it is published;
``overflow_at(monkeypatch, n)`` trains with dynamic loss scaling on the CPU (torch's CPU
GradScaler: the fp16 path's scaler, on fp32 compute) and makes one gradient of iteration ``n``
infinite, as an fp16 overflow does.

As a process (what SLURM does to a job): ``python -m tests.faults [--sigterm-at N]
[--kill-in-save N] [--overflow-at N] -- <ucd command line>`` installs the same faults, then
runs ``ucd``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import torch

import ucd.training.distributed as distributed
import ucd.training.engine as engine
import ucd.training.resume as resume


class _Patch:
    """monkeypatch.setattr for use outside pytest (the process entry point)."""

    @staticmethod
    def setattr(obj: Any, name: str, value: Any) -> None:
        setattr(obj, name, value)


def sigterm_at(monkeypatch: Any, n: int) -> None:
    """SIGTERM right after iteration ``n`` (as a scheduler preempting the job)."""
    original = engine.train_iteration

    def iteration(step, images, labels):
        losses = original(step, images, labels)
        if step.ctx.iteration == n:
            os.kill(os.getpid(), signal.SIGTERM)
        return losses

    monkeypatch.setattr(engine, "train_iteration", iteration)


def kill_in_save(monkeypatch: Any, n: int) -> None:
    """SIGKILL while the resumable state of iteration ``n`` is being saved (written, not yet
    published)."""
    save, publish = resume.save_resume, resume.publish
    current: dict[str, int] = {}

    def saving(path, state, run):
        current["iteration"] = state["iteration"]
        return save(path, state, run)

    def publishing(tmp, path):
        if current.get("iteration") == n:
            os.kill(os.getpid(), signal.SIGKILL)
        return publish(tmp, path)

    monkeypatch.setattr(resume, "save_resume", saving)
    monkeypatch.setattr(resume, "publish", publishing)
    monkeypatch.setattr(engine, "save_resume", saving)


def overflow_at(monkeypatch: Any, n: int, init_scale: float = 2.0**10) -> None:
    """Loss scaling on the CPU, and an inf in one gradient at iteration ``n`` (0-based: the
    ``n + 1``-th optimiser step), after the backward pass and before the update."""
    monkeypatch.setattr(distributed.Precision, "grad_scaler",
                        lambda self, *args: torch.amp.GradScaler("cpu", init_scale=init_scale))
    original = engine.forward_backward

    def forward_backward(step, images, labels):
        out = original(step, images, labels)
        if step.ctx.iteration == n:
            grad = next(p.grad for p in step.model.parameters() if p.grad is not None)
            grad.view(-1)[0] = float("inf")
        return out

    monkeypatch.setattr(engine, "forward_backward", forward_backward)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--sigterm-at", type=int)
    parser.add_argument("--kill-in-save", type=int)
    parser.add_argument("--overflow-at", type=int)
    parser.add_argument("ucd", nargs=argparse.REMAINDER, help="-- then the ucd arguments")
    args = parser.parse_args(argv)
    if args.sigterm_at is not None:
        sigterm_at(_Patch, args.sigterm_at)
    if args.kill_in_save is not None:
        kill_in_save(_Patch, args.kill_in_save)
    if args.overflow_at is not None:
        overflow_at(_Patch, args.overflow_at)
    from ucd.cli import main as ucd_main

    return ucd_main([a for a in args.ucd if a != "--"])


if __name__ == "__main__":
    sys.exit(main())
