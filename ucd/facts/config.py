"""The typed run config: everything one training step needs, validated once.

A :class:`RunConfig` is resolved from the workflow config by :mod:`ucd.planning.resolve`; the
training rule passes it to ``ucd train --run-json`` as one line of JSON, read back with
:meth:`RunConfig.from_dict` (which refuses unknown keys and bad values, naming them). The job writes
it beside the checkpoint as ``run.yaml`` (for people and ``ucd train --run``) and carries it inside
every checkpoint.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the valid values."""


def _opt(default: Any, kind: str, *, choices: tuple = (), low: float | None = None,
         strict_low: bool = False, high: float | None = None, doc: str = "",
         layered: bool = True) -> Any:
    """A config field: its kind (int, float, bool, str, with '?' = may be null; 'ints?' = a
    list of integers or null), the values it accepts and what it means (``doc``). The JSON
    schema of the workflow config is generated from these (``ucd.workflow.schema``);
    ``layered=False``: no layer sets it (the workflow fills it in, e.g. ``data.root``)."""
    meta = {"kind": kind, "choices": choices, "low": low, "strict_low": strict_low, "high": high,
            "doc": doc, "layered": layered}
    return field(default=default, metadata=meta)


def closest(name: str, valid: list[str]) -> str:
    """' (did you mean ...?)' naming the closest valid name, or an empty string."""
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
    close = close or [v for v in valid if name and (name in v or v in name)][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_number(value: Any, meta: dict, where: str, integer: bool) -> int | float:
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok:
        raise ConfigError(f"{where} must be {'an integer' if integer else 'a number'}, "
                          f"got {value!r}")
    low, high = meta["low"], meta["high"]
    if low is not None and (value < low or (meta["strict_low"] and value == low)):
        raise ConfigError(f"{where} must be {'>' if meta['strict_low'] else '>='} {low}, "
                          f"got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{where} must be <= {high}, got {value!r}")
    return value if integer else float(value)


def _check_value(value: Any, meta: dict, where: str) -> Any:
    """The value of one field, checked against its kind and range (ints become floats for
    float fields, lists of ints become tuples)."""
    kind = meta["kind"]
    if kind.endswith("?"):
        if value is None:
            return None
        kind = kind[:-1]
    if meta["choices"] and value not in meta["choices"]:
        raise ConfigError(f"{where} must be one of {list(meta['choices'])}, got {value!r}")
    if kind in ("int", "float"):
        return _check_number(value, meta, where, integer=kind == "int")
    if kind == "bool" and not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    if kind == "ints":
        if not isinstance(value, list | tuple) or not value:
            raise ConfigError(f"{where} must be a non-empty list of integers, got {value!r}")
        return tuple(_check_number(v, meta, f"{where}[{i}]", True) for i, v in enumerate(value))
    return value


def build_section(cls: type, data: Any, where: str) -> Any:
    """A section dataclass from a mapping: unknown keys and bad values are ConfigErrors."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    valid = [f.name for f in fields(cls)]
    for key in data:
        if key not in valid:
            raise ConfigError(f"{where} has no key {key!r}{closest(str(key), valid)}; "
                              f"valid keys: {', '.join(valid)}")
    kwargs = {}
    for f in fields(cls):
        if f.name in data:
            kwargs[f.name] = _check_value(data[f.name], f.metadata, f"{where}.{f.name}")
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(f"{where}.{f.name} is required")
    return cls(**kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """DeepLab-V3 on a ResNet (paper 4.2)."""

    backbone: str = _opt("resnet101", "str", choices=("resnet18", "resnet50", "resnet101"))
    output_stride: int = _opt(16, "int", choices=(8, 16))
    width: int = _opt(64, "int", low=1,
                      doc="channels of the ResNet stem (64: the real ResNet)")
    head_channels: int = _opt(256, "int", low=1,
                              doc="ASPP output channels (the features UCD contrasts)")
    aspp_rates: tuple[int, ...] | None = _opt(
        None, "ints?", low=1,
        doc="ASPP dilation rates (null: DeepLab-V3's, sized for a 512-px crop)")
    norm: str = _opt("auto", "str", choices=("auto", "iabn", "abn"),
                     doc="activated batch norm: In-Place ABN (iabn), its pure-PyTorch twin "
                         "(abn) or auto: iabn where installed, else abn")
    pretrained: str | None = _opt(None, "str?", doc="ImageNet weights of the backbone")


@dataclass(frozen=True)
class OptimConfig:
    """SGD with Nesterov momentum and a poly schedule; ``batch_size`` is the global batch."""

    lr: float = _opt(0.01, "float", low=0, strict_low=True, doc="learning rate")
    momentum: float = _opt(0.9, "float", low=0, high=1)
    nesterov: bool = _opt(True, "bool")
    weight_decay: float = _opt(1e-4, "float", low=0)
    poly_power: float = _opt(0.9, "float", low=0)
    epochs: int = _opt(30, "int", low=1)
    batch_size: int = _opt(24, "int", low=1, doc="the global batch")
    min_iterations: int = _opt(
        0, "int", low=0,
        doc="a floor on a step's optimiser steps (whole epochs are added until it is "
            "reached), so that a step with few images still learns; 0: none (the paper)")

    def epochs_for(self, batches_per_epoch: int) -> int:
        """Epochs a step trains with this many global batches per epoch: ``epochs``, or more
        where ``min_iterations`` asks for more optimiser steps."""
        return max(self.epochs, -(-self.min_iterations // max(batches_per_epoch, 1)))


@dataclass(frozen=True)
class DataConfig:
    """Where the step's images come from and how they are cropped."""

    root: str = _opt("", "str", layered=False, doc="the dataset's root (datasets.<d>.root)")
    split: str | None = _opt(None, "str?",
                             doc="split file (image ids per step; null: the results path's)")
    replay: str | None = _opt(
        None, "str?", doc="replay set of a step (methods that replay; null: the results path's)")
    crop_size: int = _opt(512, "int", low=16)
    flip: bool = _opt(True, "bool",
                      doc="random horizontal flip of training images (the paper: true; a "
                          "benchmark whose classes are not mirror-symmetric turns it off)")
    num_workers: int = _opt(4, "int", low=0)


@dataclass(frozen=True)
class TrainConfig:
    """How the step runs: device, precision, resumable state, progress."""

    device: str = _opt("auto", "str")
    amp: str = _opt("none", "str", choices=("none", "bf16", "fp16"),
                    doc="mixed precision on GPUs (fp16 with loss scaling)")
    channels_last: bool = _opt(False, "bool", doc="channels_last memory format on GPUs")
    per_gpu_batch: int | None = _opt(None, "int?", low=1,
                                     doc="micro-batch per rank (gradient accumulation)")
    # Batch norm always sees the whole batch (synchronised across ranks, as InPlaceABNSync).
    devices: int | None = _opt(
        None, "int?", low=1,
        doc="data-parallel devices of the setup reproduced (the peers: 2 GPUs x 12 images; "
            "null: this run's ranks): contrast sets are each device's share of the batch")
    checkpoint_every_s: float = _opt(600.0, "float", low=0, doc="resumable-state period")
    max_bad_batches: int = _opt(0, "int", low=0,
                                doc="non-finite batches skipped before the job fails")
    threads: int | None = _opt(None, "int?", low=1,
                               doc="torch CPU threads per job (null: torch's choice)")
    log_every_s: float = _opt(10.0, "float", low=0,
                              doc="progress line period in log files (not on a terminal)")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation after the step on the validation set: which images, which labels."""

    unseen: str = _opt("ignore", "str", choices=("ignore", "background"),
                       doc="test labels of classes not yet learned")
    images: str = _opt("all", "str", choices=("all", "seen"),
                       doc="validation images scored: all (ours) or seen, those holding a "
                           "class seen so far, background aside (MiB's, PLOP's, SDR's and "
                           "the official UCD code's test sets)")
    background: str = _opt("score", "str", choices=("score", "ignore"),
                           doc="test pixels labelled 0: scored (ours) or ignored, 0 -> 255 "
                               "(MiB's ADE test loader)")
    batch_size: int = _opt(8, "int", low=1)
    predictions: int = _opt(4, "int", low=0, doc="images kept for the qualitative maps")


@dataclass(frozen=True)
class LabelsConfig:
    """Training-label policy: when 255 (ignore) becomes background (MiB's data loader)."""

    ignore_to_background: str = _opt(
        "never", "str", choices=("never", "incremental", "always"),
        doc="when 255 (ignore) becomes background in training labels (MiB's loader: always)")


SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "optim": OptimConfig,
    "data": DataConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "labels": LabelsConfig,
}
IDENTITY = ("dataset", "task", "setting", "method", "base_method", "step", "seed")


@dataclass(frozen=True)
class RunConfig:
    """One training step, resolved: identity, sections, and the method's term parameters."""

    dataset: str
    task: str
    setting: str
    method: str  # the path name: a method of methods.yaml or a variant `<method>-<name>`
    base_method: str  # the methods.yaml entry
    step: int
    seed: int
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    labels: LabelsConfig = field(default_factory=LabelsConfig)
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "run config") -> RunConfig:
        """Validate a run config mapping (``--run-json``, a run.yaml, a checkpoint's); unknown
        keys, missing identity and bad values raise."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
        valid = [*IDENTITY, *SECTIONS, "params"]
        for key in data:
            if key not in valid:
                raise ConfigError(f"{where} has no key {key!r}{closest(str(key), valid)}; "
                                  f"valid keys: {', '.join(valid)}")
        missing = [k for k in IDENTITY if k not in data]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
        for key in ("step", "seed"):
            _check_number(data[key], {"low": 0, "high": None, "strict_low": False},
                          f"{where}.{key}", integer=True)
        params = data.get("params") or {}
        if not isinstance(params, Mapping) or not all(
            isinstance(p, Mapping) for p in params.values()
        ):
            raise ConfigError(f"{where}.params must map term names to parameter mappings")
        sections = {
            name: build_section(sec, data.get(name) or {}, f"{where}.{name}")
            for name, sec in SECTIONS.items()
        }
        ident = {k: data[k] for k in IDENTITY}
        run = cls(**ident, **sections, params={t: dict(p) for t, p in params.items()})
        run.check()
        return run

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, not tuples) for YAML, checkpoints and hashing."""
        return json.loads(json.dumps(asdict(self)))

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some top-level fields or whole sections replaced."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data.update(changes)
        return RunConfig(**data)

    def check(self) -> None:
        """Cross-field checks that no single field can make."""
        if self.setting not in ("disjoint", "overlapped"):
            raise ConfigError(f"setting must be 'disjoint' or 'overlapped', got {self.setting!r}")
        if self.step < 0 or self.seed < 0:
            raise ConfigError(f"step and seed must be >= 0, got {self.step}, {self.seed}")
        if self.train.devices and self.optim.batch_size % self.train.devices:
            raise ConfigError(
                f"train.devices={self.train.devices} does not split optim.batch_size="
                f"{self.optim.batch_size} evenly: each device holds the same number of images")
        if self.eval.background == "ignore" and self.eval.unseen == "background":
            raise ConfigError(
                "eval.background: ignore drops the pixels labelled 0 from scoring, so unseen "
                "classes cannot be scored as background (eval.unseen: background); use "
                "eval.unseen: ignore with it (as MiB's ADE loader: both become 255)")

    @property
    def ignore_to_background(self) -> bool:
        """Whether 255 becomes background in this step's training labels."""
        policy = self.labels.ignore_to_background
        return policy == "always" or (policy == "incremental" and self.step > 0)


def config_hash(run: RunConfig | Mapping[str, Any]) -> str:
    """A stable short hash of a run config (or any JSON-able mapping)."""
    data = run.to_dict() if isinstance(run, RunConfig) else run
    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def deep_merge(base: Mapping, override: Mapping | None) -> dict:
    """Merge ``override`` into a copy of ``base`` recursively (mappings merge, values replace)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file with a clear error when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err


def load_run(path: str | Path) -> RunConfig:
    """Read and validate a run.yaml (``ucd train --run``)."""
    return RunConfig.from_dict(load_yaml(path), where=str(path))


def write_yaml_atomic(data: Any, path: str | Path) -> None:
    """Write YAML through a temporary file and a rename, so readers never see half a file."""
    if isinstance(data, RunConfig):
        data = data.to_dict()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(data, sort_keys=False))
    tmp.replace(path)
