"""Figures with matplotlib (Agg): Fig. 10 (mIoU after every step per temperature),
Fig. 11 (mIoU against batch size) and per-step curves of any benchmark. Lines are means
over seeds, with a mean ± std band where a point has several seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ucd.reporting.aggregate import Stats, cell_stats, final_rows, step_stats  # noqa: E402
from ucd.reporting.tables import (  # noqa: E402
    Block,
    FigureSpec,
    class_range_label,
    display_name,
    settings,
    task_steps,
)

METRIC_NAMES = {"all": "mIoU, all classes", "old": "mIoU, old classes", "new": "mIoU, new classes"}
MARKERS = "osD^v<>pP*Xh"


def save_figure(fig: plt.Figure, out: str | Path) -> list[Path]:
    """Write `out` as PDF and PNG (same stem); returns both paths."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [out.with_suffix(".pdf"), out.with_suffix(".png")]
    for p in paths:
        fig.savefig(p, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def stamp(fig: plt.Figure, note: str | None) -> plt.Figure:
    """The figure with `note` written under it in red (a rehearsal's notice); as is if None."""
    if note:
        fig.text(0.5, 0.0, note, ha="center", va="top", color="#b00000", fontsize=8, wrap=True)
    return fig


def benchmark_title(block: Block) -> str:
    """e.g. "VOC 15-1 disjoint"."""
    name = settings()["datasets"].get(block.dataset, block.dataset)
    return f"{name} {block.task} {block.setting}"


def step_tick_labels(block: Block) -> list[str]:
    """Classes learned at each step ("1-15", "16", ...), derived from the task."""
    steps = task_steps(block.dataset, block.task)
    return [class_range_label([c for c in s if c != 0]) for s in steps]


def _color(idx: int, n: int) -> tuple:
    """A stable colour per line: tab10, or tab20 beyond 10 lines."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return cmap(idx % cmap.N)


def _no_data(ax: plt.Axes) -> None:
    ax.text(
        0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes, color="gray"
    )


def _style_axes(ax: plt.Axes, ylabel: str) -> None:
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)


def plot_steps(
    df: pd.DataFrame,
    block: Block,
    methods: list[tuple[str, str]],
    *,
    metrics: tuple[str, ...] = ("all",),
    title: str | None = None,
) -> plt.Figure:
    """One panel per metric: the metric after every step, one line per (method, label).
    Single-step runs (Joint) are drawn as a dashed horizontal reference line."""
    n_steps = len(task_steps(block.dataset, block.task))
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(4.2 * len(metrics) + 0.8, 3.6), squeeze=False
    )
    any_data = False
    for ax, metric in zip(axes[0], metrics):
        for idx, (method, label) in enumerate(methods):
            if n_steps > 1 and _is_single_step(df, block, method):
                any_data |= _plot_level(ax, cell_stats(df, block, method, metric), label)
                continue
            points = [(s, st) for s, st in step_stats(df, block, method, metric) if st.n > 0]
            if not points:
                continue
            any_data = True
            _plot_line(ax, points, idx, len(methods), label)
        ax.set_xticks(range(n_steps), step_tick_labels(block), rotation=45 if n_steps > 6 else 0)
        ax.set_xlim(-0.3, n_steps - 0.7)
        ax.set_xlabel("classes learned at the step")
        _style_axes(ax, METRIC_NAMES.get(metric, metric) + " (%)")
        if not any_data:
            _no_data(ax)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(title or benchmark_title(block))
    fig.tight_layout()
    return fig


def _is_single_step(df: pd.DataFrame, block: Block, method: str) -> bool:
    sel = (
        (df["dataset"] == block.dataset)
        & (df["task"] == block.task)
        & (df["setting"] == block.setting)
        & (df["method"] == method)
        & (df["step"] == 0)
    )
    n_all = len({c for s in task_steps(block.dataset, block.task) for c in s})
    return bool((df.loc[sel, "n_classes_seen"] == n_all).any())


def _plot_level(ax, st: Stats, label: str) -> bool:
    """A single-step run (Joint) as a dashed level, with its band; False when not run."""
    if st.n == 0:
        return False
    ax.axhline(st.mean, ls="--", color="gray", lw=1, label=label)
    if st.n >= 2:
        ax.axhspan(st.mean - st.std, st.mean + st.std, color="gray", alpha=0.15, lw=0)
    return True


def _plot_line(ax, points: list[tuple[float, Stats]], idx: int, n: int, label: str) -> None:
    """One method's mean line, in the marker and colour that method keeps in every figure,
    and a mean ± std band over the points that have several seeds."""
    xs = [x for x, _ in points]
    means = np.array([st.mean for _, st in points])
    color = _color(idx, n)
    ax.plot(xs, means, marker=MARKERS[idx % len(MARKERS)], ms=5, lw=1.6, label=label, color=color)
    stds = np.array([st.std if st.n >= 2 else np.nan for _, st in points])
    if not np.isnan(stds).all():
        ax.fill_between(xs, means - stds, means + stds, color=color, alpha=0.2, lw=0)


def trained_batch(df: pd.DataFrame, block: Block, method: str) -> int | None:
    """The batch size a run's last step trained with (metrics.json `batch_size`), if its seeds
    agree on one; None for a summary without it. The plain row of Fig. 11 is placed there, not
    at tables.yaml's default_batch_size, when a config changed the batch (the rehearsal: 3)."""
    if "batch_size" not in df.columns:
        return None
    values = final_rows(df, block, method)["batch_size"].dropna().unique()
    return int(values[0]) if len(values) == 1 else None


def plot_batch_size(df: pd.DataFrame, spec: FigureSpec) -> plt.Figure:
    """The metric after the last step against the batch size, one line per method (Fig. 11)."""
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    any_data, ticks = False, set(spec.batch_sizes)
    for idx, row in enumerate(spec.rows):
        points = []
        for b in spec.batch_sizes:
            variant = row.method if b == spec.default_batch_size else f"{row.method}-bs{b}"
            st = cell_stats(df, spec.block, variant, spec.metric)
            if st.n > 0:
                points.append((trained_batch(df, spec.block, variant) or b, st))
        if points:
            any_data = True
            _plot_line(ax, sorted(points, key=lambda p: p[0]), idx, len(spec.rows), row.name)
            ticks.update(b for b, _ in points)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(ticks), [str(b) for b in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel("batch size")
    _style_axes(ax, METRIC_NAMES.get(spec.metric, spec.metric) + " (%)")
    if any_data:
        ax.legend(frameon=False)
    else:
        _no_data(ax)
    ax.set_title(benchmark_title(spec.block))
    fig.tight_layout()
    return fig


def plot_figure(df: pd.DataFrame, spec: FigureSpec) -> plt.Figure:
    """Fig. 10 / Fig. 11 from their tables.yaml entries."""
    if spec.kind == "batch_size":
        return plot_batch_size(df, spec)
    return plot_steps(
        df, spec.block, [(r.method, r.name) for r in spec.rows], metrics=(spec.metric,)
    )


def plot_curves(df: pd.DataFrame, block: Block, methods: list[str] | None = None) -> plt.Figure:
    """mIoU all/old/new after each step of one benchmark, one line per method (default:
    every method run on it)."""
    if methods is None:
        sel = (
            (df["dataset"] == block.dataset)
            & (df["task"] == block.task)
            & (df["setting"] == block.setting)
        )
        methods = sorted(df.loc[sel, "method"].unique())
    pairs = [(m, display_name(m)) for m in methods]
    return plot_steps(df, block, pairs, metrics=("all", "old", "new"))
