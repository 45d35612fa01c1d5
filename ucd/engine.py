"""Train one incremental step: from the previous step's checkpoint to this step's checkpoint.

The engine is method-agnostic: it builds the model (growing a head at steps >= 1), keeps a frozen
copy of the previous model when the method needs one, and sums the method's loss terms. SGD with
Nesterov momentum and a poly learning-rate schedule, as in the paper.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ucd import distributed as ddp
from ucd.checkpoint import CheckpointError, check_previous, load_checkpoint, save_checkpoint
from ucd.config import validate_run_config
from ucd.data.step import make_dataset
from ucd.data.tasks import get_task
from ucd.methods import Batch, StepContext, get_method
from ucd.models import build_model
from ucd.resume import (
    EpochBatchSampler,
    Preempted,
    SeededSamples,
    SignalFlag,
    load_resume,
    resume_path,
    save_resume,
)

log = logging.getLogger("ucd.train")


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) for a reproducible step."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def poly_lr(base: float, it: int, max_it: int, power: float) -> float:
    """Poly schedule: base * (1 - it / max_it) ** power."""
    return base * (1 - min(it, max_it) / max(max_it, 1)) ** power


def step_classes(run: dict[str, Any]) -> list[list[int]]:
    """Classes per head of the model trained at this step (Joint: all classes in one head)."""
    task = get_task(run["dataset"], run["task"])
    if get_method(run["base_method"]).joint:
        return [task.classes_seen(task.n_steps - 1)]
    return [list(c) for c in task.steps[: run["step"] + 1]]


def prepare_model(run: dict[str, Any], prev_path: str | Path | None):
    """The model to train and the frozen old model (or None), after checking the previous step."""
    method = get_method(run["base_method"])
    k = run["step"]
    if k == 0 or method.joint:
        if prev_path is not None:
            raise CheckpointError(f"step {k} of {run['method']} takes no previous checkpoint")
        return build_model(run["model"], step_classes(run)), None, {}
    if prev_path is None:
        raise CheckpointError(
            f"step {k} needs the checkpoint of step {k - 1} (--prev); train step {k - 1} first"
        )
    prev = load_checkpoint(prev_path)
    check_previous(prev, run, prev_path)
    model_cfg = {**run["model"], "pretrained": None}  # weights come from the checkpoint
    model = build_model(model_cfg, prev["classes"])
    model.load_state_dict(prev["model"])
    old_model = None
    if method.needs_old_model(k):
        old_model = copy.deepcopy(model).eval()
        for p in old_model.parameters():
            p.requires_grad_(False)
    task = get_task(run["dataset"], run["task"])
    model.classifier.add_step(task.new_classes(k))
    if method.init == "mib":
        model.classifier.init_new_head_from_background()
    return model, old_model, prev.get("method_state", {})


def make_loader(run: dict[str, Any]) -> DataLoader:
    """The step's training DataLoader: batches of (epoch, index) keys, per-sample seeded."""
    method = get_method(run["base_method"])
    k = run["step"]
    ds = make_dataset(
        run["dataset"],
        run["data"]["root"],
        run["task"],
        run["setting"],
        k,
        "train",
        split_file=run["data"].get("split"),
        crop_size=run["data"]["crop_size"],
        train_augment=True,
        ignore_to_background=method.ignore_to_background and k > 0,
        all_classes=method.joint,
    )
    bs = run["optim"]["batch_size"]
    if len(ds) < bs:
        raise ValueError(
            f"step {k} of {run['dataset']} {run['task']} {run['setting']} has {len(ds)} training "
            f"images, fewer than optim.batch_size={bs}"
        )
    seed = run["seed"] + 1000 * k
    workers = int(run["data"].get("num_workers", 0))
    return DataLoader(
        SeededSamples(ds, seed),
        batch_sampler=EpochBatchSampler(len(ds), bs, seed),
        num_workers=workers,
    )


def _check_finite(losses: dict[str, torch.Tensor], run: dict, epoch: int, it: int) -> str | None:
    for name, value in losses.items():
        if not torch.isfinite(value):
            return (
                f"loss term {name!r} is {value.item()} at step {run['step']} of {run['method']} "
                f"({run['dataset']} {run['task']} {run['setting']}), epoch {epoch + 1}, "
                f"iteration {it}"
            )
    return None


def train_step(run: dict[str, Any], out: str | Path, prev: str | Path | None = None) -> dict:
    """Train the step described by ``run`` and write its checkpoint to ``out``; return metrics.

    Resumes from ``<out>.resume`` when a previous attempt was interrupted (same run config).
    """
    validate_run_config(run)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    seed_everything(run["seed"] + run["step"])
    train_cfg = run.get("train", {})
    info, device = ddp.init_distributed(resolve_device(train_cfg.get("device", "auto")))
    precision = ddp.precision_of(train_cfg, device)
    method = get_method(run["base_method"])
    task = get_task(run["dataset"], run["task"])
    model, old_model, prev_state = prepare_model(run, prev)
    model.to(device).train()
    if info.enabled:  # batch statistics over the global batch
        model = ddp.convert_sync_norm(model)
    if old_model is not None:
        old_model.to(device)
    if precision.channels_last:
        for m in (model, old_model):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    loader = make_loader(run)  # whole global batches (for terms' passes over the data)
    train_loader = ddp.shard_loader(loader, info)  # this rank's slice of each global batch
    sampler: EpochBatchSampler = train_loader.batch_sampler  # type: ignore[assignment]
    accum = ddp.accumulation_steps(
        run["optim"]["batch_size"], info.world_size, train_cfg.get("per_gpu_batch")
    )
    epochs = run["optim"]["epochs"]
    max_it = epochs * len(loader)
    ctx = StepContext(
        run=run,
        task=task,
        step=run["step"],
        model=model,
        old_model=old_model,
        device=device,
        loader=loader,
        prev_state=prev_state,
        max_iterations=max_it,
    )
    terms = method.build_terms(run["params"], run["step"])
    opt = run["optim"]
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=opt["lr"],
        momentum=opt["momentum"],
        nesterov=opt["nesterov"],
        weight_decay=opt["weight_decay"],
    )
    rpath = resume_path(out)
    if not info.is_main:
        ddp.barrier(info)  # rank 0 reads (and may set aside) the state first
    state = load_resume(rpath, run)
    if info.is_main:
        ddp.barrier(info)
    progress = {
        "epoch": 0,
        "batch": 0,
        "n_images": 0,
        "elapsed": 0.0,
        "bad_batches": 0,
        "history": [],
        "sums": {},
    }
    if state is None:
        for term in terms:
            term.before_step(ctx)
    else:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for term in terms:
            term.load_state_dict(state["terms"].get(term.name, {}))
        progress = state["progress"]
        ctx.iteration = state["iteration"]
        log.info(
            "resuming %s step %d at iteration %d/%d from %s",
            run["method"],
            run["step"],
            ctx.iteration,
            max_it,
            rpath,
        )

    def snapshot() -> None:
        if not info.is_main:
            return
        save_resume(
            rpath,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "terms": {t.name: t.state_dict(full=True) for t in terms},
                "progress": progress,
                "iteration": ctx.iteration,
            },
            run,
        )

    every_s = float(train_cfg.get("checkpoint_every_s", 600))
    max_bad = int(train_cfg.get("max_bad_batches", 0))
    fwd_model = ddp.wrap_model(model, info, device)
    start = time.perf_counter() - progress["elapsed"]
    last_save = time.perf_counter()
    with SignalFlag() as flag:
        for epoch in range(progress["epoch"], epochs):
            sampler.start(epoch, progress["batch"])
            bar = tqdm(
                train_loader,
                disable=not info.is_main,
                desc=f"step {run['step']} epoch {epoch + 1}/{epochs}",
                initial=progress["batch"],
                total=len(loader),
                mininterval=2.0,
                dynamic_ncols=True,
            )
            for images, labels in bar:
                images, labels = precision.images(images.to(device)), labels.to(device)
                for group in optimizer.param_groups:
                    group["lr"] = poly_lr(opt["lr"], ctx.iteration, max_it, opt["poly_power"])
                optimizer.zero_grad(set_to_none=True)
                problem, step_losses = None, {}
                chunks = zip(images.chunk(accum), labels.chunk(accum))
                for micro, (ims, lbs) in enumerate(chunks):  # gradient accumulation
                    with ddp.sync_context(fwd_model, micro == accum - 1):
                        with precision.autocast(device):
                            outputs = fwd_model(ims)
                            old_out = None
                            if old_model is not None:
                                with torch.no_grad():
                                    old_out = old_model(ims)
                            batch = Batch(ims, lbs, outputs, old_out, ctx)
                            losses = {t.name: t.weight * t.loss(batch) for t in terms}
                        problem = _check_finite(losses, run, epoch, ctx.iteration)
                        if ddp.any_rank(problem is not None, info):  # every rank skips
                            problem = problem or "a loss is not finite on another rank"
                            break
                        total = sum(losses.values())
                        (total / accum).backward()
                    for name, value in [*losses.items(), ("total", total)]:
                        step_losses[name] = step_losses.get(name, 0.0) + value.item() / accum
                if problem and progress["bad_batches"] >= max_bad:
                    snapshot()  # the state before this batch: the last good one
                    raise NonFiniteLossError(
                        f"{problem}; {progress['bad_batches']} bad batches skipped before "
                        f"(train.max_bad_batches={max_bad}); last good state kept in {rpath}"
                    )
                if problem:
                    optimizer.zero_grad(set_to_none=True)
                    progress["bad_batches"] += 1
                    log.warning(
                        "%s: batch skipped (%d/%d)", problem, progress["bad_batches"], max_bad
                    )
                else:
                    for term in terms:
                        term.after_backward(ctx)
                    optimizer.step()
                    for term in terms:
                        term.after_optimizer_step(ctx)
                    for name, value in step_losses.items():
                        progress["sums"][name] = progress["sums"].get(name, 0.0) + value
                    bar.set_postfix(
                        loss=f"{step_losses['total']:.3f}",
                        img_s=f"{progress['n_images'] / max(time.perf_counter() - start, 1e-9):.1f}",  # noqa: E501
                    )
                ctx.iteration += 1
                if os.environ.get("UCD_FAULT_SIGTERM_AT") == str(ctx.iteration):  # fault tests
                    os.kill(os.getpid(), signal.SIGTERM)
                progress["batch"] += 1
                progress["n_images"] += images.shape[0] * info.world_size
                progress["elapsed"] = time.perf_counter() - start
                stop = ddp.any_rank(flag.received is not None, info)  # all ranks stop together
                if stop or time.perf_counter() - last_save > every_s:
                    snapshot()
                    last_save = time.perf_counter()
                    if stop:
                        ddp.barrier(info)
                        raise Preempted(flag.received or "SIGTERM", rpath)
            n = max(progress["batch"], 1)
            progress["history"].append({k_: v / n for k_, v in progress["sums"].items()})
            log.info("epoch %d/%d %s", epoch + 1, epochs, progress["history"][-1])
            progress.update(epoch=epoch + 1, batch=0, sums={})
    for term in terms:
        term.after_step(ctx)
    elapsed = time.perf_counter() - start
    metrics = {
        "train_time_s": elapsed,
        "images_per_s": progress["n_images"] / elapsed if elapsed > 0 else math.nan,
        "iterations": ctx.iteration,
        "bad_batches_skipped": progress["bad_batches"],
        "loss_history": progress["history"],
        "peak_gpu_mem_mb": (
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ),
    }
    method_state = dict(prev_state)
    method_state.update({t.name: t.state_dict() for t in terms if t.state_dict()})
    if not info.is_main:  # rank 0 alone writes
        ddp.shutdown_distributed()
        return metrics
    save_checkpoint(
        out,
        {
            "model": model.state_dict(),
            "classes": model.classifier.classes_per_step,
            "config": run,
            "method_state": method_state,
            "metrics": metrics,
        },
    )
    rpath.unlink(missing_ok=True)
    ddp.shutdown_distributed()
    return metrics
