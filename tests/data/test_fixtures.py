"""The rehearsal's fixture datasets (ucd/data/fixtures.py): read by the real readers exactly as
the generator drew them, and rich enough for every step of every task the paper runs.

The truth is the generator's manifest (pixels per class index, counted before the labels were
encoded into the dataset's own values), so a reader that maps a raw value wrongly fails here:
VOC's 255 border read as a class, ADE's 0 as anything but background, a Cityscapes void id as
one of the 19 classes. Which images each step trains on is recomputed here from the manifest's
classes by the protocol's rule, independently of ucd.data.splits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ucd.data.base import get_reader, read_index_png
from ucd.data.fixtures import (
    CITYSCAPES_IDS,
    CITYSCAPES_VOID_IDS,
    FIXTURES,
    IGNORE,
    generate,
    load_manifest,
)
from ucd.data.splits import compute_split
from ucd.data.tasks import get_dataset_info, get_task
from ucd.reporting.tables import required_runs

# (dataset, task, setting) of every cell of the paper's Tables 1-9 and Figures 10-11
PAPER_BENCHMARKS = sorted({r[:3] for r in required_runs()})


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("fixtures")
    return {d: _generated(out / d, d) for d in FIXTURES}


def _generated(root: Path, dataset: str) -> Path:
    generate(dataset, root)
    return root


def test_the_paper_runs_every_fixture_dataset():
    assert {b[0] for b in PAPER_BENCHMARKS} == set(FIXTURES)


@pytest.mark.parametrize("dataset", FIXTURES)
def test_reader_lists_exactly_the_manifest_images(roots, dataset):
    manifest = load_manifest(roots[dataset])["images"]
    reader = get_reader(dataset, roots[dataset])
    for split in ("train", "val"):
        want = sorted(i for i, v in manifest.items() if v["split"] == split)
        assert sorted(s.id for s in reader.samples(split)) == want


@pytest.mark.parametrize("dataset", FIXTURES)
def test_labels_read_by_the_reader_have_the_manifest_pixel_counts(roots, dataset):
    manifest = load_manifest(roots[dataset])["images"]
    reader = get_reader(dataset, roots[dataset])
    for split in ("train", "val"):
        for sample in reader.samples(split):
            label = reader.read_label(sample.label, strict=True)
            values, counts = np.unique(label, return_counts=True)
            got = {str(int(v)): int(n) for v, n in zip(values, counts)}
            assert got == manifest[sample.id]["pixels"], (dataset, sample.id)


@pytest.mark.parametrize("dataset", FIXTURES)
def test_every_class_is_drawn_in_training_and_validation_images(roots, dataset):
    manifest = load_manifest(roots[dataset])["images"]
    n = get_dataset_info(dataset).num_classes
    for split in ("train", "val"):
        present = {int(c) for v in manifest.values() if v["split"] == split
                   for c, px in v["pixels"].items() if px > 0}
        assert set(range(n)) <= present, (dataset, split, sorted(set(range(n)) - present))


def test_the_values_a_reader_could_misread_are_in_the_files(roots):
    """Read from the label files themselves: VOC: 255 (borders, difficult patches) in both
    splits, otherwise class indices 0..20; ADE: 0 ('other') in every image of both splits,
    otherwise 1..150; Cityscapes: every void id and every class's own id, and no train id or
    255."""
    for split in ("train", "val"):
        voc = [np.unique(read_index_png(s.label))
               for s in get_reader("voc", roots["voc"]).samples(split)]
        assert any(IGNORE in v for v in voc), f"no VOC {split} label holds 255"
        assert set(np.concatenate(voc).tolist()) <= set(range(21)) | {IGNORE}, split
        ade = [np.unique(read_index_png(s.label))
               for s in get_reader("ade", roots["ade"]).samples(split)]
        assert all(0 in v for v in ade), f"an ADE {split} label without 0 (other)"
        assert set(np.concatenate(ade).tolist()) <= set(range(151)), split
    reader = get_reader("cityscapes", roots["cityscapes"])
    raw = np.concatenate([read_index_png(s.label).ravel()
                          for split in ("train", "val") for s in reader.samples(split)])
    assert set(np.unique(raw).tolist()) == set(CITYSCAPES_VOID_IDS) | set(CITYSCAPES_IDS.values())


def test_cityscapes_files_are_laid_out_as_released(roots):
    root = roots["cityscapes"]
    labels = sorted((root / "gtFine").glob("*/*/*_gtFine_labelIds.png"))
    assert labels
    for lab in labels:
        stem = str(lab)[: -len("_gtFine_labelIds.png")]
        assert Path(f"{stem}_gtFine_color.png").is_file()
        with Image.open(f"{stem}_gtFine_instanceIds.png") as im:
            assert im.mode.startswith("I")  # 16-bit instance ids, never read as labels
        image = Path(stem.replace("gtFine", "leftImg8bit") + "_leftImg8bit.png")
        assert image.is_file(), image


def expected_step_ids(manifest: dict, dataset: str, task: str, setting: str) -> list[set]:
    """The protocol's rule on the manifest's classes: overlapped, step k takes every image
    with a pixel of a class of step k (0 and 255 are not classes); disjoint, only the last
    such step."""
    step_of = get_task(dataset, task).step_of()
    out: list[set] = [set() for _ in get_task(dataset, task).steps]
    for image_id, v in manifest.items():
        if v["split"] != "train":
            continue
        steps = sorted({step_of[c] for c in v["classes"]})
        for k in steps if setting == "overlapped" else steps[-1:]:
            out[k].add(image_id)
    return out


@pytest.mark.parametrize("dataset, task, setting", PAPER_BENCHMARKS)
def test_every_step_the_paper_runs_has_the_images_the_protocol_selects(
    roots, dataset, task, setting
):
    manifest = load_manifest(roots[dataset])["images"]
    split = compute_split(dataset, roots[dataset], task, setting, workers=1, progress=False)
    expected = expected_step_ids(manifest, dataset, task, setting)
    assert [set(ids) for ids in split["ids"]] == expected
    assert min(split["counts"]) >= 1, split["counts"]
    for k, classes in enumerate(get_task(dataset, task).steps):  # scored after step k
        val = [i for i, v in manifest.items() if v["split"] == "val" and set(v["classes"]) & set(
            classes)]
        assert val, (dataset, task, k)


def test_the_fixture_is_deterministic_and_refuses_to_replace_foreign_data(tmp_path, roots):
    again = generate("cityscapes", tmp_path / "c")
    assert again == load_manifest(roots["cityscapes"])

    def digest(root: Path) -> str:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()

    assert digest(tmp_path / "c") == digest(roots["cityscapes"])
    generate("cityscapes", tmp_path / "c")  # a fixture is replaced
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(ValueError, match="holds no fixture"):
        generate("voc", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_voc_replay_folder_has_every_class(roots):
    info = get_dataset_info("voc")
    for name in info.class_names[1:]:
        assert len(list((roots["voc"] / "replay" / name).glob("*.jpg"))) >= 2, name
