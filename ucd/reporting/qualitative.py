"""Qualitative maps like the paper's Figs. 6-9: image, ground truth and the
predictions of several methods, coloured with the dataset's palette, from the
predictions.npz files written by `ucd evaluate --predictions`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

IGNORE_COLOR = (255, 255, 255)
NPZ_KEYS = ("ids", "image", "label", "pred")


def load_predictions(path: str | Path) -> dict[str, np.ndarray]:
    """Read one predictions.npz and check its arrays (ids, image, label, pred)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"predictions file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in NPZ_KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {', '.join(missing)}")
        data = {k: z[k] for k in NPZ_KEYS}
    n = len(data["ids"])
    if data["image"].ndim != 4 or data["image"].shape[-1] != 3:
        raise ValueError(f"{path}: 'image' must be (N,H,W,3), got {data['image'].shape}")
    for k in ("label", "pred"):
        if data[k].shape != data["image"].shape[:3] or len(data[k]) != n:
            raise ValueError(
                f"{path}: '{k}' has shape {data[k].shape}, expected {data['image'].shape[:3]}"
            )
    data["ids"] = np.array([str(i) for i in data["ids"]])
    return data


def colorize(mask: np.ndarray, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """(H,W) class indices -> (H,W,3) uint8; ignore (255) and unknown indices white."""
    lut = np.tile(np.array(IGNORE_COLOR, dtype=np.uint8), (256, 1))
    lut[: len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
    lut[255] = IGNORE_COLOR
    return lut[np.asarray(mask, dtype=np.uint8)]


def _palette_and_names(dataset: str | None, palette, class_names):
    if palette is None or class_names is None:
        if dataset is None:
            raise ValueError("give a dataset name or a palette and class names")
        from ucd.data.tasks import get_dataset_info

        info = get_dataset_info(dataset)
        palette = info.palette if palette is None else palette
        class_names = info.class_names if class_names is None else class_names
    return list(palette), list(class_names)


def _common_ids(loaded: dict[str, dict], ids: list[str] | None, max_images: int) -> list[str]:
    """The images every predictions file holds (first file's order), or the ones asked for."""
    first = next(iter(loaded.values()))
    common = [i for i in first["ids"] if all(i in d["ids"] for d in loaded.values())]
    if ids is not None:
        unknown = [i for i in ids if i not in common]
        if unknown:
            raise ValueError(f"image id(s) {', '.join(unknown)} not in every predictions file")
        common = list(ids)
    common = common[:max_images]
    if not common:
        raise ValueError("the predictions files share no image id")
    return common


def _row_of(d: dict, image_id: str) -> int:
    return int(np.flatnonzero(d["ids"] == image_id)[0])


def _draw_row(axes: list, image_id: str, loaded: dict[str, dict], palette: list,
              first_row: bool) -> set[int]:
    """Image, ground truth and one prediction per method in one row; the classes drawn."""
    first = next(iter(loaded.values()))
    k = _row_of(first, image_id)
    label = first["label"][k]
    panels = [("Image", first["image"][k]), ("Ground truth", colorize(label, palette))]
    present = set(np.unique(label).tolist())
    for name, d in loaded.items():
        pred = d["pred"][_row_of(d, image_id)]
        present |= set(np.unique(pred).tolist())
        panels.append((name, colorize(pred, palette)))
    for ax, (head, img) in zip(axes, panels):
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if first_row:
            ax.set_title(head, fontsize=9)
    axes[0].set_ylabel(image_id, fontsize=7)
    return present


def _legend(fig: plt.Figure, present: set[int], palette: list, class_names: list[str]) -> int:
    """A legend of the classes drawn below the panels; the number of legend rows."""
    legend = [
        Patch(facecolor=np.asarray(palette[c]) / 255.0, edgecolor="gray", label=class_names[c])
        for c in sorted(present)
        if c < len(class_names)
    ]
    if 255 in present:
        legend.append(Patch(facecolor="white", edgecolor="gray", label="ignore"))
    fig.legend(handles=legend, loc="lower center", ncol=min(len(legend), 6), fontsize=7,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    return -(-len(legend) // 6)


def plot_qualitative(
    predictions: dict[str, str | Path | dict],
    *,
    dataset: str | None = None,
    palette: list[tuple[int, int, int]] | None = None,
    class_names: list[str] | None = None,
    ids: list[str] | None = None,
    max_images: int = 4,
    title: str | None = None,
) -> plt.Figure:
    """Rows = images (common to every method, first file's order), columns = image, ground
    truth, one prediction per method (dict label -> predictions.npz or its loaded arrays)."""
    if not predictions:
        raise ValueError("no predictions given")
    palette, class_names = _palette_and_names(dataset, palette, class_names)
    loaded = {
        name: p if isinstance(p, dict) else load_predictions(p) for name, p in predictions.items()
    }
    common = _common_ids(loaded, ids, max_images)
    n_cols = 2 + len(loaded)
    fig, axes = plt.subplots(
        len(common), n_cols, figsize=(2.0 * n_cols, 2.0 * len(common) + 0.6), squeeze=False
    )
    present: set[int] = set()
    for r, image_id in enumerate(common):
        present |= _draw_row(list(axes[r]), image_id, loaded, palette, r == 0)
    legend_rows = _legend(fig, present, palette, class_names)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.05) / fig.get_figheight(), 1, 1))
    return fig
