"""Evaluate a checkpoint on the full validation set and write ``metrics.json``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ucd.checkpoint import load_checkpoint
from ucd.config import RunConfig
from ucd.evaluation.records import write_json_atomic  # noqa: F401  (re-exported)
from ucd.data.step import make_dataset
from ucd.data.tasks import get_dataset_info, get_task
from ucd.evaluation.metrics import confusion_matrix, summarize
from ucd.methods import get_method
from ucd.models import build_model

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def _to_uint8_image(img: torch.Tensor) -> np.ndarray:
    arr = img.permute(1, 2, 0).cpu().numpy() * IMAGENET_STD + IMAGENET_MEAN
    return (arr.clip(0, 1) * 255).round().astype(np.uint8)


def evaluate_checkpoint(
    ckpt_path: str | Path,
    *,
    batch_size: int = 8,
    device: str = "auto",
    n_predictions: int = 0,
    root: str | None = None,
    unseen: str = "ignore",
) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """Metrics of a checkpoint (and, if asked, predictions on a few fixed validation images).

    unseen: validation labels of classes not yet seen, "ignore" (255, ours) or "background"
    (0, PLOP's and the official UCD code's); recorded in the metrics.
    """
    ckpt = load_checkpoint(ckpt_path)
    run = RunConfig.from_dict(ckpt["config"], where=f"{ckpt_path}: config")
    task = get_task(run.dataset, run.task)
    info = get_dataset_info(run.dataset)
    dev = torch.device(
        "cuda"
        if device == "auto" and torch.cuda.is_available()
        else ("cpu" if device == "auto" else device)
    )
    model = build_model(run.model, ckpt["classes"], pretrained=False)
    model.load_state_dict(ckpt["model"])
    model.to(dev).eval()
    joint = get_method(run.base_method).joint
    k = task.n_steps - 1 if joint else run.step
    ds = make_dataset(
        run.dataset,
        root or run.data.root,
        run.task,
        run.setting,
        k,
        "val",
        crop_size=run.data.crop_size,
        train_augment=False,
        unseen=unseen,
    )
    channel_class = torch.tensor([c for head in ckpt["classes"] for c in head], device=dev)
    n = info.num_classes
    cm = torch.zeros(n, n, dtype=torch.int64, device=dev)
    keep = (
        set(np.linspace(0, len(ds) - 1, n_predictions).round().astype(int))
        if n_predictions
        else set()
    )
    saved: dict[str, list] = {"ids": [], "image": [], "label": [], "pred": []}
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=0)
    start = time.perf_counter()
    index = 0
    with torch.no_grad():
        for images, labels in tqdm(loader, desc="evaluate", mininterval=2.0):
            images, labels = images.to(dev), labels.to(dev)
            pred = channel_class[model(images)["logits"].argmax(1)]
            cm += confusion_matrix(pred, labels, n)
            for i in range(images.shape[0]):
                if index + i in keep:
                    saved["ids"].append(str(getattr(ds, "ids", range(len(ds)))[index + i]))
                    saved["image"].append(_to_uint8_image(images[i]))
                    saved["label"].append(labels[i].cpu().numpy().astype(np.uint8))
                    saved["pred"].append(pred[i].cpu().numpy().astype(np.uint8))
            index += images.shape[0]
    base = task.base_classes
    added = [c for c in task.classes_seen(k) if c not in task.steps[0]]
    metrics: dict[str, Any] = {
        "dataset": run.dataset,
        "task": run.task,
        "setting": run.setting,
        "method": run.method,
        "base_method": run.base_method,
        "step": run.step,
        "seed": run.seed,
        "unseen": unseen,
        "classes_seen": sorted(c for head in ckpt["classes"] for c in head),
        "base_classes": base,
        "new_classes": added,
        **summarize(cm.cpu(), base_classes=base, new_classes=added),
        "confusion_matrix": cm.cpu().tolist(),
        "eval_time_s": time.perf_counter() - start,
        "n_val_images": len(ds),
        **{
            k_: ckpt["metrics"].get(k_)
            for k_ in ("train_time_s", "images_per_s", "peak_gpu_mem_mb")
        },
    }
    preds = (
        {k_: np.stack(v) if k_ != "ids" else np.array(v) for k_, v in saved.items()}
        if keep
        else None
    )
    return metrics, preds
