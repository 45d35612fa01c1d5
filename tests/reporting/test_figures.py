"""Figures: the plotted data against hand-computed values, PDF+PNG output, qualitative maps."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ucd.reporting.aggregate import collect
from ucd.reporting.figures import plot_curves, plot_figure, save_figure, step_tick_labels
from ucd.reporting.qualitative import colorize, load_predictions, plot_qualitative
from ucd.reporting.tables import Block, get_spec


@pytest.fixture
def digits_results(tmp_path, metrics_writer):
    """digits 5-1 disjoint: mib_ucd (tau 0.07) and mib_ucd-tau1 over 6 steps; Joint;
    digits 5-5 disjoint: mib at batch 24 and 4, mib_ucd at batch 8."""
    root = tmp_path / "results"
    for method, base in (("mib_ucd", 0.8), ("mib_ucd-tau1", 0.6)):
        for k in range(6):
            iou = {c: (base - 0.1 * k if c <= 5 else 0.3) for c in range(6 + k)}
            iou[0] = 0.95
            metrics_writer(root, "digits", "5-1", "disjoint", method, k, iou)
    metrics_writer(root, "digits", "5-1", "disjoint", "joint", 0, {c: 0.9 for c in range(11)})
    for method, value in (("mib", 0.5), ("mib-bs4", 0.4), ("mib_ucd-bs8", 0.45)):
        metrics_writer(root, "digits", "5-5", "disjoint", method, 1, {c: value for c in range(11)})
    return collect(root)


def _lines(ax):
    return {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in ax.get_lines()}


def test_figure10_lines_are_the_step_values(digits_results):
    fig = plot_figure(digits_results, get_spec("figure10", embedded=True))
    lines = _lines(fig.axes[0])
    assert set(lines) == {"τ = 0.07", "τ = 1"}  # the other temperatures were not run
    xs, ys = lines["τ = 0.07"]
    assert xs == [0, 1, 2, 3, 4, 5]
    # step k: old classes 1-5 at 0.8-0.1k, k new classes at 0.3
    expected = [100 * (5 * (0.8 - 0.1 * k) + 0.3 * k) / (5 + k) for k in range(6)]
    assert ys == pytest.approx(expected)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "1-5",
        "6",
        "7",
        "8",
        "9",
        "10",
    ]


def test_figure11_batch_sizes(digits_results):
    fig = plot_figure(digits_results, get_spec("figure11", embedded=True))
    lines = _lines(fig.axes[0])
    assert lines["MiB"] == ([4, 24], pytest.approx([40.0, 50.0]))
    assert lines["MiB+UCD"] == ([8], pytest.approx([45.0]))


def test_figure11_places_a_run_at_the_batch_it_trained_with(tmp_path, metrics_writer):
    """The rehearsal trains the plain row at batch 3, not tables.yaml's default 24: the point
    goes where metrics.json's batch_size says (a summary without it keeps the default)."""
    root = tmp_path / "results"
    iou = dict.fromkeys(range(11), 0.5)
    metrics_writer(root, "digits", "5-5", "disjoint", "mib", 1, iou, batch_size=3)
    metrics_writer(root, "digits", "5-5", "disjoint", "mib-bs4", 1, iou, batch_size=4)
    metrics_writer(root, "digits", "5-5", "disjoint", "mib_ucd", 1, iou)  # no batch recorded
    fig = plot_figure(collect(root), get_spec("figure11", embedded=True))
    lines = _lines(fig.axes[0])
    assert lines["MiB"][0] == [3, 4] and lines["MiB+UCD"][0] == [24]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2", "3", "4", "8", "12",
                                                                      "24"]


def test_curves_three_panels_and_joint_reference(digits_results):
    block = Block("digits", "5-1", "disjoint", ())
    fig = plot_curves(digits_results, block)
    assert len(fig.axes) == 3
    all_panel, _, new_panel = fig.axes
    joint = [ln for ln in all_panel.get_lines() if ln.get_label() == "Joint"]
    assert len(joint) == 1 and joint[0].get_ydata()[0] == pytest.approx(90.0)  # dashed level
    xs, ys = _lines(new_panel)["mib_ucd-tau1"]
    assert xs == [1, 2, 3, 4, 5] and ys == pytest.approx([30.0] * 5)
    assert step_tick_labels(block) == ["1-5", "6", "7", "8", "9", "10"]


def test_save_writes_pdf_and_png(tmp_path, digits_results):
    fig = plot_figure(digits_results, get_spec("figure11", embedded=True))
    paths = save_figure(fig, tmp_path / "figs" / "figure11.png")
    assert [p.name for p in paths] == ["figure11.pdf", "figure11.png"]
    assert paths[0].read_bytes()[:4] == b"%PDF"
    with Image.open(paths[1]) as im:
        assert im.size[0] > 300 and im.size[1] > 200


def test_figure_without_results_still_renders(tmp_path):
    import pandas as pd

    empty = pd.DataFrame(
        columns=["dataset", "task", "setting", "method", "step", "seed", "n_classes_seen"]
    )
    fig = plot_figure(empty, get_spec("figure10"))
    assert "no results yet" in [t.get_text() for t in fig.axes[0].texts]


def test_colorize_by_hand():
    palette = [(0, 0, 0), (255, 0, 0), (0, 0, 255)]
    out = colorize(np.array([[0, 1], [255, 2], [7, 1]], dtype=np.uint8), palette)
    assert out.tolist() == [
        [[0, 0, 0], [255, 0, 0]],
        [[255, 255, 255], [0, 0, 255]],  # 255 = ignore: white
        [[255, 255, 255], [255, 0, 0]],  # unknown index: white
    ]


def _predictions(path, ids, pred_value):
    image = np.zeros((len(ids), 8, 8, 3), dtype=np.uint8)
    label = np.zeros((len(ids), 8, 8), dtype=np.uint8)
    label[:, 2:6, 2:6] = 1
    label[:, 0, :] = 255
    pred = np.full((len(ids), 8, 8), pred_value, dtype=np.uint8)
    np.savez(path, ids=np.array(ids), image=image, label=label, pred=pred)
    return path


def test_qualitative_grid(tmp_path):
    a = _predictions(tmp_path / "a.npz", ["x", "y", "z"], 1)
    b = _predictions(tmp_path / "b.npz", ["z", "y"], 2)
    palette = [(0, 0, 0), (10, 20, 30), (40, 50, 60)]
    fig = plot_qualitative(
        {"MiB": a, "MiB+UCD": b}, palette=palette, class_names=["bg", "one", "two"]
    )
    axes = np.array(fig.axes).reshape(2, 4)  # common ids y, z; image, GT, two methods
    assert [ax.get_title() for ax in axes[0]] == ["Image", "Ground truth", "MiB", "MiB+UCD"]
    assert axes[0][0].get_ylabel() == "y" and axes[1][0].get_ylabel() == "z"
    gt = axes[0][1].get_images()[0].get_array()
    assert tuple(gt[3, 3]) == (10, 20, 30) and tuple(gt[0, 0]) == (255, 255, 255)
    assert tuple(axes[1][3].get_images()[0].get_array()[5, 5]) == (40, 50, 60)
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["bg", "one", "two", "ignore"]
    with pytest.raises(ValueError, match="image id\\(s\\) x not in every predictions file"):
        plot_qualitative({"a": a, "b": b}, palette=palette, class_names=["bg", "1", "2"], ids=["x"])


def test_qualitative_uses_the_dataset_palette(tmp_path):
    from ucd.data.tasks import get_dataset_info

    a = _predictions(tmp_path / "a.npz", ["x"], 1)
    fig = plot_qualitative({"m": a}, dataset="voc")
    pred = fig.axes[2].get_images()[0].get_array()
    assert tuple(pred[0, 0]) == tuple(get_dataset_info("voc").palette[1])


def test_load_predictions_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="predictions file .*none.npz does not exist"):
        load_predictions(tmp_path / "none.npz")
    np.savez(tmp_path / "m.npz", ids=np.array(["a"]), image=np.zeros((1, 4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="missing array\\(s\\) label, pred"):
        load_predictions(tmp_path / "m.npz")
    np.savez(
        tmp_path / "s.npz",
        ids=np.array(["a"]),
        image=np.zeros((1, 4, 4, 3), np.uint8),
        label=np.zeros((1, 4, 5), np.uint8),
        pred=np.zeros((1, 4, 4), np.uint8),
    )
    with pytest.raises(ValueError, match="'label' has shape \\(1, 4, 5\\), expected \\(1, 4, 4\\)"):
        load_predictions(tmp_path / "s.npz")


def _band(ax, color):
    """(x, lower, upper) of the fill_between band drawn in `color`."""
    from matplotlib.colors import to_rgba

    (band,) = [c for c in ax.collections if tuple(c.get_facecolor()[0][:3]) == to_rgba(color)[:3]]
    verts = band.get_paths()[0].vertices
    xs = sorted({float(x) for x, _ in verts})
    lower = [min(y for x, y in verts if x == v) for v in xs]
    upper = [max(y for x, y in verts if x == v) for v in xs]
    return xs, lower, upper


def test_curves_draw_a_band_over_seeds(tmp_path, metrics_writer):
    """digits 5-5 disjoint: MiB over seeds 1-3 (all classes at 60/62/64 % after step 1, 80 %
    at step 0 on every seed); MiB+UCD one seed (no band); Joint over two seeds (70/74 %)."""
    root = tmp_path / "results"
    for seed, v in ((1, 0.60), (2, 0.62), (3, 0.64)):
        metrics_writer(
            root, "digits", "5-5", "disjoint", "mib", 0, dict.fromkeys(range(6), 0.8), seed=seed
        )
        metrics_writer(
            root, "digits", "5-5", "disjoint", "mib", 1, dict.fromkeys(range(11), v), seed=seed
        )
    metrics_writer(root, "digits", "5-5", "disjoint", "mib_ucd", 1, dict.fromkeys(range(11), 0.5))
    for seed, v in ((1, 0.70), (2, 0.74)):
        metrics_writer(
            root, "digits", "5-5", "disjoint", "joint", 0, dict.fromkeys(range(11), v), seed=seed
        )
    df = collect(root)
    fig = plot_curves(df, Block("digits", "5-5", "disjoint", ()), ["mib", "mib_ucd", "joint"])
    ax = fig.axes[0]  # all classes
    (mib,) = [ln for ln in ax.get_lines() if ln.get_label() == "MiB"]
    assert list(mib.get_ydata()) == pytest.approx([80.0, 62.0])
    xs, lower, upper = _band(ax, mib.get_color())
    assert xs == [0.0, 1.0]
    assert lower == pytest.approx([80.0, 60.0]) and upper == pytest.approx([80.0, 64.0])
    (ucd,) = [ln for ln in ax.get_lines() if ln.get_label() == "MiB+UCD"]
    with pytest.raises(ValueError):  # one seed: no band of its colour
        _band(ax, ucd.get_color())
    (joint,) = [ln for ln in ax.get_lines() if ln.get_label() == "Joint"]
    assert joint.get_ydata()[0] == pytest.approx(72.0)
    (span,) = ax.patches  # Joint's band: mean ± std of 70 and 74
    ys = span.get_path().transformed(span.get_patch_transform()).vertices[:, 1]
    assert (min(ys), max(ys)) == pytest.approx((72.0 - 2 * 2**0.5, 72.0 + 2 * 2**0.5))


def test_figure11_band_over_seeds(tmp_path, metrics_writer):
    root = tmp_path / "results"
    for seed, v in ((1, 0.40), (2, 0.44)):
        metrics_writer(
            root, "digits", "5-5", "disjoint", "mib-bs4", 1, dict.fromkeys(range(11), v), seed=seed
        )
    fig = plot_figure(collect(root), get_spec("figure11", embedded=True))
    ax = fig.axes[0]
    (mib,) = ax.get_lines()
    assert list(mib.get_xdata()) == [4] and list(mib.get_ydata()) == pytest.approx([42.0])
    xs, lower, upper = _band(ax, mib.get_color())
    assert xs == [4.0] and lower == pytest.approx([42.0 - 8**0.5]) and upper[0] > 42.0
