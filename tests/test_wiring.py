"""What the engine does for each method, pinned: the new head's initialisation, the labels the
method's data carries, the weights applied to its terms, the frozen old model, the weights step
k starts from, the split file it reads, and what evaluation counts.

Each test checks a value computed here, independently of the engine's code path (hand-composed
losses from ``ucd.losses``, labels read from the PNG files, weights from the checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import math
from importlib import resources

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import ucd.training.engine as engine
from tests.conftest import make_run
from ucd.data.splits import load_split, save_split
from ucd.evaluation.evaluate import evaluate_checkpoint
from ucd.facts.config import ConfigError
from ucd.losses import kd_loss, ucd_loss, unbiased_cross_entropy, unbiased_kd
from ucd.methods.terms.common import labels_at
from ucd.training.checkpoint import load_checkpoint

N_OLD = 6  # digits 5-5: background + classes 1..5 before step 1


@pytest.fixture(scope="module")
def step0(tiny_digits, tiny_splits, tmp_path_factory):
    """A plain step 0 (2 epochs) shared by the step-1 tests, and its config."""
    from tests.conftest import TINY_MODEL

    config = {"results": "results", "datasets": {"digits": {
        "root": str(tiny_digits), "model": TINY_MODEL,
        "optim": {"lr": 0.02, "epochs": 2, "batch_size": 8},
        "incremental": {"optim": {"lr": 0.01}},
        "data": {"crop_size": 32, "num_workers": 0}}}}
    out = tmp_path_factory.mktemp("wiring") / "step0.pt"
    engine.train_step(make_run(config, tiny_splits, method="ft"), out)
    return config, out


def _step1(step0, tiny_splits, tmp_path, method, **changes):
    config, ckpt = step0
    run = make_run(config, tiny_splits, method=method, step=1)
    if changes:
        run = run.replace(**changes)
    step = engine.set_up(run, tmp_path / "step1.pt", ckpt)
    engine.start_or_resume(step)  # terms' before_step (PLOP's thresholds)
    return step


def _first_batch(step):
    step.train_loader.batch_sampler.start(0, 0)
    return next(iter(step.train_loader))


# ------------------------------------------------------------------ the new head


@pytest.mark.parametrize("method", ["mib", "plop", "mib_ucd"])
def test_mib_init_copies_the_background_row(step0, tiny_splits, tmp_path, method):
    prev = load_checkpoint(step0[1])["model"]
    head = _step1(step0, tiny_splits, tmp_path, method).model.classifier
    w0, b0 = prev["classifier.heads.0.weight"][0], prev["classifier.heads.0.bias"][0]
    new = head.heads[-1]
    n_new = new.weight.shape[0]
    for row in range(n_new):
        torch.testing.assert_close(new.weight[row], w0)
    expected = float(b0) - math.log(n_new + 1)
    torch.testing.assert_close(new.bias, torch.full((n_new,), expected))
    assert float(head.heads[0].bias[0].detach()) == pytest.approx(expected)


@pytest.mark.parametrize("method", ["ft", "lwf", "ucd"])
def test_without_mib_init_the_new_head_is_not_the_background_row(step0, tiny_splits,
                                                                 tmp_path, method):
    prev = load_checkpoint(step0[1])["model"]
    head = _step1(step0, tiny_splits, tmp_path, method).model.classifier
    assert not torch.allclose(head.heads[-1].weight[0], prev["classifier.heads.0.weight"][0])
    torch.testing.assert_close(head.heads[0].bias, prev["classifier.heads.0.bias"])


# ------------------------------------------------------------------ labels the method sees


def _labels_seen(step) -> torch.Tensor:
    step.train_loader.batch_sampler.start(0, 0)
    return torch.cat([labels.flatten() for _, labels in step.train_loader])


def _raw_has_ignore(root, ids) -> bool:
    return any((np.array(Image.open(root / "SegmentationClass" / f"{i}.png")) == 255).any()
               for i in ids)


@pytest.mark.parametrize("method,maps", [("mib", True), ("mib_ucd", True), ("plop", False),
                                         ("ft", False), ("ucd", False)])
def test_label_policy_at_step_1(step0, tiny_digits, tiny_splits, tmp_path, method, maps):
    ids = load_split(tiny_splits / "disjoint.json")["ids"][1]
    assert _raw_has_ignore(tiny_digits, ids)  # the files do hold 255 rings
    labels = _labels_seen(_step1(step0, tiny_splits, tmp_path, method))
    assert bool((labels == 255).any()) is not maps
    assert set(labels.unique().tolist()) <= {0, *range(N_OLD, 11), 255}


@pytest.mark.parametrize("policy,maps", [("always", True), ("incremental", False),
                                         ("never", False)])
def test_label_policy_at_step_0(step0, tiny_splits, tmp_path, policy, maps):
    config = json.loads(json.dumps(step0[0]))
    # a step 0 that MiB shares is ft's run (the plan's): the policy is set on the run trained
    config["overrides"] = [{"match": {"method": "ft"},
                            "labels": {"ignore_to_background": policy}}]
    run = make_run(config, tiny_splits, method="ft", step=0)
    labels = _labels_seen(engine.set_up(run, tmp_path / "s0.pt", None))
    assert bool((labels == 255).any()) is not maps


# ------------------------------------------------------------------ the weighted sum of terms


def _composed(method, out, old, labels, new_classes):
    """The paper's loss of a method, written out by hand with docs/protocol.md's weights."""
    if method == "ft":
        return torch.nn.functional.cross_entropy(out["logits"], labels, ignore_index=255)
    if method == "lwf":
        ce = torch.nn.functional.cross_entropy(out["logits"], labels, ignore_index=255)
        return ce + 100 * kd_loss(out["logits"], old["logits"])
    mib = (unbiased_cross_entropy(out["logits"], labels, N_OLD)
           + 10 * unbiased_kd(out["logits"], old["logits"]))
    if method == "mib":
        return mib
    feats = out["features"]
    small = labels_at(labels, tuple(feats.shape[-2:]))  # alignment: tests/methods/test_terms.py
    u = ucd_loss(feats, old["features"], small, torch.softmax(old["logits_low"], 1),
                 new_classes, temperature=0.07, uncertainty=True)
    return mib + 0.01 * u


@pytest.mark.parametrize("method", ["ft", "lwf", "mib", "mib_ucd"])
def test_first_iteration_loss_is_the_hand_composed_weighted_sum(step0, tiny_splits, tmp_path,
                                                                method):
    step = _step1(step0, tiny_splits, tmp_path, method)
    images, labels = _first_batch(step)
    with torch.no_grad():
        out = step.model(images)
        old = step.ctx.old_model(images) if step.ctx.old_model is not None else None
        expected = _composed(method, out, old, labels, step.ctx.new_classes)
    sums, problem = engine.forward_backward(step, images, labels)
    assert problem is None
    assert sums["total"] == pytest.approx(float(expected), rel=1e-5)


def _yaml_weights(raw: dict, name: str) -> dict[str, float]:
    """Each term's weight as methods.yaml writes it (through `base:`), else the term's default."""
    from ucd.methods import TERMS

    entry = raw[name]
    weights = _yaml_weights(raw, entry["base"]) if "base" in entry else {}
    for term, params in (entry.get("terms") or {}).items():
        weights[term] = float((params or {}).get("weight", TERMS[term].defaults["weight"]))
    return weights


@pytest.mark.parametrize("method", ["ilt", "lwf_mc", "plop", "plop_ucd", "ucd", "mib_cd"])
def test_every_term_counts_with_its_methods_yaml_weight(step0, tiny_splits, tmp_path, method):
    """total = sum of weight x term loss, weights read from methods.yaml itself."""
    raw = yaml.safe_load(resources.files("ucd.methods").joinpath("methods.yaml").read_text())
    weights = _yaml_weights(raw, method)
    step = _step1(step0, tiny_splits, tmp_path, method)
    images, labels = _first_batch(step)
    with torch.no_grad():
        batch = engine.Batch(images, labels, step.model(images), step.ctx.old_model(images),
                             step.ctx)
        expected = sum(weights[t.name] * float(t.loss(batch)) for t in step.terms)
    assert {t.name for t in step.terms} == set(weights)
    sums, _ = engine.forward_backward(step, images, labels)
    assert sums["total"] == pytest.approx(expected, rel=1e-5)


def test_ilt_distils_the_last_stage_train_mode_new_against_eval_mode_old(step0, tiny_splits,
                                                                         tmp_path):
    """ILT as MiB's code runs it (MiB/train.py:88, 117-118; run.py:216-219): 100 x MSE between
    the new model's body output with batch statistics (train mode, BN not frozen) and the old
    model's with its running statistics (eval mode). At the first iteration both models hold
    the same weights, so the whole term is the train/eval batch-norm gap: 0 if either model
    ran in the other's mode (issue 21)."""
    import copy

    step = _step1(step0, tiny_splits, tmp_path, "ilt")
    images, labels = _first_batch(step)
    new, old = copy.deepcopy(step.model).train(), copy.deepcopy(step.ctx.old_model).eval()
    with torch.no_grad():  # (a train-mode pass moves the running statistics: eval first)
        old_body = old.body(images)[-1]
        same_mode = (copy.deepcopy(new).eval().body(images)[-1] - old_body).pow(2).mean()
        new_body = new.body(images)[-1]
    expected = 100 * float((new_body - old_body).pow(2).mean())
    assert float(same_mode) == pytest.approx(0.0, abs=1e-10) and expected > 1e-3
    sums, problem = engine.forward_backward(step, images, labels)
    assert problem is None
    assert sums["ilt_feat"] == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ old model and start weights


def test_step_k_starts_from_step_k_minus_1_and_the_old_model_stays_frozen(
    step0, tiny_splits, tmp_path, monkeypatch
):
    prev = load_checkpoint(step0[1])["model"]
    captured = {}
    set_up = engine.set_up

    def spy(*args):
        captured["step"] = step = set_up(*args)
        captured["start"] = {k: v.clone() for k, v in step.model.state_dict().items()}
        return step

    monkeypatch.setattr(engine, "set_up", spy)
    config, ckpt = step0
    engine.train_step(make_run(config, tiny_splits, method="lwf", step=1),  # no head init
                      tmp_path / "s1.pt", ckpt)
    start, old = captured["start"], captured["step"].ctx.old_model
    for key, value in prev.items():  # every step-0 tensor, the old head's included
        assert torch.equal(start[key], value), key
        assert torch.equal(old.state_dict()[key], value), key  # BN statistics did not drift
    assert not old.training and not any(p.requires_grad for p in old.parameters())


# ------------------------------------------------------------------ data and evaluation


def test_the_split_file_named_is_the_one_read(step0, tiny_splits, tmp_path):
    split = load_split(tiny_splits / "disjoint.json")
    split["ids"][1] = split["ids"][1][:8]
    save_split(split, tmp_path / "fewer.json")
    config, ckpt = step0
    run = make_run(config, tiny_splits, method="ft", step=1)
    run = run.replace(data=dataclasses.replace(run.data, split=str(tmp_path / "fewer.json")))
    step = engine.set_up(run, tmp_path / "s1.pt", ckpt)
    assert step.loader.dataset.dataset.ids == split["ids"][1]


def test_evaluation_leaves_out_ignored_pixels(step0, tiny_digits):
    metrics, _ = evaluate_checkpoint(step0[1], batch_size=4)
    ids = (tiny_digits / "ImageSets/Segmentation/val.txt").read_text().split()
    counted = 0
    for i in ids:  # step 0 seen classes: 0..5; later classes and 255 are not scored
        lab = np.array(Image.open(tiny_digits / "SegmentationClass" / f"{i}.png"))
        counted += int((lab <= 5).sum())
    assert np.asarray(metrics["confusion_matrix"]).sum() == counted


# ------------------------------------------------------------------ the contrast set


def test_contrastive_terms_refuse_micro_batches_and_report_their_batch(step0, tiny_splits,
                                                                       tmp_path):
    config, ckpt = step0
    run = make_run(config, tiny_splits, method="mib_ucd", step=1)
    split_run = run.replace(train=dataclasses.replace(run.train, per_gpu_batch=4))
    with pytest.raises(ConfigError, match="ucd contrast pixels across the whole batch"):
        engine.set_up(split_run, tmp_path / "x.pt", ckpt)
    metrics = engine.train_step(run, tmp_path / "s1.pt", ckpt)
    assert metrics["contrast_batch"] == run.optim.batch_size == 8
    assert metrics["batch_size"] == 8  # the global batch, what Fig. 11 plots against
    plain = make_run(config, tiny_splits, method="mib", step=1)
    assert engine.train_step(plain, tmp_path / "s1b.pt", ckpt)["contrast_batch"] is None
