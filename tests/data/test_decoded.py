"""Images decoded once (ucd.data.decoded): a step's samples are the same pixels as decoded from
the files, a training gives the same bits, and arrays that no longer match their files, or
that do not fit the run, are refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import make_run
from ucd.data import decoded
from ucd.data.base import InputDataError, get_reader
from ucd.data.step import make_dataset
from ucd.training.engine import train_step

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _decode_files_afterwards():
    yield
    decoded.forget()


@pytest.fixture()
def digits_copy(tiny_digits, tmp_path) -> Path:
    """A copy of the tiny benchmark that a test may change."""
    return Path(shutil.copytree(tiny_digits, tmp_path / "digits"))


def _samples(root: Path, split: str, tiny_splits: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every sample of step 1 (train) or after step 1 (val), as the step's dataset decodes it
    (image pixels, masked label), without augmentation."""
    ds = make_dataset("digits", root, "5-5", "disjoint", 1, split, crop_size=32,
                      train_augment=False, split_file=tiny_splits / "disjoint.json")
    return [(np.asarray(img), label) for img, label in (ds._decode(i) for i in range(len(ds)))]


def test_decoded_samples_are_the_decoded_files(tiny_digits, tiny_splits, tmp_path):
    index = decoded.write_decoded("digits", tiny_digits, tmp_path / "decoded")
    reader = get_reader("digits", tiny_digits)
    assert index["splits"]["val"]["ids"] == [s.id for s in reader.samples("val")]
    for split in ("train", "val"):
        from_files = _samples(tiny_digits, split, tiny_splits)
        assert decoded.use(tmp_path / "decoded") == str(tiny_digits.resolve())
        from_arrays = _samples(tiny_digits, split, tiny_splits)
        decoded.forget()
        assert len(from_files) == len(from_arrays) > 0
        for (im_a, lab_a), (im_b, lab_b) in zip(from_files, from_arrays):
            assert im_a.dtype == im_b.dtype == np.uint8 and np.array_equal(im_a, im_b)
            assert np.array_equal(lab_a, lab_b)
    # and what the arrays hold is the files' pixels, read independently of the reader
    first = reader.samples("train")[0]
    images = np.load(tmp_path / "decoded" / "train.images.npy")
    assert np.array_equal(images[0], np.asarray(Image.open(first.image).convert("RGB")))


def test_a_training_gives_the_same_bits_from_decoded_images(tiny_config, tiny_splits,
                                                            tmp_path):
    run = make_run(tiny_config, tiny_splits, method="ft", step=0)
    train_step(run, tmp_path / "files.pt")
    decoded.write_decoded("digits", run.data.root, tmp_path / "decoded")
    decoded.use(tmp_path / "decoded")
    train_step(run, tmp_path / "arrays.pt")
    a = torch.load(tmp_path / "files.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "arrays.pt", weights_only=False)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_arrays_whose_files_changed_are_refused(digits_copy, tiny_splits, tmp_path):
    decoded.write_decoded("digits", digits_copy, tmp_path / "decoded")
    label = get_reader("digits", digits_copy).samples("val")[3].label
    st = label.stat()
    os.utime(label, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten since
    decoded.use(tmp_path / "decoded")
    with pytest.raises(InputDataError, match="decoded val image .* is not the one under"):
        _samples(digits_copy, "val", tiny_splits)


def test_arrays_of_other_images_are_refused(digits_copy, tiny_splits, tmp_path):
    decoded.write_decoded("digits", digits_copy, tmp_path / "decoded")
    first, *rest = get_reader("digits", digits_copy).samples("val")
    first.image.unlink()
    first.label.unlink()
    (digits_copy / "ImageSets/Segmentation/val.txt").write_text(
        "".join(f"{s.id}\n" for s in rest))
    decoded.use(tmp_path / "decoded")
    with pytest.raises(InputDataError, match="images added or removed"):
        _samples(digits_copy, "val", tiny_splits)


def test_a_split_of_several_image_sizes_is_read_from_its_files(digits_copy, tmp_path):
    """A split whose images differ in size is not decoded (the index says why); a job given
    the arrays reads that split's files and the other split's arrays (the rehearsal's VOC
    and ADE fixtures mix sizes; the workflow decodes every generated dataset)."""
    sample = get_reader("digits", digits_copy).samples("train")[0]
    for path in (sample.image, sample.label):
        with Image.open(path) as im:
            im.resize((20, 20), Image.NEAREST).save(path)
    index = decoded.write_decoded("digits", digits_copy, tmp_path / "decoded")
    assert "2 sizes" in index["files_read_by_jobs"]["train"]
    assert list(index["splits"]) == ["val"]
    assert not (tmp_path / "decoded" / "train.images.npy").exists()
    reader = get_reader("digits", digits_copy)
    decoded.use(tmp_path / "decoded")
    arrays = decoded.decoded_for(reader)
    assert arrays.get("train", sample) is None  # the job reads the file
    for s in reader.samples("val"):
        img, label = arrays.get("val", s)
        assert np.array_equal(np.asarray(img), np.asarray(reader.read_image(s.image)))
        assert np.array_equal(label, reader.read_label(s.label, strict=True))


def test_train_refuses_arrays_of_another_root(tiny_config, tiny_splits, digits_copy,
                                              tmp_path):
    from ucd.facts.config import write_yaml_atomic

    decoded.write_decoded("digits", digits_copy, tmp_path / "decoded")
    write_yaml_atomic(make_run(tiny_config, tiny_splits), tmp_path / "run.yaml")
    proc = subprocess.run(
        [sys.executable, "-m", "ucd", "train", "--run", str(tmp_path / "run.yaml"), "--out",
         str(tmp_path / "model.pt"), "--decoded", str(tmp_path / "decoded")],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "holds the images of" in proc.stderr and "not of this run's data root" in proc.stderr
    assert not (tmp_path / "model.pt").exists()
