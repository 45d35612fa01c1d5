"""``ucd cost`` end to end on a tiny digits grid (a real Snakemake dry run), against a hand
count of jobs x iterations x seconds per iteration."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml

pytest.importorskip("snakemake")

from ucd.cli import build_parser, main  # noqa: E402
from ucd.cost.cli import collect  # noqa: E402
from ucd.cost.report import render  # noqa: E402
from ucd.data.splits import FORMAT, save_split  # noqa: E402

# Merged over config.yaml; the model and crop are named here so the measured figures' key
# (resnet18/os8/w24/h64, crop 64) does not follow config.yaml's default.
TINY = {
    "seeds": [42],
    "datasets": {"digits": {"optim": {"epochs": 2, "batch_size": 16, "min_iterations": 0},
                            "model": {"width": 24, "head_channels": 64, "pretrained": None},
                            "data": {"crop_size": 64},
                            "incremental": {"optim": {"epochs": 1}}}},
    "grid": [{"benchmarks": ["digits/5-5/disjoint"], "methods": ["ft", "mib_ucd", "joint"]}],
    "report": {"tables": ["table1"], "curves": False, "qualitative": False},
    "resources": {"train": {"gpus": 1}},
}
PLAIN_S, UCD_S, EVAL_S = 0.5, 2.0, 0.01  # measured s/iteration, stated s/validation image


def _times(kind: str, seconds: float) -> dict:
    return {"kind": kind, "model": "resnet18/os8/w24/h64", "crop": 64, "images_per_gpu": 16,
            "gpus": 1, "s_per_iter": seconds, "device": "test card"}


@pytest.fixture(scope="module")
def found(tmp_path_factory):
    here = tmp_path_factory.mktemp("cost")
    (here / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    split = {"format": FORMAT, "dataset": "digits", "task": "5-5", "setting": "disjoint",
             "steps": [], "counts": [100, 40], "ids": [], "image_classes": {},
             "inputs": {"n_files": 0, "hash": "", "files": []}}
    save_split(split, here / "results/splits/digits/5-5/disjoint.json")
    (here / "results/step_times.json").write_text(json.dumps(
        {"format": "ucd-step-times/1", "entries": [_times("plain", PLAIN_S),
                                                   _times("ucd", UCD_S)]}))
    before = os.getcwd()
    os.chdir(here)
    try:
        args = build_parser().parse_args(["cost", "tiny.yaml", "--eval-s-per-image", str(EVAL_S)])
        yield collect(args)
    finally:
        os.chdir(before)


def _by_rule(found, rule):
    return [c for c in found.costs if c.job.rule == rule]


def _units(found, rule, what):
    return sorted(c.part(what).units for c in _by_rule(found, rule))


def test_iterations_per_rule_match_a_hand_count(found):
    # step 0 shared by ft and mib_ucd: 2 epochs x floor(100/16); Joint: 2 x floor(2000/16)
    # (digits' published training set: no data here); step 1: 1 epoch x floor(40/16) each
    assert _units(found, "train_shared", "train") == [2 * 6, 2 * 125]
    assert _units(found, "train", "train") == [1 * 2, 1 * 2]
    # every training job evaluates its checkpoint: digits' published validation set
    assert _units(found, "train_shared", "eval") == _units(found, "train", "eval") == [300] * 2
    assert not any(c.parts for c in found.costs if c.job.rule not in ("train", "train_shared"))


def test_seconds_are_iterations_times_the_measured_figure(found):
    trains = sorted(c.part("train").seconds for c in _by_rule(found, "train"))
    assert trains == [2 * PLAIN_S, 2 * UCD_S]  # ft, mib_ucd at step 1
    total = sum(c.seconds for c in found.costs)
    expected = (12 + 250) * PLAIN_S + 2 * PLAIN_S + 2 * UCD_S + 4 * 300 * EVAL_S
    assert total == pytest.approx(expected)
    assert all("test card" in c.part("train").figure.source for c in _by_rule(found, "train"))


def test_critical_path_is_the_joint_training(found):
    seconds, path = found.dag.critical_path([c.seconds for c in found.costs])
    assert seconds == pytest.approx(250 * PLAIN_S + 300 * EVAL_S)
    named = [found.costs[i].job for i in path if found.costs[i].seconds]
    assert [j.rule for j in named] == ["train_shared"]
    assert named[0].wildcards["group"].startswith("joint-")


def test_report_names_sources_tables_and_the_whole_grid(found):
    text = render(found.costs, found.dag, found.header, gpu_mem=None)
    assert "--forceall" in text and "table1" in text
    hours = (264 * PLAIN_S + 2 * UCD_S + 1200 * EVAL_S) / 3600
    assert f"Total: {hours:.3g} GPU-h for 4 jobs that train or evaluate" in text
    assert re.search(r"digits/5-5/disjoint +0:100s 1:40s\n", text)
    assert re.search(r"digits \(Joint: all images, one step\) +0:2000p\n", text)


def test_a_missing_config_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["cost", "nope.yaml"]) == 2
    assert "nope.yaml does not exist" in capsys.readouterr().err
