"""collect() on hand-made metrics.json files and the cell values computed from it."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ucd.reporting.aggregate import (
    cell_stats,
    cell_value,
    collect,
    read_summary,
    seed_stats,
    seed_values,
    step_stats,
    step_values,
)
from ucd.reporting.tables import Block

STEP0 = {0: 0.9, 1: 0.8, 2: 0.6, 3: 0.7, 4: None, 5: 0.5}
STEP1 = {0: 0.9, 1: 0.4, 2: 0.2, 3: 0.3, 4: None, 5: 0.1, 6: 0.6, 7: 0.5, 8: 0.4, 9: 0.3, 10: 0.2}
B55 = Block("digits", "5-5", "disjoint", ("old", "new", "all"))


@pytest.fixture
def results(tmp_path, metrics_writer):
    root = tmp_path / "results"
    metrics_writer(
        root,
        "digits",
        "5-5",
        "disjoint",
        "mib",
        0,
        STEP0,
        train_time_s=600.0,
        peak_gpu_mem_mb=4096.0,
    )
    metrics_writer(
        root,
        "digits",
        "5-5",
        "disjoint",
        "mib",
        1,
        STEP1,
        train_time_s=120.0,
        peak_gpu_mem_mb=2048.0,
    )
    metrics_writer(root, "digits", "5-5", "disjoint", "mib_ucd", 0, STEP0)  # step 1 not run
    metrics_writer(root, "digits", "5-5", "disjoint", "joint", 0, {**STEP1, 1: 0.9})
    # the shared step-0 model and other files are not runs of their own
    metrics_writer(root, "digits", "5-5", "disjoint", "_shared", 0, STEP0)
    (root / "data" / "digits").mkdir(parents=True)
    (root / "data" / "digits" / "metrics.json").write_text("{}")
    return root


def test_collect_tidy_table(results, tmp_path):
    out = tmp_path / "summary.csv"
    df = collect(results, out=out)
    assert len(df) == 4
    assert list(df[["method", "step"]].itertuples(index=False, name=None)) == [
        ("joint", 0),
        ("mib", 0),
        ("mib", 1),
        ("mib_ucd", 0),
    ]
    mib1 = df[(df.method == "mib") & (df.step == 1)].iloc[0]
    assert mib1["dataset"] == "digits" and mib1["task"] == "5-5" and mib1["seed"] == 42
    assert mib1["iou_6"] == pytest.approx(0.6)
    assert math.isnan(mib1["iou_4"])  # null: no ground truth, kept as missing
    assert mib1["n_classes_seen"] == 11
    assert mib1["train_time_s"] == 120.0 and mib1["peak_gpu_mem_mb"] == 2048.0
    assert mib1["base_method"] == "mib" and math.isnan(mib1["eval_time_s"])
    assert [c for c in df.columns if c.startswith("iou_")] == [f"iou_{c}" for c in range(11)]
    back = read_summary(out)
    assert back["task"].tolist() == df["task"].tolist()  # "5-5" stays a string
    pd.testing.assert_frame_equal(back, df, check_dtype=False)


def test_cells_after_the_last_step(results):
    df = collect(results)
    # classes 1..5 without background, class 4 has no IoU: (0.4+0.2+0.3+0.1)/4
    assert cell_value(df, B55, "mib", "old") == pytest.approx(25.0)
    assert cell_value(df, B55, "mib", "new") == pytest.approx(40.0)  # (.6+.5+.4+.3+.2)/5
    assert cell_value(df, B55, "mib", "all") == pytest.approx(100 * 3.0 / 9)
    # Table 7: incremental steps only (step 0 is shared by the variants)
    assert cell_value(df, B55, "mib", "memory") == pytest.approx(2.0)  # GB
    assert cell_value(df, B55, "mib", "time") == pytest.approx(2.0)  # minutes
    # a run whose last step is missing is a missing cell, not the step-0 number
    assert math.isnan(cell_value(df, B55, "mib_ucd", "old"))
    assert math.isnan(cell_value(df, B55, "nosuch", "all"))
    # Joint: one step with every class
    assert cell_value(df, B55, "joint", "old") == pytest.approx(100 * (0.9 + 0.2 + 0.3 + 0.1) / 4)


def test_step_groups_and_curves(tmp_path, metrics_writer):
    root = tmp_path / "r"
    iou = {0: 0.9, 1: 0.5, 2: 0.5, 3: 0.5, 4: 0.5, 5: 0.5}
    metrics_writer(root, "digits", "5-1", "overlapped", "ucd", 0, iou)
    for k in range(1, 6):
        iou = {**{c: v / 2 for c, v in iou.items()}, 5 + k: 0.1 * k}
        metrics_writer(root, "digits", "5-1", "overlapped", "ucd", k, iou)
    df = collect(root)
    b = Block("digits", "5-1", "overlapped", ())
    # after the last step: class 7 learned at step 2 halved three times: 0.2 / 8
    assert cell_value(df, b, "ucd", "step2") == pytest.approx(100 * 0.2 / 8)
    assert cell_value(df, b, "ucd", "step5") == pytest.approx(50.0)
    curve = step_values(df, b, "ucd", "all")
    assert [s for s, _ in curve] == [0, 1, 2, 3, 4, 5]
    assert curve[0][1] == pytest.approx(50.0)
    assert curve[1][1] == pytest.approx(100 * (5 * 0.25 + 0.1) / 6)
    new = step_values(df, b, "ucd", "new")
    assert math.isnan(new[0][1]) and new[1][1] == pytest.approx(10.0)


def test_seeds_are_averaged(results):
    df = collect(results)
    other = df.copy()
    other["seed"] = 43
    other[[f"iou_{c}" for c in range(1, 6)]] = 0.75
    both = pd.concat([df, other], ignore_index=True)
    # seed 42: 25.0, seed 43: 75.0
    assert cell_value(both, B55, "mib", "old") == pytest.approx(50.0)


def test_errors_name_the_problem(tmp_path, metrics_writer):
    with pytest.raises(FileNotFoundError, match="results directory .*nothere does not exist"):
        collect(tmp_path / "nothere")
    root = tmp_path / "r"
    p = metrics_writer(root, "voc", "15-5", "disjoint", "mib", 0, {0: 1.0})
    p.write_text('{"classes_seen": [0]}')
    with pytest.raises(ValueError, match=r"step0/metrics.json: missing key\(s\) iou"):
        collect(root)
    p.write_text("{not json")
    with pytest.raises(ValueError, match="metrics.json: not valid JSON"):
        collect(root)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a summary, missing column"):
        read_summary(bad)
    with pytest.raises(FileNotFoundError, match="run `ucd report collect` first"):
        read_summary(tmp_path / "none.csv")


def test_empty_results_give_an_empty_summary(tmp_path):
    (tmp_path / "results").mkdir()
    df = collect(tmp_path / "results", out=tmp_path / "s.csv")
    assert df.empty and (tmp_path / "s.csv").is_file()


# ----------------------------------------------------------------- seeds


def test_seed_stats_by_hand():
    st = seed_stats([60.0, 62.0, 64.0])
    assert (st.mean, st.std, st.n) == (pytest.approx(62.0), pytest.approx(2.0), 3)
    one = seed_stats([55.0, math.nan])  # a seed without a value is left out
    assert one.mean == 55.0 and math.isnan(one.std) and one.n == 1
    none = seed_stats([])
    assert math.isnan(none.mean) and none.n == 0


@pytest.fixture
def seeded(tmp_path, metrics_writer):
    """digits 5-5 disjoint, MiB with seeds 1-3 (old classes 60/62/64 %, new 30 %), MiB+UCD
    with seed 1 only; the step 0 of each seed shared (old classes 80 %)."""
    root = tmp_path / "results"
    for seed, old in ((1, 0.60), (2, 0.62), (3, 0.64)):
        for method in ("mib", "mib_ucd"):
            if method == "mib_ucd" and seed > 1:
                continue
            step0 = {0: 0.9, **{c: 0.8 for c in range(1, 6)}}
            metrics_writer(root, "digits", "5-5", "disjoint", method, 0, step0, seed=seed)
            step1 = {0: 0.9, **{c: old for c in range(1, 6)}, **{c: 0.3 for c in range(6, 11)}}
            metrics_writer(root, "digits", "5-5", "disjoint", method, 1, step1, seed=seed)
    return root


def test_one_summary_row_per_seed_and_step(seeded):
    df = collect(seeded)
    keys = list(df[["method", "seed", "step"]].itertuples(index=False, name=None))
    assert keys == [
        ("mib", 1, 0),
        ("mib", 1, 1),
        ("mib", 2, 0),
        ("mib", 2, 1),
        ("mib", 3, 0),
        ("mib", 3, 1),
        ("mib_ucd", 1, 0),
        ("mib_ucd", 1, 1),
    ]


def test_cells_over_seeds(seeded):
    df = collect(seeded)
    old = cell_stats(df, B55, "mib", "old")
    assert (old.mean, old.std, old.n) == (pytest.approx(62.0), pytest.approx(2.0), 3)
    assert seed_values(df, B55, "mib", "old").to_dict() == pytest.approx(
        {1: 60.0, 2: 62.0, 3: 64.0}
    )
    assert seed_values(df, B55, "mib", "old", step=0).to_dict() == pytest.approx(
        {1: 80.0, 2: 80.0, 3: 80.0}
    )
    single = cell_stats(df, B55, "mib_ucd", "old")
    assert single.mean == pytest.approx(60.0) and single.n == 1 and math.isnan(single.std)
    (step0, at0), (step1, at1) = step_stats(df, B55, "mib", "old")
    assert (step0, at0.mean, at0.std) == (0, pytest.approx(80.0), pytest.approx(0.0))
    assert (step1, at1.mean, at1.std, at1.n) == (1, pytest.approx(62.0), pytest.approx(2.0), 3)
    # time: seconds of the incremental step, per seed, in minutes
    time = cell_stats(df, B55, "mib", "time")
    assert (time.mean, time.n) == (pytest.approx(1.0), 3)


def test_a_seed_that_disagrees_with_its_path_is_refused(tmp_path, metrics_writer):
    root = tmp_path / "r"
    path = metrics_writer(root, "digits", "5-5", "disjoint", "mib", 1, {0: 1.0}, seed=43)
    path.write_text(path.read_text().replace('"seed": 43', '"seed": 7'))
    with pytest.raises(ValueError, match=r"seed43/step1/metrics.json: the file says seed 7"):
        collect(root)


def test_shared_trainings_and_old_paths_are_left_out(tmp_path, metrics_writer):
    root = tmp_path / "r"
    metrics_writer(root, "digits", "5-5", "disjoint", "mib", 0, {0: 1.0}, seed=3)
    shared = root / "digits" / "_shared" / "base" / "seed3" / "step0"
    shared.mkdir(parents=True)
    (shared / "metrics.json").write_text("{}")  # would fail to read if collected
    old = root / "digits" / "5-5" / "disjoint" / "ft" / "step0"
    old.mkdir(parents=True)
    (old / "metrics.json").write_text("{}")
    with pytest.warns(UserWarning, match="1 metrics file.*without seed.*ft/step0/metrics.json"):
        df = collect(root)
    assert df[["method", "seed"]].values.tolist() == [["mib", 3]]
    bad = root / "digits" / "5-5" / "disjoint" / "ucd" / "seedX" / "step0"
    bad.mkdir(parents=True)
    (bad / "metrics.json").write_text('{"iou": {}, "classes_seen": []}')
    with pytest.raises(ValueError, match=r"expected .*/seed\{seed\}/step\{k\}/metrics.json"):
        with pytest.warns(UserWarning):
            collect(root)
