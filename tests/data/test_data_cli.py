"""`ucd tasks` and `ucd data {generate,split,check}` through ucd.data.cli.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ucd.data.cli import main
from ucd.data.splits import load_split


def test_tasks_prints_steps_as_json(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "voc", "15-1"]) == 0
    assert json.loads(capsys.readouterr().out) == [list(range(16)), [16], [17], [18], [19], [20]]
    assert main(["tasks", "ade", "100-10"]) == 0
    steps = json.loads(capsys.readouterr().out)
    assert [s[0] for s in steps] == [0, 101, 111, 121, 131, 141] and steps[-1][-1] == 150
    assert main(["tasks", "digits"]) == 0
    names = {"digits/5-5", "digits/5-1", "digits/8-2", "digits/6-4"}
    assert set(json.loads(capsys.readouterr().out)) == names


def test_tasks_unknown(capsys: pytest.CaptureFixture) -> None:
    assert main(["tasks", "voc", "15-7"]) == 2
    assert "unknown task '15-7' for dataset 'voc'; valid tasks:" in capsys.readouterr().err


def test_generate_split_check(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "digits"
    args = f"data generate digits --root {root} --seed 1 --n-train 40 --n-val 10 --quiet"
    assert main(args.split()) == 0
    assert "wrote digits (40 train, 10 val images)" in capsys.readouterr().out
    out = tmp_path / "splits" / "overlapped.json"
    args = f"digits 8-2 overlapped --root {root} --out {out} --workers 1 --quiet"
    assert main(["data", "split", *args.split()]) == 0
    split = load_split(out, root=root)
    assert f"training images per step {split['counts']}" in capsys.readouterr().out
    assert main(f"data check digits 8-2 overlapped --root {root} --split {out}".split()) == 0
    text = capsys.readouterr().out
    assert "digits 8-2 overlapped: 40 training label files, 10 validation images" in text
    assert "step 1: classes [9, 10] [eight, nine]" in text
    assert f"training images: {split['counts'][1]}" in text
    # without --split the split is computed on the fly: same counts
    args = f"data check digits 8-2 overlapped --root {root} --quiet --workers 1"
    assert main(args.split()) == 0
    assert capsys.readouterr().out == text
    # a split file of another setting is refused
    assert main(f"data check digits 8-2 disjoint --root {root} --split {out}".split()) == 2
    assert "is for digits/8-2/overlapped, not digits/8-2/disjoint" in capsys.readouterr().err


def test_check_shows_published_counts(voc_root: Path, capsys: pytest.CaptureFixture) -> None:
    args = f"data check voc 15-5 disjoint --root {voc_root} --quiet --workers 1"
    assert main(args.split()) == 0
    text = capsys.readouterr().out
    assert "training images: 2 (published: 8437, DIFFERS)" in text
    assert "training images: 4 (published: 2145, DIFFERS)" in text


def test_check_notes_settings_outside_the_paper(tmp_path: Path, builders, capsys) -> None:
    import numpy as np

    lab = np.array([[7, 26]], np.uint8)  # road (1) and car (14)
    builders.cityscapes(tmp_path, {"a/a_0_1": lab}, {"b/b_0_1": lab})
    args = f"data check cityscapes 13-6 disjoint --root {tmp_path} --quiet --workers 1"
    assert main(args.split()) == 0
    text = capsys.readouterr().out
    assert "note: the paper reports cityscapes in overlapped only" in text
    assert "training images: 0 (published: 1516, DIFFERS)" in text
    assert "training images: 1 (published: 1459, DIFFERS)" in text


def test_missing_root_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(f"data check ade 100-50 overlapped --root {tmp_path / 'x'}".split()) == 2
    err = capsys.readouterr().err
    assert "ucd data: error: ade data not found" in err and "does not exist" in err


def test_bad_setting_is_rejected_by_the_parser(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["data", "split", "voc", "15-5", "mixed", "--out", "x.json"])
    assert "invalid choice: 'mixed'" in capsys.readouterr().err


def test_generate_writes_a_fixture_of_a_real_layout(tmp_path: Path, capsys) -> None:
    """`ucd data generate cityscapes` (the workflow's generate_data rule in the rehearsal)
    writes the fixture and says it is one; digits' size options are refused for it."""
    root = tmp_path / "cs"
    assert main(["data", "generate", "cityscapes", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "FIXTURE of cityscapes" in out and "63 train, 7 val images" in out
    assert (root / "fixture.json").is_file() and (root / "leftImg8bit" / "train").is_dir()
    assert main(["data", "generate", "voc", "--root", str(tmp_path / "v"), "--n-train", "5"]) == 2
    assert "--n-train applies to digits only" in capsys.readouterr().err


def test_fixtures_module_writes_the_named_datasets(tmp_path: Path, capsys) -> None:
    from ucd.data import fixtures

    assert fixtures.main(["--out", str(tmp_path), "--datasets", "ade"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ade"]
    with pytest.raises(SystemExit):
        fixtures.main(["--out", str(tmp_path), "--datasets", "ade,kitti"])
    assert "no fixture for kitti" in capsys.readouterr().err
