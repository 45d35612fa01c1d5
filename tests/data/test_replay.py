"""Replay sources (folder, generator, digits), replay sets, and the mixing of replayed images
into every batch."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.data import fake_generator
from ucd.data.replay import (
    DigitsSource,
    FolderSource,
    GeneratorSource,
    MixedBatchSampler,
    ReplayDataset,
    build_replay_set,
    old_classes,
    replay_glyph_pool,
)
from ucd.data.tasks import get_dataset_info
from ucd.losses.recall import replay_code

DIGIT_NAMES = get_dataset_info("digits").class_names


def _folder(root: Path, classes: list[int], n: int) -> Path:
    for c in classes:
        d = root / DIGIT_NAMES[c]
        d.mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10, 8), (c, i, 0)).save(d / f"img{i:02d}.png")
        (d / "notes.txt").write_text("not an image")
    return root


def test_old_classes_are_every_class_before_the_step():
    assert old_classes("digits", "5-1", 1) == [1, 2, 3, 4, 5]
    assert old_classes("digits", "5-1", 3) == [1, 2, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="steps 1..5"):
        old_classes("digits", "5-1", 0)


def test_folder_source_rejects_a_missing_class(tmp_path):
    root = _folder(tmp_path / "web", [1, 2, 3, 4], 3)  # no directory for class 5 ("four")
    with pytest.raises(FileNotFoundError) as err:
        build_replay_set("digits", "5-5", 1, tmp_path / "set", FolderSource(root), per_class=2)
    message = str(err.value)
    assert "'four'" in message and "class 5" in message and str(root / "four") in message


def test_folder_source_needs_enough_images_and_an_existing_root(tmp_path):
    root = _folder(tmp_path / "web", [1, 2, 3, 4, 5], 3)
    with pytest.raises(ValueError, match="holds 3 images of class 'zero', fewer than the 4"):
        build_replay_set("digits", "5-5", 1, tmp_path / "set", FolderSource(root), per_class=4)
    with pytest.raises(FileNotFoundError, match="one directory per class name"):
        FolderSource(tmp_path / "nowhere")


def test_folder_set_references_the_first_images_by_name(tmp_path):
    root = _folder(tmp_path / "web", [1, 2, 3, 4, 5], 3)
    index = build_replay_set("digits", "5-5", 1, tmp_path / "set", FolderSource(root),
                             per_class=2)
    assert list(index["classes"]) == ["1", "2", "3", "4", "5"]
    files = index["classes"]["3"]["images"]
    assert files == [str((root / "two" / f"img0{i}.png").resolve()) for i in (0, 1)]
    on_disk = json.loads((tmp_path / "set" / "index.json").read_text())
    assert on_disk == index and on_disk["source"]["source"] == "folder"


def test_generator_source_gets_class_names_seeds_and_weights(tmp_path):
    fake_generator.CALLS.clear()
    source = GeneratorSource("tests.data.fake_generator:generate", weights="w.pt")
    index = build_replay_set("digits", "5-5", 1, tmp_path / "set", source, per_class=3, seed=7)
    assert [c[0] for c in fake_generator.CALLS] == DIGIT_NAMES[1:6]
    assert all(c[1] == 3 and c[3] == "w.pt" for c in fake_generator.CALLS)
    assert len({c[2] for c in fake_generator.CALLS}) == 5  # one seed per class
    first = np.asarray(Image.open(tmp_path / "set" / index["classes"]["2"]["images"][1]))
    assert first.shape == (20, 24, 3) and (first == sum(map(ord, "one")) % 200 + 1).all()
    again = GeneratorSource("tests.data.fake_generator:generate", weights="w.pt")
    build_replay_set("digits", "5-5", 1, tmp_path / "again", again, per_class=3, seed=7)
    assert fake_generator.CALLS[:5] == fake_generator.CALLS[5:]  # deterministic in the seed


def test_generator_source_errors(tmp_path):
    with pytest.raises(ValueError, match="returned 1 images of 'zero', not the 2"):
        build_replay_set("digits", "5-5", 1, tmp_path / "s",
                         GeneratorSource("tests.data.fake_generator:generate_too_few"),
                         per_class=2)
    with pytest.raises(ValueError, match="must read 'module:function'"):
        GeneratorSource("tests.data.fake_generator")
    with pytest.raises(ValueError, match="cannot be loaded"):
        GeneratorSource("tests.data.fake_generator:nothing")


def test_digits_replay_glyphs_are_never_training_glyphs(tiny_digits):
    from sklearn.datasets import load_digits

    meta = json.loads((tiny_digits / "meta.json").read_text())
    target = load_digits().target
    pools = meta.get("glyph_pools", {})
    train = ({int(i) for p in pools["train"] for i in p} if "train" in pools
             else set(range(len(target) // 2)))  # generator v2: the first half trains
    replay = replay_glyph_pool(tiny_digits)
    for d, pool in enumerate(replay):
        assert len(pool) > 0 and not set(pool.tolist()) & train
        assert (target[pool] == d).all()


def test_digits_source_images_and_replay_dataset_labels(tiny_digits, tmp_path):
    source = DigitsSource(tiny_digits)
    build_replay_set("digits", "5-5", 1, tmp_path / "set", source, per_class=4, seed=3)
    again = DigitsSource(tiny_digits).images(2, "one", 4, 3)
    stored = Image.open(tmp_path / "set" / "images" / "002_00003.png")
    assert np.array_equal(np.asarray(stored), again[3])  # deterministic, size as the data
    assert again[3].shape == (32, 32, 3)
    ds = ReplayDataset(tmp_path / "set", dataset="digits", task="5-5", step=1, per_class=3,
                       crop_size=24)
    assert len(ds) == 15 and ds.source == "digits"
    counts = Counter(c for _, c in ds.samples)
    assert counts == {c: 3 for c in range(1, 6)}
    image, label = ds[4]  # class 2's second image
    assert image.shape == (3, 24, 24) and label.shape == (24, 24)
    assert set(label.unique().tolist()) <= {replay_code(2), 255}
    with pytest.raises(ValueError, match="fewer than the 5 per class"):
        ReplayDataset(tmp_path / "set", dataset="digits", task="5-5", step=1, per_class=5,
                      crop_size=24)
    with pytest.raises(ValueError, match="is for digits 5-5 step 1, not digits 5-1 step 1"):
        ReplayDataset(tmp_path / "set", dataset="digits", task="5-1", step=1, per_class=1,
                      crop_size=24)
    with pytest.raises(FileNotFoundError, match="no index.json"):
        ReplayDataset(tmp_path, dataset="digits", task="5-5", step=1, per_class=1, crop_size=24)


def _epochs(sampler: MixedBatchSampler, n: int) -> list[list[list[int]]]:
    out = []
    for e in range(n):
        sampler.start(e)
        out.append([[i for _, i in batch] for batch in sampler])
    return out


def test_every_batch_holds_the_ratio_and_every_new_image_once_per_epoch():
    n_new, n_rep = 20, 7
    sampler = MixedBatchSampler(n_new, n_rep, batch_size=6, ratio=1.0, seed=5)
    assert len(sampler) == 20 // 3
    epochs = _epochs(sampler, 3)
    replayed_stream = []
    for batches in epochs:
        new = [i for b in batches for i in b if i < n_new]
        assert len(new) == len(set(new)) == 18  # 6 batches x 3; drop_last leaves 2
        for b in batches:
            assert [i >= n_new for i in b] == [False, True] * 3  # evenly spread
        replayed_stream += [i - n_new for b in batches for i in b if i >= n_new]
    for k in range(len(replayed_stream) // n_rep):  # without replacement within each pass
        assert sorted(replayed_stream[k * n_rep:(k + 1) * n_rep]) == list(range(n_rep))
    assert epochs[0] != epochs[1]


def test_batches_are_a_function_of_seed_epoch_and_index():
    a = MixedBatchSampler(30, 50, batch_size=8, ratio=3.0, seed=1)
    b = MixedBatchSampler(30, 50, batch_size=8, ratio=3.0, seed=1)
    full = _epochs(a, 2)
    b.start(1, skip=3)  # a resumed step: epoch 1 from its 4th batch
    assert [[i for _, i in batch] for batch in b] == full[1][3:]
    assert sum(i >= 30 for i in full[0][0]) == 6  # 8 * 3/4 replayed per batch
    assert _epochs(MixedBatchSampler(30, 50, 8, 3.0, seed=2), 1)[0] != full[0]


def test_ratios_that_cannot_fill_a_batch_are_refused():
    with pytest.raises(ValueError, match="both must be >= 1"):
        MixedBatchSampler(10, 10, batch_size=2, ratio=9.0, seed=0)
    with pytest.raises(ValueError, match="cannot fill batches"):
        MixedBatchSampler(2, 10, batch_size=8, ratio=1.0, seed=0)
    plain = MixedBatchSampler(10, 0, batch_size=4, ratio=0.0, seed=0)
    assert all(i < 10 for batch in plain for _, i in batch)


def test_replay_dataset_labels_survive_collation(tiny_digits, tmp_path):
    build_replay_set("digits", "5-5", 1, tmp_path / "set", DigitsSource(tiny_digits),
                     per_class=1)
    ds = ReplayDataset(tmp_path / "set", dataset="digits", task="5-5", step=1, per_class=1,
                       crop_size=16)
    labels = torch.stack([ds[i][1] for i in range(len(ds))])
    assert labels.dtype == torch.int64
    assert sorted({int(v) for v in labels.unique()} - {255}) == sorted(
        replay_code(c) for c in range(1, 6))


def test_cli_builds_a_set_and_reports_a_missing_class(tmp_path, capsys):
    from ucd.data.cli import main

    root = _folder(tmp_path / "web", [1, 2, 3, 5], 2)  # no "three" (class 4)
    code = main(["data", "replay", "digits", "5-5", "--step", "1", "--out",
                 str(tmp_path / "set"), "--per-class", "2", "--source", "folder",
                 "--root", str(root)])
    assert code == 2
    assert "no directory for class 'three' (class 4)" in capsys.readouterr().err
    _folder(tmp_path / "web2", [1, 2, 3, 4, 5], 2)
    assert main(["data", "replay", "digits", "5-5", "--step", "1", "--out",
                 str(tmp_path / "set"), "--per-class", "2", "--source", "folder",
                 "--root", str(tmp_path / "web2")]) == 0
    assert (tmp_path / "set" / "index.json").is_file()
