"""Input validation: corrupt/truncated files, out-of-range label values and size mismatches
give errors naming the file, never a silently wrong label (issue 10, item 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ucd.data.base import InputDataError, describe_values, get_reader
from ucd.data.splits import compute_split
from ucd.data.step import make_dataset

VOC = "VOCdevkit/VOC2012"


def _val(root: Path, dataset: str = "voc", task: str = "15-5", setting: str = "disjoint"):
    return make_dataset(dataset, root, task, setting, 1, "val", crop_size=8)


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


@pytest.mark.parametrize("keep", [0.5, 20, 0])
def test_truncated_jpeg_image_names_the_file(voc_root: Path, keep: float) -> None:
    p = voc_root / VOC / "JPEGImages" / "v1.jpg"
    _truncate(p, int(len(p.read_bytes()) * keep) if keep < 1 else int(keep))
    ds = _val(voc_root)
    with pytest.raises(InputDataError, match=r"voc: image file '.*v1\.jpg' is corrupt or trunc"):
        ds[0]
    ds[1]  # the intact image is still read


def test_truncated_png_image_names_the_file(digits_root: Path, tmp_path: Path) -> None:
    r = get_reader("digits", digits_root)
    src = r.samples("val")[0].image
    assert src.suffix == ".png"
    p = tmp_path / src.name  # a copy: digits_root is shared by the session
    p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2])
    with pytest.raises(InputDataError, match=rf"digits: image file '{p}' is corrupt or trunc"):
        r.read_image(p)


def test_garbage_bytes_as_image(voc_root: Path) -> None:
    p = voc_root / VOC / "JPEGImages" / "v2.jpg"
    p.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(InputDataError, match=r"image file '.*v2\.jpg' .*UnidentifiedImageError"):
        _val(voc_root)[1]


def test_truncated_label_png_names_the_file(voc_root: Path) -> None:
    p = voc_root / VOC / "SegmentationClass" / "v1.png"
    _truncate(p, len(p.read_bytes()) // 2)
    with pytest.raises(InputDataError, match=r"voc: label file '.*v1\.png' is corrupt or trunc"):
        _val(voc_root)[0]


def test_truncated_label_fails_the_split_scan(voc_root: Path) -> None:
    p = voc_root / VOC / "SegmentationClassAug" / "c.png"
    _truncate(p, 30)
    with pytest.raises(InputDataError, match=r"label file '.*c\.png' is corrupt or truncated"):
        compute_split("voc", voc_root, "15-5", "disjoint", workers=1, progress=False)


def test_voc_label_value_37_is_refused_255_is_not(voc_root: Path, builders) -> None:
    lab = builders.label_with([1, 16, 255])  # same as v1, all allowed
    lab[5, 2:5] = 37
    builders.palette_png(voc_root / VOC / "SegmentationClass" / "v1.png", lab)
    ds = _val(voc_root)
    with pytest.raises(
        InputDataError,
        match=r"voc: label file '.*v1\.png' has 3 pixels with values 37 that are not label "
        r"values of voc \(allowed: 0\.\.20, 255\)",
    ):
        ds[0]
    _, label = ds[1]  # v2: classes 20 and 2 -> after step 1 of 15-5 both seen
    assert set(label.unique().tolist()) == {0, 2, 20}


def test_out_of_range_label_fails_the_split_scan(voc_root: Path, builders) -> None:
    lab = builders.label_with([3, 21, 200])
    builders.gray_png(voc_root / VOC / "SegmentationClassAug" / "e.png", lab)
    with pytest.raises(InputDataError, match=r"'.*e\.png' has 16 pixels with values 21, 200"):
        compute_split("voc", voc_root, "15-5", "overlapped", workers=1, progress=False)


def test_ade_value_151_is_refused(tmp_path: Path, builders) -> None:
    ok = np.array([[0, 1], [150, 255]], np.uint8)
    bad = np.array([[0, 151], [150, 255]], np.uint8)
    builders.ade(tmp_path, {"t1": ok, "t2": ok}, {"v1": ok, "v2": bad})
    ds = _val(tmp_path, "ade", "100-50", "disjoint")
    ds[0]
    with pytest.raises(
        InputDataError,
        match=r"ade: label file '.*v2\.png' has 1 pixels with "
        r"values 151 .*\(allowed: 0\.\.150, 255\)",
    ):
        ds[1]


def test_cityscapes_unknown_label_id_is_refused(tmp_path: Path, builders) -> None:
    ok = np.array([[0, 7, 33, 255]], np.uint8)  # void, road, bicycle, tolerated 255
    bad = np.array([[0, 7, 34, 40]], np.uint8)
    builders.cityscapes(tmp_path, {"a/a_0_0": ok, "b/b_0_0": ok}, {"c/c_0_0": ok, "c/c_0_1": bad})
    r = get_reader("cityscapes", tmp_path)
    val = r.samples("val")
    np.testing.assert_array_equal(r.read_label(val[0].label, strict=True), [[0, 1, 19, 0]])
    with pytest.raises(
        InputDataError,
        match=r"c_0_1_gtFine_labelIds\.png' has 2 pixels with values 34, 40 .*"
        r"\(allowed: 0\.\.33, 255\)",
    ):
        r.read_label(val[1].label, strict=True)


def test_image_label_size_mismatch(voc_root: Path, builders) -> None:
    builders.palette_png(voc_root / VOC / "SegmentationClass" / "v2.png", np.zeros((8, 10)))
    with pytest.raises(
        InputDataError,
        match=r"voc v2: label \(10, 8\) and image \(8, 8\) sizes differ "
        r"\('.*v2\.png', '.*v2\.jpg'\)",
    ):
        _val(voc_root)[1]


def test_train_samples_are_checked_too(voc_root: Path, builders) -> None:
    lab = builders.label_with([16])
    lab[0, 0] = 99
    p = voc_root / VOC / "SegmentationClassAug" / "b.png"
    split = compute_split("voc", voc_root, "15-5", "disjoint", workers=1, progress=False)
    builders.gray_png(p, lab)  # corrupted after the split was computed
    ds = make_dataset(
        "voc", voc_root, "15-5", "disjoint", 1, "train", split_file=split, crop_size=8
    )
    i = ds.ids.index("b")
    with pytest.raises(InputDataError, match=r"'.*b\.png' has 1 pixels with values 99"):
        ds[i]


def test_rgb_image_label_mode_still_refused(voc_root: Path) -> None:
    p = voc_root / VOC / "SegmentationClass" / "v1.png"
    Image.open(p).convert("RGB").save(p)
    with pytest.raises(ValueError, match=r"v1\.png' has image mode RGB"):
        _val(voc_root)[0]


def test_describe_values() -> None:
    valid = np.zeros(256, bool)
    valid[[0, 1, 2, 5, 7, 8, 255]] = True
    assert describe_values(valid) == "0..2, 5, 7..8, 255"
