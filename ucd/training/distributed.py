"""Distributed data-parallel training: process group, sharded batches, accumulation, precision.

Launched by ``torchrun`` (it sets RANK / WORLD_SIZE / LOCAL_RANK), every rank draws the same
global batch from :class:`~ucd.training.resume.EpochBatchSampler` and keeps its own contiguous
slice, so the data order (and resuming) does not depend on the number of GPUs. ``optim.batch_size``
is the GLOBAL batch: ``batch_size = world_size * per_gpu_batch * accumulation_steps``. Batch norm is
synchronised across ranks (In-Place ABN Sync, or the pure-PyTorch synchronised fallback).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler

from ucd.models import abn

log = logging.getLogger("ucd.training.distributed")



@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: rank, number of ranks, local GPU index."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info_from_env(env: dict[str, str] | None = None) -> DistInfo:
    """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK (single process when unset)."""
    env = os.environ if env is None else env
    try:
        world = int(env.get("WORLD_SIZE", "1"))
        rank = int(env.get("RANK", "0"))
        local = int(env.get("LOCAL_RANK", str(rank)))
    except ValueError as err:
        raise ValueError(f"RANK/WORLD_SIZE/LOCAL_RANK must be integers: {err}") from err
    if world < 1 or not 0 <= rank < world:
        raise ValueError(f"invalid distributed environment: RANK={rank}, WORLD_SIZE={world}")
    return DistInfo(rank, world, local)


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (NCCL on GPU, gloo on CPU).

    Returns this rank's info and its device (``cuda:LOCAL_RANK`` for GPU jobs).
    """
    info = dist_info_from_env()
    if not info.enabled:
        return info, device
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() != info.world_size:
        raise RuntimeError(
            f"process group has {dist.get_world_size()} ranks but WORLD_SIZE={info.world_size}"
        )
    return info, device


def shutdown_distributed() -> None:
    """Leave the process group (no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in a single process)."""
    if info.enabled:
        dist.barrier()


def any_rank(flag: bool, info: DistInfo) -> bool:
    """True when ``flag`` is true on at least one rank, so every rank takes the same branch."""
    if not info.enabled:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def accumulation_steps(global_batch: int, world_size: int, per_gpu_batch: int | None) -> int:
    """Micro-batches per optimiser step so that world * per_gpu * steps == the global batch."""
    if global_batch % world_size:
        raise ValueError(
            f"optim.batch_size={global_batch} (the global batch) is not divisible by the "
            f"{world_size} ranks"
        )
    per_rank = global_batch // world_size
    if per_gpu_batch is None:
        return 1
    if isinstance(per_gpu_batch, bool) or not isinstance(per_gpu_batch, int) or per_gpu_batch < 1:
        raise ValueError(f"train.per_gpu_batch must be a positive integer, got {per_gpu_batch!r}")
    if per_rank % per_gpu_batch:
        raise ValueError(
            f"train.per_gpu_batch={per_gpu_batch} does not divide the {per_rank} images per rank "
            f"(optim.batch_size={global_batch} over {world_size} ranks)"
        )
    return per_rank // per_gpu_batch


class ShardedBatchSampler(Sampler[list[tuple[int, int]]]):
    """This rank's contiguous slice of every global batch of an EpochBatchSampler."""

    def __init__(self, sampler: Any, rank: int, world_size: int) -> None:
        if sampler.batch_size % world_size:
            raise ValueError(
                f"global batch {sampler.batch_size} is not divisible by {world_size} ranks"
            )
        self.sampler, self.rank, self.world_size = sampler, rank, world_size
        self.per_rank = sampler.batch_size // world_size

    def start(self, epoch: int, skip: int = 0) -> None:
        self.sampler.start(epoch, skip)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        lo = self.rank * self.per_rank
        for batch in self.sampler:
            yield batch[lo : lo + self.per_rank]


def shard_loader(loader: DataLoader, info: DistInfo) -> DataLoader:
    """The same loader yielding only this rank's slice of each global batch."""
    if not info.enabled:
        return loader
    return DataLoader(
        loader.dataset,
        batch_sampler=ShardedBatchSampler(loader.batch_sampler, info.rank, info.world_size),
        num_workers=loader.num_workers,
    )


def convert_sync_norm(module: nn.Module) -> nn.Module:
    """Replace every activated batch norm by its synchronised twin (weights and stats kept)."""
    if isinstance(module, abn.ActivatedBatchNorm) and not isinstance(
        module, abn.SyncActivatedBatchNorm
    ):
        new: nn.Module = abn.SyncActivatedBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            activation=module.activation,
            activation_param=module.activation_param,
        )
    elif (
        abn.HAVE_INPLACE_ABN
        and isinstance(module, abn._InPlaceABN)
        and not isinstance(module, abn._InPlaceABNSync)
    ):  # pragma: no cover - needs the compiled extension
        new = abn._InPlaceABNSync(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            activation=module.activation,
            activation_param=module.activation_param,
        )
    else:
        for name, child in module.named_children():
            setattr(module, name, convert_sync_norm(child))
        return module
    new.load_state_dict(module.state_dict())
    new.train(module.training)
    p = next(module.parameters(), None)
    return new.to(p.device) if p is not None else new


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """The module to call for training forwards: DDP around ``model`` when distributed.

    ``model`` itself stays the unwrapped module (state dicts, terms, classifier growth).
    """
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def sync_context(ddp_model: nn.Module, last_micro_batch: bool):
    """Skip DDP's gradient all-reduce on all but the last micro-batch of an accumulation."""
    if last_micro_batch or not isinstance(ddp_model, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return ddp_model.no_sync()


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: fp32), loss scaling (fp16) and memory format for the device."""

    dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def autocast(self, device: torch.device):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16 needs its loss scaled so small gradients do not underflow (as apex O1)."""
        return torch.amp.GradScaler("cuda") if self.dtype == torch.float16 else None

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)


AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_of(train: Any, device: torch.device) -> Precision:
    """``train.amp`` (none | bf16 | fp16) and ``train.channels_last``: GPU only, ignored (with
    a log line) on the CPU."""
    if train.amp not in AMP_DTYPES:
        raise ValueError(f"train.amp must be one of {list(AMP_DTYPES)}, got {train.amp!r}")
    if device.type != "cuda":
        if train.amp != "none" or train.channels_last:
            log.info("train.amp/channels_last are GPU options: ignored on %s", device.type)
        return Precision()
    return Precision(AMP_DTYPES[train.amp], train.channels_last)
