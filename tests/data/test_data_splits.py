"""Split files: disjoint/overlapped selection (hand-computed), hash checks, atomic save."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ucd.data.splits as splits
from ucd.data.splits import SplitMismatchError, compute_split, load_split, save_split

# VOC fixture (conftest.VOC_TRAIN): a {1}, b {1,16}, c {17}, d {}, e {3,255}, f {15,20,255},
# g {16,18}. Selections worked out by hand from docs/protocol.md.
EXPECTED = {
    ("15-5", "disjoint"): [["a", "e"], ["b", "c", "f", "g"]],
    ("15-5", "overlapped"): [["a", "b", "e", "f"], ["b", "c", "f", "g"]],
    ("15-1", "disjoint"): [["a", "e"], ["b"], ["c"], ["g"], [], ["f"]],
    ("15-1", "overlapped"): [["a", "b", "e", "f"], ["b", "g"], ["c"], ["g"], [], ["f"]],
    ("19-1", "disjoint"): [["a", "b", "c", "e", "g"], ["f"]],
    ("19-1", "overlapped"): [["a", "b", "c", "e", "f", "g"], ["f"]],
}


@pytest.mark.parametrize(("task", "setting"), sorted(EXPECTED))
def test_selection_hand_computed(voc_root: Path, task: str, setting: str) -> None:
    s = compute_split("voc", voc_root, task, setting, workers=1, progress=False)
    assert s["ids"] == EXPECTED[task, setting]
    assert s["counts"] == [len(x) for x in EXPECTED[task, setting]]
    assert s["image_classes"]["f"] == [0, 15, 20, 255]
    assert s["inputs"]["n_files"] == 7


def test_disjoint_steps_never_share_images(voc_root: Path) -> None:
    s = compute_split("voc", voc_root, "15-1", "disjoint", workers=1, progress=False)
    flat = [i for ids in s["ids"] for i in ids]
    assert len(flat) == len(set(flat))


def test_parallel_equals_serial(digits_root: Path) -> None:
    a = compute_split("digits", digits_root, "5-1", "overlapped", workers=1, progress=False)
    b = compute_split("digits", digits_root, "5-1", "overlapped", workers=2, progress=False)
    assert a == b


def test_save_load_roundtrip_and_verify(voc_root: Path, tmp_path: Path) -> None:
    s = compute_split("voc", voc_root, "15-5", "disjoint", workers=1, progress=False)
    path = tmp_path / "sub" / "disjoint.json"
    save_split(s, path)
    assert [p.name for p in path.parent.iterdir()] == ["disjoint.json"]  # no temp file left
    assert load_split(path) == s
    assert load_split(path, root=voc_root) == s
    assert load_split(path, root=voc_root, verify="full") == s


def _saved(voc_root: Path, tmp_path: Path) -> Path:
    path = tmp_path / "split.json"
    save_split(compute_split("voc", voc_root, "15-5", "disjoint", workers=1, progress=False), path)
    return path


def test_changed_label_size_is_detected(voc_root: Path, tmp_path: Path, builders) -> None:
    path = _saved(voc_root, tmp_path)
    lab = builders.label_with([1, 17])
    lab[5:, 2:6] = 16
    builders.gray_png(voc_root / "VOCdevkit/VOC2012/SegmentationClassAug/a.png", lab)
    with pytest.raises(SplitMismatchError) as e:
        load_split(path, root=voc_root)
    msg = str(e.value)
    assert "does not match the labels" in msg and "SegmentationClassAug/a.png: size" in msg
    assert "never recomputed automatically" in msg and "ucd data split voc 15-5 disjoint" in msg
    load_split(path, root=voc_root, verify=False)  # explicit opt-out


def test_same_size_change_fast_samples_full_rehashes(
    voc_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _saved(voc_root, tmp_path)
    monkeypatch.setattr(splits, "FAST_SAMPLE", 2)  # 7 files: fast re-hashes files 0, 3, 6
    target = voc_root / "VOCdevkit/VOC2012/SegmentationClassAug/b.png"  # file 1
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    load_split(path, root=voc_root)  # same size, not sampled: the fast check passes
    with pytest.raises(SplitMismatchError, match=r"b.png: content changed"):
        load_split(path, root=voc_root, verify="full")
    sampled = voc_root / "VOCdevkit/VOC2012/SegmentationClassAug/a.png"  # file 0
    data = bytearray(sampled.read_bytes())
    data[-1] ^= 0xFF
    sampled.write_bytes(bytes(data))
    with pytest.raises(SplitMismatchError, match=r"a.png: content changed"):
        load_split(path, root=voc_root)


def test_added_and_removed_files_are_detected(voc_root: Path, tmp_path: Path) -> None:
    path = _saved(voc_root, tmp_path)
    lst = voc_root / "VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt"
    lst.write_text("a\nb\nc\nd\ne\nf\n")
    with pytest.raises(SplitMismatchError, match=r"1 differences: .*g.png: missing"):
        load_split(path, root=voc_root)
    lst.write_text("a\nb\nc\nd\ne\nf\ng\nv1\n")
    (voc_root / "VOCdevkit/VOC2012/SegmentationClassAug/v1.png").write_bytes(b"x")
    with pytest.raises(SplitMismatchError, match=r"v1.png: new file"):
        load_split(path, root=voc_root)


def test_edited_split_file_is_detected(voc_root: Path, tmp_path: Path) -> None:
    path = _saved(voc_root, tmp_path)
    d = json.loads(path.read_text())
    d["ids"][0].append("c")
    path.write_text(json.dumps(d))
    with pytest.raises(SplitMismatchError, match=r"was modified or corrupted"):
        load_split(path)


def test_bad_split_files(tmp_path: Path, voc_root: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"does not exist; create it with .*ucd data split"):
        load_split(tmp_path / "none.json")
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(SplitMismatchError, match=r"is not valid JSON"):
        load_split(p)
    p.write_text('{"a": 1}')
    with pytest.raises(SplitMismatchError, match=r"is not a ucd-split/1 split file"):
        load_split(p)
    good = _saved(voc_root, tmp_path)
    with pytest.raises(ValueError, match=r"verify must be True, False, 'fast' or 'full'"):
        load_split(good, root=voc_root, verify="quick")


def test_compute_split_validates_arguments(voc_root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown setting 'both'"):
        compute_split("voc", voc_root, "15-5", "both", progress=False)
    with pytest.raises(ValueError, match=r"unknown task '15-2'"):
        compute_split("voc", voc_root, "15-2", "disjoint", progress=False)


def test_split_verifies_from_any_accepted_root(voc_root: Path, tmp_path: Path) -> None:
    path = _saved(voc_root, tmp_path)
    assert load_split(path, root=voc_root / "VOCdevkit" / "VOC2012")["task"] == "15-5"
    moved = tmp_path / "moved"
    voc_root.rename(moved)
    load_split(path, root=moved, verify="full")


def test_rgb_label_stops_split_computation(voc_root: Path) -> None:
    from PIL import Image

    p = voc_root / "VOCdevkit/VOC2012/SegmentationClassAug/c.png"
    Image.open(p).convert("RGB").save(p)
    with pytest.raises(ValueError, match=r"c.png' has image mode RGB; expected P or L"):
        compute_split("voc", voc_root, "15-5", "disjoint", workers=1, progress=False)
