"""Training one step: loss decreases, checkpoints round-trip, bad input is refused early."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import make_run
from ucd.facts.config import ConfigError
from ucd.models import build_model
from ucd.planning.resolve import resolve
from ucd.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ucd.training.engine import make_loader, prepare_model, train_step


def _batch_loss(model, batch) -> float:
    model.eval()
    with torch.no_grad():
        return float(F.cross_entropy(model(batch[0])["logits"], batch[1], ignore_index=255))


def test_training_lowers_the_loss_and_round_trips(tiny_config, tiny_splits, tmp_path):
    tiny_config["datasets"]["digits"]["optim"]["epochs"] = 3
    run = make_run(tiny_config, tiny_splits)
    torch.manual_seed(0)
    batch = next(iter(make_loader(run)))
    model, _, _ = prepare_model(run, None)
    before = _batch_loss(model, batch)
    metrics = train_step(run, tmp_path / "model.pt")
    ckpt = load_checkpoint(tmp_path / "model.pt")
    trained = build_model(run.model, ckpt["classes"])
    trained.load_state_dict(ckpt["model"])
    assert _batch_loss(trained, batch) < before
    assert ckpt["classes"] == [[0, 1, 2, 3, 4, 5]]
    assert ckpt["config"] == run.to_dict()
    assert ckpt["metrics"]["iterations"] == metrics["iterations"] > 0
    # round trip: saving the loaded payload again gives identical weights
    save_checkpoint(tmp_path / "copy.pt", ckpt)
    again = load_checkpoint(tmp_path / "copy.pt")
    for k, v in ckpt["model"].items():
        assert torch.equal(v, again["model"][k])


def test_step_one_grows_the_head_and_keeps_old_classes(tiny_config, tiny_splits, tmp_path):
    train_step(make_run(tiny_config, tiny_splits), tmp_path / "s0.pt")
    run1 = make_run(tiny_config, tiny_splits, step=1)
    train_step(run1, tmp_path / "s1.pt", prev=tmp_path / "s0.pt")
    assert load_checkpoint(tmp_path / "s1.pt")["classes"] == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]


def test_missing_previous_checkpoint(tiny_config, tiny_splits, tmp_path):
    run1 = make_run(tiny_config, tiny_splits, step=1)
    with pytest.raises(CheckpointError, match="needs the checkpoint of step 0"):
        train_step(run1, tmp_path / "s1.pt")
    with pytest.raises(CheckpointError, match="checkpoint .*nope.pt does not exist"):
        train_step(run1, tmp_path / "s1.pt", prev=tmp_path / "nope.pt")
    assert not (tmp_path / "s1.pt").exists()


def test_checkpoint_of_another_task_is_refused(tiny_config, tiny_splits, tmp_path):
    run0 = make_run(tiny_config, tiny_splits)
    model = build_model(run0.model, [[0, 1, 2, 3]])  # not the classes of 5-5 step 0
    save_checkpoint(
        tmp_path / "s0.pt",
        {
            "model": model.state_dict(),
            "classes": [[0, 1, 2, 3]],
            "config": run0.to_dict(),
            "method_state": {},
            "metrics": {},
        },
    )
    run1 = make_run(tiny_config, tiny_splits, step=1)
    with pytest.raises(CheckpointError, match=r"has classes per step \[\[0, 1, 2, 3\]\].*expects"):
        train_step(run1, tmp_path / "s1.pt", prev=tmp_path / "s0.pt")


def test_corrupt_checkpoint_is_detected(tiny_config, tiny_splits, tmp_path):
    train_step(make_run(tiny_config, tiny_splits), tmp_path / "s0.pt")
    blob = bytearray((tmp_path / "s0.pt").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "s0.pt").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="is corrupt: its SHA-256 does not match"):
        load_checkpoint(tmp_path / "s0.pt")
    (tmp_path / "s0.pt.sha256").unlink()
    (tmp_path / "s0.pt").write_bytes(bytes(blob[: len(blob) // 3]))  # truncated, no digest
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "s0.pt")


def test_unknown_names_list_the_valid_ones(tiny_config):
    with pytest.raises(ValueError, match="unknown task 'nope'.*valid.*5-5"):
        resolve(tiny_config, dataset="digits", task="nope", setting="disjoint", method="ft",
                step=0, seed=0)
    with pytest.raises(ConfigError, match="unknown method 'nope'; valid methods: ft, joint"):
        resolve(tiny_config, dataset="digits", task="5-5", setting="disjoint", method="nope",
                step=0, seed=0)
    with pytest.raises(ValueError, match="unknown dataset 'mnist'.*voc"):
        resolve(tiny_config, dataset="mnist", task="5-5", setting="disjoint", method="ft",
                step=0, seed=0)


def test_negative_lr_is_refused(tiny_config):
    tiny_config["datasets"]["digits"]["optim"]["lr"] = -0.1
    with pytest.raises(ConfigError, match="optim.lr must be"):
        resolve(tiny_config, dataset="digits", task="5-5", setting="disjoint", method="ft",
                step=0, seed=0)


def test_min_iterations_adds_whole_epochs_until_the_floor_is_reached(tiny_config, tiny_splits,
                                                                      tmp_path):
    from ucd.facts.config import OptimConfig

    assert OptimConfig(epochs=3, min_iterations=100).epochs_for(30) == 4  # ceil(100 / 30)
    assert OptimConfig(epochs=3, min_iterations=50).epochs_for(30) == 3  # 90 >= 50 already
    assert OptimConfig(epochs=2).epochs_for(7) == 2  # no floor: the paper's protocol
    tiny_config["datasets"]["digits"]["optim"].update(epochs=1, min_iterations=7)
    run = make_run(tiny_config, tiny_splits)
    batches = len(make_loader(run))
    assert 0 < batches < 7  # the floor must add epochs here
    metrics = train_step(run, tmp_path / "model.pt")
    assert metrics["iterations"] == -(-7 // batches) * batches


def test_flip_off_keeps_every_training_crop_unmirrored(tiny_digits):
    from ucd.data.step import make_dataset
    from ucd.training.resume import SeededSamples

    kw = dict(crop_size=32, split_file=None, verify=False)
    # a crop of the whole image (scale 1) seen with and without the flip: without it, every
    # sample's label must equal the unaugmented geometry of some crop, never its mirror
    flips = []
    for flip in (True, False):
        ds = make_dataset("digits", tiny_digits, "5-5", "overlapped", 0, "train", flip=flip, **kw)
        ds.transform.scale = (1.0, 1.0)  # the whole image: only the flip can change it
        ds.transform.ratio = (1.0, 1.0)
        raw = make_dataset("digits", tiny_digits, "5-5", "overlapped", 0, "train",
                           train_augment=False, **kw)
        samples = SeededSamples(ds, 0)
        mirrored = 0
        for i in range(len(ds)):
            label = samples[(0, i)][1]
            plain = raw[i][1]
            if not torch.equal(label, plain):
                assert torch.equal(label, plain.flip(-1))
                mirrored += 1
        flips.append(mirrored)
    assert flips[0] > 0 and flips[1] == 0
