"""Evaluate a checkpoint on the validation set: metrics.json and a few predictions.

The checkpoint carries its run config and its step spec's facts, so evaluation needs nothing
else: the model, the classes, the step it scores (Joint: the task's last), and the test
protocol (``eval``): the validation labels' policy for classes not seen yet (``unseen``:
"ignore" = 255, ours and docs/protocol.md's; "background" = 0, PLOP's and the official UCD
code's), which images are scored (``images``: "all", ours; "seen", the images
holding a class seen so far, as every peer's test set) and whether pixels labelled 0 are scored
(``background``: "score"; "ignore", MiB's ADE test loader). Each is recorded in metrics.json.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from ucd.data.step import make_dataset
from ucd.data.tasks import get_dataset_info
from ucd.evaluation.metrics import confusion_matrix, summarize
from ucd.evaluation.records import write_json_atomic  # noqa: F401  (re-exported)
from ucd.facts.config import RunConfig
from ucd.facts.progress import Progress
from ucd.facts.spec import StepSpec
from ucd.models import build_model
from ucd.training.checkpoint import load_checkpoint

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])
TRAIN_METRICS = ("train_time_s", "images_per_s", "peak_gpu_mem_mb", "iterations",
                 "batch_size", "contrast_batch")


def _to_uint8_image(img: torch.Tensor) -> np.ndarray:
    arr = img.permute(1, 2, 0).cpu().numpy() * IMAGENET_STD + IMAGENET_MEAN
    return (arr.clip(0, 1) * 255).round().astype(np.uint8)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Predictions:
    """The images, labels and predictions of a few fixed, evenly spread validation images."""

    def __init__(self, ids: list[str], n: int) -> None:
        self.ids = ids
        self.keep = set(np.linspace(0, len(ids) - 1, n).round().astype(int)) if n else set()
        self.saved: dict[str, list] = {"ids": [], "image": [], "label": [], "pred": []}

    def add(self, start: int, images: torch.Tensor, labels: torch.Tensor,
            pred: torch.Tensor) -> None:
        for i in range(images.shape[0]):
            if start + i in self.keep:
                self.saved["ids"].append(str(self.ids[start + i]))
                self.saved["image"].append(_to_uint8_image(images[i]))
                self.saved["label"].append(labels[i].cpu().numpy().astype(np.uint8))
                self.saved["pred"].append(pred[i].cpu().numpy().astype(np.uint8))

    def arrays(self) -> dict[str, np.ndarray] | None:
        if not self.keep:
            return None
        return {k: np.array(v) if k == "ids" else np.stack(v) for k, v in self.saved.items()}


@torch.no_grad()
def confusion(model: torch.nn.Module, dataset: Any, classes: list[list[int]], n_classes: int,
              device: torch.device, batch_size: int, keep: Predictions) -> torch.Tensor:
    """The confusion matrix of the model over the dataset (255 pixels are not counted)."""
    channel_class = torch.tensor([c for head in classes for c in head], device=device)
    cm = torch.zeros(n_classes, n_classes, dtype=torch.int64, device=device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    index = 0
    for images, labels in Progress(loader, desc="evaluate"):
        images, labels = images.to(device), labels.to(device)
        pred = channel_class[model(images)["logits"].argmax(1)]
        cm += confusion_matrix(pred, labels, n_classes)
        keep.add(index, images, labels, pred)
        index += images.shape[0]
    return cm.cpu()


def unseen_predictions(model: torch.nn.Module, spec: StepSpec, classes: list[list[int]],
                       root: str, device: torch.device, batch_size: int) -> dict[str, Any]:
    """What the model predicts on the validation pixels of classes it has not seen yet: the
    share it calls background and the share it calls a seen class (the background shift that
    the next steps meet). One more pass over the validation set, with every class labelled;
    empty after the last step."""
    run, last = spec.run, spec.n_steps - 1
    if spec.eval_step >= last:
        return {}
    ds = make_dataset(run.dataset, root, run.task, run.setting, last, "val",
                      crop_size=run.data.crop_size, train_augment=False)
    n = get_dataset_info(run.dataset).num_classes
    cm = confusion(model, ds, classes, n, device, batch_size, Predictions(ds.ids, 0))
    rows = cm[[c for c in range(n) if c not in spec.classes_seen]]
    total = int(rows.sum())
    return {"unseen_pixels": total,
            "unseen_as_background": float(rows[:, 0].sum()) / total if total else None,
            "unseen_as_seen_class": float(rows[:, 1:].sum()) / total if total else None}


def replay_source(ckpt: dict[str, Any]) -> str | None:
    """The source of the images a replaying method (RECALL) trained on, from the checkpoint's
    method state (None for methods that do not replay)."""
    for state in (ckpt.get("method_state") or {}).values():
        if isinstance(state, dict) and state.get("replay_source"):
            return str(state["replay_source"])
    return None


def evaluate_checkpoint(
    ckpt_path: str | Path,
    *,
    batch_size: int | None = None,
    device: str = "auto",
    n_predictions: int = 0,
    root: str | None = None,
    unseen: str | None = None,
    images: str | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Metrics of a checkpoint (and, if asked, predictions on a few fixed validation images).

    ``batch_size``, ``unseen`` and ``images`` default to the checkpoint's run config (``eval``
    section).
    """
    ckpt = load_checkpoint(ckpt_path)
    run = RunConfig.from_dict(ckpt["config"], where=f"{ckpt_path}: config")
    spec = StepSpec.from_facts(run, ckpt.get("facts"), where=f"{ckpt_path}: facts")
    unseen, images = unseen or run.eval.unseen, images or run.eval.images
    dev = _device(device)
    model = build_model(run.model, ckpt["classes"], pretrained=False)
    model.load_state_dict(ckpt["model"])
    model.to(dev).eval()
    ds = make_dataset(run.dataset, root or run.data.root, run.task, run.setting, spec.eval_step,
                      "val",
                      crop_size=run.data.crop_size, train_augment=False, unseen=unseen,
                      images=images, background=run.eval.background)
    keep = Predictions(ds.ids, n_predictions)
    start = time.perf_counter()
    cm = confusion(model, ds, ckpt["classes"], get_dataset_info(run.dataset).num_classes, dev,
                   batch_size or run.eval.batch_size, keep)
    old, new = (list(c) for c in spec.columns)
    ident = {key: getattr(run, key) for key in
             ("dataset", "task", "setting", "method", "base_method", "step", "seed")}
    metrics: dict[str, Any] = {
        **ident,
        "unseen": unseen,
        "images": images,
        "background": run.eval.background,
        "classes_seen": sorted(c for head in ckpt["classes"] for c in head),
        "base_classes": old,
        "new_classes": new,
        **summarize(cm, base_classes=old, new_classes=new),
        "confusion_matrix": cm.tolist(),
        "eval_time_s": time.perf_counter() - start,
        "n_val_images": len(ds),
        **unseen_predictions(model, spec, ckpt["classes"], root or run.data.root, dev,
                             batch_size or run.eval.batch_size),
        **{key: ckpt["metrics"].get(key) for key in TRAIN_METRICS},
        "replay_source": replay_source(ckpt),
    }
    return metrics, keep.arrays()
