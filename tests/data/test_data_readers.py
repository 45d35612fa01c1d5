"""Readers of the real on-disk layouts: VOC(+SBD), ADE20K, Cityscapes; their error messages."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.data.conftest import PROTOCOL_ORDER
from ucd.data.base import DatasetLayoutError, get_reader


def test_voc_reads_ids_and_labels(voc_root: Path) -> None:
    r = get_reader("voc", voc_root)
    train = r.samples("train")
    assert [s.id for s in train] == ["a", "b", "c", "d", "e", "f", "g"]
    assert train[0].label.parent.name == "SegmentationClassAug"
    lab = r.read_label(train[5].label)  # f: rows 15, 20, 255
    assert lab.dtype == np.uint8 and lab.shape == (8, 8)
    assert lab[1, 0] == 15 and lab[2, 0] == 20 and lab[3, 0] == 255 and lab[0, 0] == 0
    val = r.samples("val")
    assert [s.id for s in val] == ["v1", "v2"]
    assert val[0].label.parent.name == "SegmentationClass"  # palette PNG: indices, not colours
    assert Image.open(val[0].label).mode == "P"
    np.testing.assert_array_equal(np.unique(r.read_label(val[0].label)), [0, 1, 16, 255])
    assert r.read_image(val[0].image).mode == "RGB"


@pytest.mark.parametrize("sub", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_voc_root_variants(voc_root: Path, sub: str) -> None:
    assert len(get_reader("voc", voc_root / sub).samples("train")) == 7


def test_voc_list_variants(tmp_path: Path, builders) -> None:
    """DeepLab-style pair lines in list/train_aug.txt; labels only in SegmentationClass."""
    lab = builders.label_with([3])
    base = builders.voc(
        tmp_path, {"x1": lab, "x2": lab}, {"y": lab}, sub="VOC2012", aug=False, pairs=True
    )
    (base / "list").mkdir()
    (base / "list" / "train_aug.txt").write_text(
        "/JPEGImages/x2.jpg /SegmentationClassAug/x2.png\n\n/JPEGImages/x1.jpg /Seg/x1.png\n"
    )
    (base / "ImageSets" / "Segmentation" / "train_aug.txt").unlink()
    r = get_reader("voc", tmp_path)
    assert [s.id for s in r.samples("train")] == ["x2", "x1"]
    assert r.samples("train")[0].label == base / "SegmentationClass" / "x2.png"


def test_voc_missing_root(tmp_path: Path) -> None:
    with pytest.raises(DatasetLayoutError) as e:
        get_reader("voc", tmp_path / "nope")
    msg = str(e.value)
    assert "VOCdevkit/VOC2012/JPEGImages" in msg and "does not exist" in msg
    assert "host.robots.ox.ac.uk" in msg and "SBD" in msg


def test_voc_wrong_layout_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(DatasetLayoutError, match=r"contains: images, readme.txt"):
        get_reader("voc", tmp_path)


def test_voc_missing_list(voc_root: Path) -> None:
    (voc_root / "VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt").unlink()
    r = get_reader("voc", voc_root)
    with pytest.raises(DatasetLayoutError, match=r"train list train_aug.txt or trainaug.txt"):
        r.samples("train")
    assert len(r.samples("val")) == 2


def test_voc_missing_label_dirs(voc_root: Path) -> None:
    base = voc_root / "VOCdevkit/VOC2012"
    shutil.rmtree(base / "SegmentationClassAug")
    shutil.rmtree(base / "SegmentationClass")
    with pytest.raises(
        DatasetLayoutError, match=r"expected a label directory .*SegmentationClassAug"
    ):
        get_reader("voc", voc_root).samples("train")


def test_voc_missing_files(voc_root: Path) -> None:
    base = voc_root / "VOCdevkit/VOC2012"
    (base / "JPEGImages" / "c.jpg").unlink()
    (base / "SegmentationClassAug" / "e.png").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"2 of 7 ids .* have no file: c \(image\), e \(label\)"
    ):
        get_reader("voc", voc_root).samples("train")


def test_voc_empty_list(voc_root: Path) -> None:
    (voc_root / "VOCdevkit/VOC2012/ImageSets/Segmentation/val.txt").write_text("\n")
    with pytest.raises(DatasetLayoutError, match=r"list file .*val.txt' is empty"):
        get_reader("voc", voc_root).samples("val")


def test_rgb_label_is_refused(voc_root: Path) -> None:
    p = voc_root / "VOCdevkit/VOC2012/SegmentationClass/v1.png"
    Image.open(p).convert("RGB").save(p)
    r = get_reader("voc", voc_root)
    with pytest.raises(
        ValueError, match=r"has image mode RGB; expected a palette \(P\) or grayscale"
    ):
        r.read_label(r.samples("val")[0].label)


def test_unknown_split(voc_root: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown split 'test'; valid splits: train, val"):
        get_reader("voc", voc_root).samples("test")


# ---------------------------------------------------------------- ADE20K


def test_ade_reads_and_keeps_0_to_150(tmp_path: Path, builders) -> None:
    lab = np.array([[0, 1, 150, 151], [200, 255, 100, 0]], np.uint8)
    builders.ade(
        tmp_path, {"ADE_train_00000002": lab, "ADE_train_00000001": lab}, {"ADE_val_00000001": lab}
    )
    for root in (tmp_path, tmp_path / "ADEChallengeData2016"):
        r = get_reader("ade", root)
        assert [s.id for s in r.samples("train")] == ["ADE_train_00000001", "ADE_train_00000002"]
        got = r.read_label(r.samples("val")[0].label)
        np.testing.assert_array_equal(got, [[0, 1, 150, 255], [255, 255, 100, 0]])


def test_ade_missing(tmp_path: Path, builders) -> None:
    with pytest.raises(DatasetLayoutError, match=r"ADEChallengeData2016/images.*sceneparsing"):
        get_reader("ade", tmp_path)
    lab = np.zeros((2, 2), np.uint8)
    base = builders.ade(tmp_path, {"t1": lab, "t2": lab}, {"v1": lab})
    (base / "annotations/training/t2.png").unlink()
    with pytest.raises(
        DatasetLayoutError, match=r"1 images of .* have no annotation .*\(e.g. t2\)"
    ):
        get_reader("ade", tmp_path).samples("train")
    shutil.rmtree(base / "annotations/validation")
    with pytest.raises(DatasetLayoutError, match=r"expected directory .*annotations/validation"):
        get_reader("ade", tmp_path).samples("val")


# ---------------------------------------------------------------- Cityscapes

# Official Cityscapes label ids (cityscapesScripts labels.py), by name.
CS_LABEL_ID = {
    "road": 7,
    "sidewalk": 8,
    "building": 11,
    "wall": 12,
    "fence": 13,
    "pole": 17,
    "traffic light": 19,
    "traffic sign": 20,
    "vegetation": 21,
    "terrain": 22,
    "sky": 23,
    "person": 24,
    "rider": 25,
    "car": 26,
    "truck": 27,
    "bus": 28,
    "train": 31,
    "motorcycle": 32,
    "bicycle": 33,
}


def test_cityscapes_remap(tmp_path: Path, builders) -> None:
    raw = np.arange(0, 40, dtype=np.uint8).reshape(4, 10)
    raw[3, 9] = 255
    builders.cityscapes(
        tmp_path,
        {"aachen/aachen_000000_000019": raw, "bremen/bremen_000001_000019": raw},
        {"lindau/lindau_000000_000019": raw},
    )
    r = get_reader("cityscapes", tmp_path)
    assert [s.id for s in r.samples("train")] == [
        "aachen/aachen_000000_000019",
        "bremen/bremen_000001_000019",
    ]
    got = r.read_label(r.samples("val")[0].label)
    expected = np.zeros_like(raw)  # void / unlabelled / license plate / 255 -> 0
    for cls, name in enumerate(PROTOCOL_ORDER, start=1):
        expected[raw == CS_LABEL_ID[name]] = cls
    np.testing.assert_array_equal(got, expected)
    assert got[0, 7] == 1 and got[2, 6] == 14 and got[3, 3] == 19 and got[0, 0] == 0


def test_cityscapes_missing(tmp_path: Path, builders) -> None:
    with pytest.raises(DatasetLayoutError, match=r"leftImg8bit' and .*gtFine'.*cityscapes-dataset"):
        get_reader("cityscapes", tmp_path)
    lab = np.zeros((2, 2), np.uint8)
    builders.cityscapes(tmp_path, {"a/a_0_1": lab, "a/a_0_2": lab}, {"b/b_0_1": lab})
    (tmp_path / "gtFine/train/a/a_0_2_gtFine_labelIds.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"1 images .* have no label .*\(e.g. a/a_0_2\)"):
        get_reader("cityscapes", tmp_path).samples("train")
    shutil.rmtree(tmp_path / "gtFine/val")
    with pytest.raises(DatasetLayoutError, match=r"expected directory .*gtFine/val"):
        get_reader("cityscapes", tmp_path).samples("val")


def test_reader_configuration_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    import ucd.data.base as base
    from ucd.data.cityscapes import CityscapesReader
    from ucd.data.tasks import get_dataset_info

    cs = get_dataset_info("cityscapes")
    bad = dataclasses.replace(cs, reader={"label_ids": [7, 8]})
    with pytest.raises(ValueError, match=r"reader.label_ids has 2 entries, expected 19"):
        CityscapesReader(bad, tmp_path)
    odd = dataclasses.replace(cs, layout="kitti")
    monkeypatch.setattr(base, "get_dataset_info", lambda name: odd)
    with pytest.raises(ValueError, match=r"unknown layout 'kitti' in tasks.yaml"):
        base.get_reader("cityscapes", tmp_path)


def test_empty_image_directories(tmp_path: Path) -> None:
    for d in (
        "ADEChallengeData2016/images/training",
        "ADEChallengeData2016/annotations/training",
        "leftImg8bit/train",
        "gtFine/train",
    ):
        (tmp_path / d).mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"expected \*.jpg images in .*training"):
        get_reader("ade", tmp_path).samples("train")
    with pytest.raises(DatasetLayoutError, match=r"<city>/\*_leftImg8bit.png'; found: .* is empty"):
        get_reader("cityscapes", tmp_path).samples("train")
