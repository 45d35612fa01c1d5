"""Train one incremental step: from the previous step's checkpoint to this step's checkpoint.

``train_step`` reads top to bottom as the parts of a step: set up (models, data, terms,
optimiser), start or resume, iterate (one optimiser step per global batch), save a resumable
state when asked, finish (hooks, checkpoint). The engine is method-agnostic: everything a
method changes (its loss terms, the head initialisation, the label policy, extra data) comes
from the step spec (:class:`~ucd.facts.spec.StepSpec`: the run config and the facts the method layer
derived from it), never from the method's name. SGD with Nesterov momentum and
a poly learning-rate schedule, as in the paper.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from ucd.data.step import make_dataset
from ucd.facts.config import ConfigError, RunConfig
from ucd.facts.progress import Progress
from ucd.facts.spec import StepSpec
from ucd.methods import (
    Batch,
    Clock,
    StepContext,
    Term,
    build_adapters,
    build_terms,
    step_context,
    step_spec,
)
from ucd.models import build_model
from ucd.training import distributed as ddp
from ucd.training.checkpoint import (
    CheckpointError,
    check_previous,
    load_checkpoint,
    save_checkpoint,
)
from ucd.training.optim import SGD
from ucd.training.resume import (
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


# ------------------------------------------------------------------------- set-up


def as_spec(step: StepSpec | RunConfig) -> StepSpec:
    """The step spec of a step (a bare run config: its spec, derived by the method layer)."""
    return step if isinstance(step, StepSpec) else step_spec(step)


def freeze(model: nn.Module) -> nn.Module:
    """A frozen copy: evaluation mode (batch-norm statistics fixed), no gradients."""
    old = copy.deepcopy(model).eval()
    for p in old.parameters():
        p.requires_grad_(False)
    return old


def prepare_model(spec: StepSpec | RunConfig, prev_path: str | Path | None):
    """The model to train, the frozen old model (or None) and the methods' carried state,
    after checking that the previous step's checkpoint fits this step; a grown model is
    adapted by the terms named for it (e.g. MiB's head init)."""
    spec = as_spec(spec)
    run, k = spec.run, spec.run.step
    if not spec.takes_previous:
        if prev_path is not None:
            raise CheckpointError(f"step {k} of {run.method} takes no previous checkpoint")
        return build_model(run.model, [list(c) for c in spec.classes]), None, {}
    if prev_path is None:
        raise CheckpointError(
            f"step {k} needs the checkpoint of step {k - 1} (--prev); train step {k - 1} first"
        )
    prev = load_checkpoint(prev_path)
    check_previous(prev, spec, prev_path)
    model = build_model(run.model, prev["classes"], pretrained=False)  # weights: checkpoint
    model.load_state_dict(prev["model"])
    old_model = freeze(model) if spec.needs_old_model else None
    model.classifier.add_step(list(spec.new_classes))
    for term in build_adapters(spec):
        term.adapt_model(model, spec)
    return model, old_model, prev.get("method_state", {})


def training_dataset(spec: StepSpec):
    """The step's training images with the labels this method sees at this step."""
    run = spec.run
    return make_dataset(
        run.dataset, run.data.root, run.task, run.setting, run.step, "train",
        split_file=run.data.split, crop_size=run.data.crop_size, train_augment=True,
        flip=run.data.flip,
        ignore_to_background=spec.ignore_to_background, all_classes=spec.all_classes,
    )


def make_loader(spec: StepSpec | RunConfig, dataset=None) -> DataLoader:
    """The step's training DataLoader over whole global batches of (epoch, index) keys, each
    sample augmented from its own seed."""
    spec = as_spec(spec)
    run = spec.run
    if dataset is None:
        dataset = training_dataset(spec)
    bs = run.optim.batch_size
    if len(dataset) < bs:
        raise ValueError(
            f"step {run.step} of {run.dataset} {run.task} {run.setting} has {len(dataset)} "
            f"training images, fewer than optim.batch_size={bs}"
        )
    seed = run.seed + 1000 * run.step
    make = getattr(dataset, "make_batch_sampler", None)  # e.g. replay mixed into every batch
    sampler = make(bs, seed) if make else EpochBatchSampler(len(dataset), bs, seed)
    return DataLoader(SeededSamples(dataset, seed), batch_sampler=sampler,
                      num_workers=run.data.num_workers)


@dataclass
class StepProgress:
    """What the step has measured so far (its counters are the context's clock): restored as
    a whole when a step resumes."""

    n_images: int = 0
    elapsed: float = 0.0
    bad_batches: int = 0
    overflows: int = 0  # fp16 iterations whose gradients overflowed (update skipped)
    history: list[dict[str, float]] = field(default_factory=list)  # mean losses per epoch
    sums: dict[str, float] = field(default_factory=dict)  # loss sums of the current epoch


@dataclass
class Step:
    """Everything one training step holds while it runs."""

    spec: StepSpec
    out: Path
    info: ddp.DistInfo
    precision: ddp.Precision
    model: nn.Module
    fwd_model: nn.Module  # DDP wrapper of `model` when distributed, else `model`
    terms: list[Term]
    optimizer: SGD
    scaler: torch.amp.GradScaler | None
    ctx: StepContext
    loader: DataLoader  # whole global batches (hooks that pass over the data)
    train_loader: DataLoader  # this rank's share of every global batch
    accum: int  # micro-batches per optimiser step
    contrast: int | None  # images per contrast set of the batch-coupled terms (None: no such term)
    state: StepProgress = field(default_factory=StepProgress)

    @property
    def run(self) -> RunConfig:
        return self.spec.run

    @property
    def clock(self) -> Clock:
        """The step's counters: epoch, batch, iteration (the terms see the same clock)."""
        return self.ctx.clock

    @property
    def epochs(self) -> int:
        return self.run.optim.epochs_for(len(self.loader))

    @property
    def max_iterations(self) -> int:
        return self.clock.max_iterations


def contrast_group(terms: list[Term], run: RunConfig, world_size: int, accum: int) -> int | None:
    """Images per contrast set of the terms coupling a batch's images (None: no such term):
    one device's share of the batch, over ``train.devices`` (the setup reproduced; None: this
    run's ranks). Refused when the devices do not split the batch and the ranks evenly, or
    when micro-batches (accumulation) would split a contrast set, silently shrinking it."""
    devices, batch = run.train.devices or world_size, run.optim.batch_size
    if devices % world_size or batch % devices:
        raise ConfigError(
            f"train.devices={devices} must split optim.batch_size={batch} evenly, and each of "
            f"this run's {world_size} rank(s) must hold whole devices' shares")
    group = batch // devices
    coupled = [t.name for t in terms if t.batch_coupled]
    if coupled and (batch // world_size // accum) % group:
        raise ConfigError(
            f"train.per_gpu_batch={run.train.per_gpu_batch} splits each GPU's batch into {accum} "
            f"micro-batches, but {', '.join(coupled)} contrast pixels across the whole batch of "
            f"a device ({group} images): unset train.per_gpu_batch (or use more GPUs) so the "
            "contrast set is the batch named")
    return group if coupled else None


def set_up(spec: StepSpec | RunConfig, out: str | Path, prev: str | Path | None) -> Step:
    """Models, terms, data and optimiser of the step, on this rank's device."""
    spec = as_spec(spec)
    run, out = spec.run, Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if run.train.threads:
        torch.set_num_threads(run.train.threads)
    seed_everything(run.seed + run.step)
    info, device = ddp.init_distributed(resolve_device(run.train.device))
    precision = ddp.precision_of(run.train, device)
    model, old_model, prev_state = prepare_model(spec, prev)
    model.to(device).train()
    if info.enabled:  # batch statistics over the global batch
        model = ddp.convert_sync_norm(model)
    for m in (model, old_model):
        if m is not None:
            m.to(device, memory_format=precision.memory_format)
    ctx = step_context(spec, model, old_model, device, prev_state)
    terms = build_terms(spec)
    dataset = training_dataset(spec)
    for term in terms:
        dataset = term.training_data(ctx, dataset)
    loader = make_loader(spec, dataset)
    ctx.loader = loader
    ctx.clock.max_iterations = run.optim.epochs_for(len(loader)) * len(loader)
    accum = ddp.accumulation_steps(run.optim.batch_size, info.world_size,
                                   run.train.per_gpu_batch)
    contrast = contrast_group(terms, run, info.world_size, accum)
    o = run.optim
    optimizer = SGD(model.parameters(), lr=o.lr, momentum=o.momentum, nesterov=o.nesterov,
                    weight_decay=o.weight_decay)
    return Step(spec=spec, out=out, info=info, precision=precision, model=model,
                fwd_model=ddp.wrap_model(model, info, device), terms=terms, optimizer=optimizer,
                scaler=precision.grad_scaler(), ctx=ctx, loader=loader,
                train_loader=ddp.shard_loader(loader, info), accum=accum, contrast=contrast)


# ------------------------------------------------------------------------- resumable state


def snapshot(step: Step) -> None:
    """Save the resumable state (rank 0): everything needed to continue bit-identically."""
    if not step.info.is_main:
        return
    save_resume(resume_path(step.out), {
        "model": step.model.state_dict(),
        "optimizer": step.optimizer.state_dict(),
        "scaler": step.scaler.state_dict() if step.scaler else None,
        "terms": {t.name: t.state_dict(full=True) for t in step.terms},
        "progress": {"epoch": step.clock.epoch, "batch": step.clock.batch, **vars(step.state)},
        "iteration": step.clock.iteration,
    }, step.run.to_dict())


def start_or_resume(step: Step) -> None:
    """Restore the state an interrupted attempt saved, or start afresh (terms' before_step)."""
    rpath = resume_path(step.out)
    if not step.info.is_main:
        ddp.barrier(step.info)  # rank 0 reads (and may set aside) the state first
    saved = load_resume(rpath, step.run.to_dict())
    if step.info.is_main:
        ddp.barrier(step.info)
    if saved is None:
        for term in step.terms:
            term.before_step(step.ctx)
        return
    step.model.load_state_dict(saved["model"])
    step.optimizer.load_state_dict(saved["optimizer"])
    if step.scaler is not None and saved.get("scaler"):
        step.scaler.load_state_dict(saved["scaler"])
    for term in step.terms:
        term.load_state_dict(saved["terms"].get(term.name, {}))
    progress = dict(saved["progress"])
    step.clock.epoch, step.clock.batch = progress.pop("epoch"), progress.pop("batch")
    step.state = StepProgress(**progress)
    step.clock.iteration = saved["iteration"]
    log.info("resuming %s step %d at iteration %d/%d from %s", step.run.method, step.run.step,
             step.clock.iteration, step.max_iterations, rpath)


# ------------------------------------------------------------------------- one iteration


def _problem(losses: dict[str, torch.Tensor], step: Step) -> str | None:
    """A message naming the first non-finite loss term, or None."""
    for name, value in losses.items():
        if not torch.isfinite(value):
            r = step.run
            return (f"loss term {name!r} is {value.item()} at step {r.step} of {r.method} "
                    f"({r.dataset} {r.task} {r.setting}), epoch {step.clock.epoch + 1}, "
                    f"iteration {step.clock.iteration}")
    return None


def term_loss(term: Term, batch: Batch, group: int | None) -> torch.Tensor:
    """A term's loss on the batch; a term coupling the images of a batch (contrast sets) is
    computed on each group of ``group`` images and averaged, as data-parallel training
    averages the devices' losses (the forward pass, batch norm included, saw the whole batch,
    as synchronised batch norm does)."""
    n = batch.images.shape[0]
    if not term.batch_coupled or group is None or group >= n:
        return term.loss(batch)
    return torch.stack([term.loss(batch.select(lo, lo + group)) for lo in range(0, n, group)]
                       ).mean()


def forward_backward(step: Step, images: torch.Tensor, labels: torch.Tensor):
    """Weighted loss terms of this rank's batch, backpropagated micro-batch by micro-batch.

    Returns (mean loss per term and "total", None), or (None, a message) when a loss is not
    finite on any rank (every rank then skips the batch together).
    """
    sums: dict[str, float] = {}
    for micro, (ims, lbs) in enumerate(zip(images.chunk(step.accum), labels.chunk(step.accum))):
        with ddp.sync_context(step.fwd_model, micro == step.accum - 1):
            with step.precision.autocast(step.ctx.device):
                out = step.fwd_model(ims)
                old_out = None
                if step.ctx.old_model is not None:
                    with torch.no_grad():
                        old_out = step.ctx.old_model(ims)
                batch = Batch(ims, lbs, out, old_out, step.ctx)
                losses = {t.name: t.weight * term_loss(t, batch, step.contrast)
                          for t in step.terms}
            problem = _problem(losses, step)
            if ddp.any_rank(problem is not None, step.info):
                return None, problem or "a loss is not finite on another rank"
            total = sum(losses.values())
            loss = total / step.accum
            (step.scaler.scale(loss) if step.scaler else loss).backward()
        for name, value in [*losses.items(), ("total", total)]:
            sums[name] = sums.get(name, 0.0) + value.item() / step.accum
    return sums, None


def skip_bad_batch(step: Step, problem: str) -> None:
    """Skip a batch whose loss is not finite, or stop keeping the last good state."""
    max_bad = step.run.train.max_bad_batches
    if step.state.bad_batches >= max_bad:
        snapshot(step)  # the state before this batch: the last good one
        raise NonFiniteLossError(
            f"{problem}; {step.state.bad_batches} bad batches skipped before "
            f"(train.max_bad_batches={max_bad}); last good state kept in {resume_path(step.out)}"
        )
    step.optimizer.zero_grad(set_to_none=True)
    step.state.bad_batches += 1
    log.warning("%s: batch skipped (%d/%d)", problem, step.state.bad_batches, max_bad)


def gradients_overflowed(step: Step) -> bool:
    """Whether any gradient is inf or NaN (after unscaling: an fp16 overflow)."""
    grads = [p.grad for p in step.optimizer.params if p.grad is not None]
    return bool(grads) and not bool(torch.stack([g.isfinite().all() for g in grads]).all())


def optimizer_step(step: Step) -> bool:
    """The parameter update with the terms' hooks around it (they see the true, unscaled
    gradients). Under fp16 loss scaling, an iteration whose gradients overflowed is skipped
    whole, as apex skips the update: no parameter moves and no hook runs (so EWC/PI/RW never
    see non-finite gradients), the scaler lowers its scale; the caller still advances the
    iteration counter and the poly schedule and adds the losses, as the peers' loops do
    (``scheduler.step()`` runs after the skipped ``optim.step()``). Returns False then."""
    if step.scaler is not None:
        step.scaler.unscale_(step.optimizer)
        if gradients_overflowed(step):
            step.scaler.step(step.optimizer)  # finds the inf and skips the update
            step.scaler.update()  # backs the scale off
            step.state.overflows += 1
            log.info("gradients overflowed at iteration %d: update skipped, loss scale now %g",
                     step.clock.iteration, step.scaler.get_scale())
            return False
    for term in step.terms:
        term.after_backward(step.ctx)
    if step.scaler is not None:
        step.scaler.step(step.optimizer)
        step.scaler.update()
    else:
        step.optimizer.step()
    for term in step.terms:
        term.after_optimizer_step(step.ctx)
    return True


def train_iteration(step: Step, images: torch.Tensor, labels: torch.Tensor):
    """One optimiser step on one global batch; its mean losses, or None if it was skipped."""
    device = step.ctx.device
    images, labels = step.precision.images(images.to(device)), labels.to(device)
    o = step.run.optim
    for group in step.optimizer.param_groups:
        group["lr"] = poly_lr(o.lr, step.clock.iteration, step.max_iterations, o.poly_power)
    step.optimizer.zero_grad(set_to_none=True)
    losses, problem = forward_backward(step, images, labels)
    if problem is not None:
        skip_bad_batch(step, problem)
    else:
        optimizer_step(step)
        for name, value in losses.items():
            step.state.sums[name] = step.state.sums.get(name, 0.0) + value
    step.clock.tick()
    step.state.n_images += images.shape[0] * step.info.world_size
    return losses


# ------------------------------------------------------------------------- the loop


def epoch_batches(step: Step) -> Progress:
    """This rank's batches of the current epoch (after the ones already done), with progress."""
    clock, run = step.clock, step.run
    sampler: EpochBatchSampler = step.train_loader.batch_sampler  # type: ignore[assignment]
    sampler.start(clock.epoch, clock.batch)
    return Progress(step.train_loader, desc=f"step {clock.step} epoch {clock.epoch + 1}/"
                    f"{step.epochs}", total=len(step.loader), initial=clock.batch,
                    every_s=run.train.log_every_s, enabled=step.info.is_main)


def end_epoch(step: Step) -> None:
    st, clock = step.state, step.clock
    st.history.append({k: v / max(clock.batch, 1) for k, v in st.sums.items()})
    log.info("epoch %d/%d %s", clock.epoch + 1, step.epochs, st.history[-1])
    st.sums = {}
    clock.end_epoch()


def checkpoint_due(step: Step, flag: SignalFlag, last_save: float) -> tuple[bool, bool]:
    """(save the resumable state now, stop after saving): periodically, and on a signal."""
    stop = ddp.any_rank(flag.received is not None, step.info)  # all ranks stop together
    return stop or time.perf_counter() - last_save > step.run.train.checkpoint_every_s, stop


def train_step(spec: StepSpec | RunConfig, out: str | Path,
               prev: str | Path | None = None) -> dict:
    """Train the step described by ``spec`` (a bare run config: its spec) and write its
    checkpoint to ``out``; return metrics.

    Resumes from ``<out>.resume`` when a previous attempt was interrupted (same run config);
    on SIGTERM/SIGUSR1 saves that state and raises :class:`~ucd.training.resume.Preempted`.
    """
    step = set_up(spec, out, prev)
    start_or_resume(step)
    start = time.perf_counter() - step.state.elapsed
    last_save = time.perf_counter()
    with SignalFlag() as flag:
        while step.clock.epoch < step.epochs:
            batches = epoch_batches(step)
            for images, labels in batches:
                losses = train_iteration(step, images, labels)
                step.state.elapsed = time.perf_counter() - start
                if losses is not None:
                    batches.set(loss=f"{losses['total']:.3f}",
                                img_s=f"{step.state.n_images / max(step.state.elapsed, 1e-9):.1f}")
                save, stop = checkpoint_due(step, flag, last_save)
                if save:
                    snapshot(step)
                    last_save = time.perf_counter()
                if stop:
                    ddp.barrier(step.info)
                    raise Preempted(flag.received or "SIGTERM", resume_path(step.out))
            end_epoch(step)
    return finish(step)


# ------------------------------------------------------------------------- finish


def step_metrics(step: Step) -> dict[str, Any]:
    """What the training itself measured (evaluation adds the IoUs)."""
    st, device = step.state, step.ctx.device
    return {
        "train_time_s": st.elapsed,
        "images_per_s": st.n_images / st.elapsed if st.elapsed > 0 else math.nan,
        "iterations": step.clock.iteration,
        "batch_size": step.run.optim.batch_size,  # what Fig. 11 plots against
        "bad_batches_skipped": st.bad_batches,
        "overflow_skipped": st.overflows,
        "loss_history": st.history,
        "contrast_batch": step.contrast,
        "peak_gpu_mem_mb": (
            torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
        ),
    }


def finish(step: Step) -> dict[str, Any]:
    """Terms' after_step hooks, then (rank 0) the checkpoint; the resumable state is removed."""
    for term in step.terms:
        term.after_step(step.ctx)
    metrics = step_metrics(step)
    method_state = dict(step.ctx.prev_state)
    method_state.update({t.name: t.state_dict() for t in step.terms if t.state_dict()})
    if step.info.is_main:
        save_checkpoint(step.out, {
            "model": step.model.state_dict(),
            "classes": step.model.classifier.classes_per_step,
            "config": step.run.to_dict(),
            "facts": step.spec.facts(),
            "method_state": method_state,
            "metrics": metrics,
        })
        resume_path(step.out).unlink(missing_ok=True)
    ddp.shutdown_distributed()
    return metrics
