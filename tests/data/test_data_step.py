"""Step datasets: image selection, training/validation label masking, transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ucd.data.splits import SplitMismatchError, compute_split, save_split
from ucd.data.step import make_dataset
from ucd.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    TrainTransform,
    ValTransform,
    crop_box,
    denormalize,
    normalize,
    pad_crop,
)


def _rows(label: torch.Tensor) -> list[int]:
    """Value of rows 0..3 (the fixture writes one class per row)."""
    return [int(label[r, 0]) for r in range(4)]


def _ds(voc_root: Path, task: str, setting: str, step: int, split: str, **kw):
    return make_dataset(
        "voc", voc_root, task, setting, step, split, crop_size=8, train_augment=False, **kw
    )


def test_train_masking_and_selection(voc_root: Path) -> None:
    ds = _ds(voc_root, "15-5", "disjoint", 1, "train")
    assert ds.ids == ["b", "c", "f", "g"]
    _, lab = ds[0]  # b: rows 0, 1, 16 -> old class 1 becomes background
    assert lab.dtype == torch.int64 and lab.shape == (8, 8)
    assert _rows(lab) == [0, 0, 16, 0]
    _, lab = ds[2]  # f: rows 0, 15, 20, 255
    assert _rows(lab) == [0, 0, 20, 255]
    ds = _ds(voc_root, "15-5", "disjoint", 1, "train", ignore_to_background=True)
    assert _rows(ds[2][1]) == [0, 0, 20, 0]
    ds = _ds(voc_root, "15-5", "overlapped", 0, "train")
    assert ds.ids == ["a", "b", "e", "f"]
    assert _rows(ds[1][1]) == [0, 1, 0, 0]  # b at step 0: future class 16 -> 0
    assert _rows(ds[3][1]) == [0, 15, 0, 255]


def test_train_all_classes_is_joint(voc_root: Path) -> None:
    ds = _ds(voc_root, "15-5", "overlapped", 0, "train", all_classes=True)
    assert ds.ids == ["a", "b", "c", "d", "e", "f", "g"]
    assert _rows(ds[5][1]) == [0, 15, 20, 255]


def test_val_masking(voc_root: Path) -> None:
    ds = _ds(voc_root, "15-1", "disjoint", 0, "val")
    assert ds.ids == ["v1", "v2"]
    assert _rows(ds[0][1]) == [0, 1, 255, 255]  # v1: 1, 16, 255; 16 unseen -> 255
    assert _rows(ds[1][1]) == [0, 255, 2, 0]  # v2: 20, 2
    ds = _ds(voc_root, "15-1", "disjoint", 1, "val")
    assert _rows(ds[0][1]) == [0, 1, 16, 255]
    assert _rows(ds[1][1]) == [0, 255, 2, 0]
    ds = _ds(voc_root, "15-1", "disjoint", 0, "val", all_classes=True)
    assert _rows(ds[1][1]) == [0, 20, 2, 0]


def test_split_file_is_used_and_checked(voc_root: Path, tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    save_split(
        compute_split("voc", voc_root, "15-1", "overlapped", workers=1, progress=False), path
    )
    ds = _ds(voc_root, "15-1", "overlapped", 1, "train", split_file=path)
    assert ds.ids == ["b", "g"]
    with pytest.raises(ValueError, match=r"is for voc/15-1/overlapped, not voc/15-1/disjoint"):
        _ds(voc_root, "15-1", "disjoint", 1, "train", split_file=path)
    split = compute_split("voc", voc_root, "15-1", "overlapped", workers=1, progress=False)
    split["ids"][1] = ["b", "zz"]
    with pytest.raises(SplitMismatchError, match=r"1 ids of step 1 are not training images .*zz"):
        _ds(voc_root, "15-1", "overlapped", 1, "train", split_file=split)


def test_raw_image_is_unnormalised_and_aligned(voc_root: Path) -> None:
    ds = _ds(voc_root, "15-5", "disjoint", 0, "val")
    img, lab = ds.raw(0)
    x, y = ds[0]
    assert img.dtype == np.uint8 and img.shape == (8, 8, 3)
    np.testing.assert_array_equal(lab, y.numpy())
    np.testing.assert_array_equal(denormalize(x), img)
    src = np.asarray(Image.open(voc_root / "VOCdevkit/VOC2012/JPEGImages/v1.jpg").convert("RGB"))
    np.testing.assert_array_equal(img, src)


def test_make_dataset_argument_errors(voc_root: Path) -> None:
    with pytest.raises(ValueError, match=r"step 2 out of range for voc/15-5 \(0..1\)"):
        _ds(voc_root, "15-5", "disjoint", 2, "train")
    with pytest.raises(ValueError, match=r"unknown split 'test'; valid splits: train, val"):
        _ds(voc_root, "15-5", "disjoint", 0, "test")
    with pytest.raises(ValueError, match=r"unknown setting"):
        _ds(voc_root, "15-5", "joint", 0, "val")
    with pytest.raises(ValueError, match=r"crop_size must be a positive int"):
        make_dataset("voc", voc_root, "15-5", "disjoint", 0, "val", crop_size=0)


def test_size_mismatch_is_reported(voc_root: Path) -> None:
    p = voc_root / "VOCdevkit/VOC2012/JPEGImages/v2.jpg"
    Image.new("RGB", (9, 8)).save(p)
    ds = _ds(voc_root, "15-5", "disjoint", 0, "val")
    with pytest.raises(ValueError, match=r"v2: label \(8, 8\) and image \(9, 8\) sizes differ"):
        ds[1]


# ---------------------------------------------------------------- transforms


def test_normalize_roundtrip_and_values() -> None:
    img = np.array([[[255, 0, 124]]], np.uint8)
    t = normalize(img)
    expected = [
        (1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0],
        -IMAGENET_MEAN[1] / IMAGENET_STD[1],
        (124 / 255 - IMAGENET_MEAN[2]) / IMAGENET_STD[2],
    ]
    np.testing.assert_allclose(t[:, 0, 0].numpy(), expected, rtol=1e-5)
    np.testing.assert_array_equal(denormalize(t), img)


def test_val_transform_resize_short_side_and_center_crop() -> None:
    w, h = 12, 6
    img = Image.fromarray(np.arange(h * w * 3, dtype=np.uint8).reshape(h, w, 3) % 251, "RGB")
    lab = np.tile(np.arange(w, dtype=np.uint8), (h, 1))
    im2, lab2 = ValTransform(6).geometry(img, lab)  # short side already 6: crop cols 3..8
    np.testing.assert_array_equal(lab2, lab[:, 3:9])
    np.testing.assert_array_equal(im2, np.asarray(img)[:, 3:9])
    im3, lab3 = ValTransform(3).geometry(img, lab)  # resize to 6x3 (nearest label), crop 3x3
    assert im3.shape == (3, 3, 3)
    small = np.asarray(Image.fromarray(lab).resize((6, 3), Image.NEAREST))
    np.testing.assert_array_equal(lab3, small[:, 1:4])


def test_pad_crop_fills_image_mean_label_255() -> None:
    img = np.ones((2, 2, 3), np.float32)
    lab = np.full((2, 2), 7, np.uint8)
    i2, l2 = pad_crop(img, lab, -1, -1, 4, 0.0)
    np.testing.assert_array_equal(l2, [[255] * 4, [255, 7, 7, 255], [255, 7, 7, 255], [255] * 4])
    assert i2[0, 0].tolist() == [0, 0, 0] and i2[1, 1].tolist() == [1, 1, 1]
    # 0 after normalisation is the mean colour
    mean_px = np.array([[[round(255 * m) for m in IMAGENET_MEAN]]], np.uint8)
    assert normalize(mean_px).abs().max() < 0.01


def test_train_transform_flip_keeps_image_and_label_aligned() -> None:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (6, 6, 3), dtype=np.uint8))
    lab = np.tile(np.arange(6, dtype=np.uint8), (6, 1))
    tf = TrainTransform(6, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        im, lb = tf.geometry(img, lab)
        flipped = lb[0, 0] == 5
        seen.add(bool(flipped))
        ref_i, ref_l = np.asarray(img), lab
        if flipped:
            ref_i, ref_l = ref_i[:, ::-1], ref_l[:, ::-1]
        np.testing.assert_array_equal(lb, ref_l)
        np.testing.assert_array_equal(im, ref_i)
    assert seen == {True, False}


def test_train_transform_output_and_determinism() -> None:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    lab = np.random.default_rng(2).choice([0, 3, 255], (20, 30)).astype(np.uint8)
    tf = TrainTransform(16)
    torch.manual_seed(5)
    x1, y1 = tf(img, lab)
    torch.manual_seed(5)
    x2, y2 = tf(img, lab)
    assert x1.shape == (3, 16, 16) and y1.shape == (16, 16) and y1.dtype == torch.int64
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert set(torch.unique(y1).tolist()) <= {0, 3, 255}


def test_crop_box_bounds_and_fallback() -> None:
    for seed in range(50):
        torch.manual_seed(seed)
        left, top, w, h = crop_box(40, 30, (0.5, 2.0), (3 / 4, 4 / 3))
        assert 0 <= left and left + w <= 40 and 0 <= top and top + h <= 30
        assert 0.5 * 1200 * 0.9 <= w * h <= 1200
    torch.manual_seed(0)
    assert crop_box(40, 30, (3.0, 4.0), (1.0, 1.0)) == (5, 0, 30, 30)  # central square


def test_val_unseen_classes_as_background(voc_root: Path) -> None:
    # PLOP's and the official UCD code's test labels: unseen classes -> 0, 255 stays 255
    ds = _ds(voc_root, "15-1", "disjoint", 0, "val", unseen="background")
    assert _rows(ds[0][1]) == [0, 1, 0, 255]  # v1: 1, 16 (unseen -> 0), 255
    assert _rows(ds[1][1]) == [0, 0, 2, 0]  # v2: 20 (unseen -> 0), 2
    assert ds.meta["unseen"] == "background"
    ds = _ds(voc_root, "15-1", "disjoint", 1, "val", unseen="background")
    assert _rows(ds[0][1]) == [0, 1, 16, 255]
    with pytest.raises(ValueError, match=r"unseen must be one of \['ignore', 'background'\]"):
        _ds(voc_root, "15-1", "disjoint", 0, "val", unseen=0)


def test_small_dataset_is_decoded_once_and_kept_read_only(
    voc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = _ds(voc_root, "15-5", "disjoint", 1, "train")
    calls: list[int] = []
    decode = ds._decode
    monkeypatch.setattr(ds, "_decode", lambda i: calls.append(i) or decode(i))
    first = [ds[i] for i in range(len(ds))]
    again = [ds[i] for i in range(len(ds))]
    assert calls == list(range(len(ds)))  # the second pass decodes nothing
    for (x1, y1), (x2, y2) in zip(first, again):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)
    _, label = ds._load(0)
    with pytest.raises(ValueError, match="read-only"):
        label[0, 0] = 3


def test_large_dataset_is_not_cached(voc_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ucd.data.step as step

    monkeypatch.setattr(step, "CACHE_LIMIT_BYTES", 10)  # smaller than the decoded dataset
    ds = _ds(voc_root, "15-5", "disjoint", 1, "train")
    calls: list[int] = []
    decode = ds._decode
    monkeypatch.setattr(ds, "_decode", lambda i: calls.append(i) or decode(i))
    for _ in range(2):
        ds[0]
    assert calls == [0, 0] and ds._cache is None
