"""Adapter logic of the loss terms: label downsampling, PLOP's threshold hook, the regularisers'
importance carried across steps, SDR's prototypes, parameter checks, method composition."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ucd.data.tasks import get_task
from ucd.losses import local_pod, ucd_loss
from ucd.methods import TERMS, Batch, StepContext, get_method
from ucd.methods.terms import labels_at
from ucd.methods.terms.contrastive import TEMPERATURE

TASK = get_task("digits", "5-5")  # step 0: classes 0..5, step 1: 6..10


def ctx_for(step: int, model: nn.Module | None = None, **kw) -> StepContext:
    return StepContext(run={}, task=TASK, step=step, model=model or nn.Linear(1, 1),
                       old_model=kw.pop("old_model", None), device=torch.device("cpu"), **kw)


# --- labels at feature resolution --------------------------------------------------------

def test_labels_at_samples_cell_centres_and_keeps_ignore():
    labels = torch.tensor([[[1, 2, 3, 4],
                            [5, 6, 7, 8],
                            [9, 10, 255, 0],
                            [255, 3, 3, 3]]])
    # 2 x 2 cells of 2 px: centres at 1.0 and 3.0 -> rows/cols 1 and 3 (floor((i + 1/2) * 2))
    assert labels_at(labels, (2, 2)).tolist() == [[[6, 8], [3, 3]]]
    out = labels_at(labels, (1, 4))  # one cell of 4 rows: centre 2.0 -> row 2
    assert out.tolist() == [[[9, 10, 255, 0]]] and out.dtype == labels.dtype
    # no value that is not in the input (bilinear would create e.g. 3.5 -> 3 or 132)
    big = torch.randint(0, 11, (2, 17, 13))
    big[:, ::3] = 255
    small = labels_at(big, (5, 4))
    assert set(small.unique().tolist()) <= set(big.unique().tolist())


def test_labels_at_refuses_float_labels():
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        labels_at(torch.zeros(1, 4, 4), (2, 2))


# --- PLOP's thresholds, computed before the step ------------------------------------------

class LogitsAreImages(nn.Module):
    """An 'old model' whose logits are its input (a fixed, known function)."""

    def forward(self, x):
        return {"logits": x}


def test_plop_thresholds_are_per_class_medians_over_the_steps_data():
    g = torch.Generator().manual_seed(0)
    n_old = 6
    data = [(torch.randn(4, n_old, 8, 8, generator=g) * 3,
             torch.randint(0, 3, (4, 8, 8), generator=g) * 4) for _ in range(3)]  # 0, 4, 8
    for _, lab in data:
        lab[:, 0, :] = 255
    term = TERMS["plop_pseudo"]()
    ctx = ctx_for(1, old_model=LogitsAreImages(), loader=data)
    term.before_step(ctx)
    # independent: numpy median of the normalised entropy of background pixels, per argmax
    logits = torch.cat([x for x, _ in data]).permute(0, 2, 3, 1).reshape(-1, n_old).numpy()
    labels = torch.cat([y for _, y in data]).reshape(-1).numpy()
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ent = -(p * np.log(p + 1e-8)).sum(1) / np.log(n_old)
    floor = 0.001 * n_old * math.log(11)
    for c in range(n_old):
        sel = (labels == 0) & (p.argmax(1) == c)
        if not sel.any():
            assert term.thresholds[c].item() == pytest.approx(floor)
            continue
        v = np.sort(ent[sel])  # any value between the two middle ones is a median
        low, high = v[(len(v) - 1) // 2], v[len(v) // 2]
        t = term.thresholds[c].item()
        assert max(low, floor) - 0.01 <= t <= max(high, floor) + 0.01, (c, t, low, high)
    assert term.state_dict()["thresholds"].shape == (n_old,)


def test_plop_pseudo_needs_the_old_model():
    with pytest.raises(ValueError, match="needs the old model and the step's data loader"):
        TERMS["plop_pseudo"]().before_step(ctx_for(1))


# --- parameter regularisers: importance across steps ---------------------------------------

class Tiny(nn.Module):
    def __init__(self, n_out: int = 3):
        super().__init__()
        self.body = nn.Linear(4, 5)
        self.head = nn.Linear(5, n_out)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))


def _train(term, model, ctx, xs, ys, lr=0.1):
    """The engine's loop for one step; returns the CE-only gradients seen at each iteration."""
    term.before_step(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    seen = []
    for x, y in zip(xs, ys):
        ce = F.cross_entropy(model(x), y)
        params = [p for p in model.parameters()]
        seen.append(dict(zip([n for n, _ in model.named_parameters()],
                             torch.autograd.grad(ce, params, retain_graph=True))))
        batch = Batch(x, y, {"logits": ce.new_zeros(())}, None, ctx)
        opt.zero_grad()
        (ce + term.weight * term.loss(batch)).backward()
        term.after_backward(ctx)
        opt.step()
        term.after_optimizer_step(ctx)
    term.after_step(ctx)
    return seen


def _ema(grads, start, alpha=0.9):
    f = dict(start)
    for g in grads:
        f = {n: alpha * g[n] ** 2 + (1 - alpha) * f[n] for n in f}
    return f


def test_ewc_fisher_is_an_ema_of_task_gradients_carried_across_steps():
    torch.manual_seed(0)
    model = Tiny()
    xs, ys = [torch.randn(6, 4) for _ in range(4)], [torch.randint(0, 3, (6,)) for _ in range(4)]
    term0 = TERMS["ewc"](weight=50.0)
    seen0 = _train(term0, model, ctx_for(0, model), xs, ys)
    state0 = term0.state_dict()
    expected0 = _ema(seen0, {n: torch.ones_like(p) for n, p in model.named_parameters()})
    for n, f in expected0.items():
        torch.testing.assert_close(state0["fisher"][n], f)

    # step 1: the anchor is the model at the start of the step, importance the normalised F
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    term1 = TERMS["ewc"](weight=50.0)
    ctx1 = ctx_for(1, model, prev_state={"ewc": state0})
    seen1 = _train(term1, model, ctx1, xs[::-1], ys[::-1])
    # the Fisher continues from step 0's and sees the CE gradients only (not the penalty's)
    for n, f in _ema(seen1, expected0).items():
        torch.testing.assert_close(term1.state_dict()["fisher"][n], f)
    imp = {n: (f - f.min()) / (f.max() - f.min() + 1e-8) for n, f in expected0.items()}
    penalty = sum((imp[n] * (p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())
    batch = Batch(xs[0], ys[0], {"logits": torch.zeros(())}, None, ctx1)
    assert term1.loss(batch).item() == pytest.approx(penalty.item(), rel=1e-5)
    assert penalty.item() > 0


def test_pi_score_sums_and_rw_keeps_fisher_and_score():
    torch.manual_seed(1)
    model = Tiny()
    xs, ys = [torch.randn(6, 4) for _ in range(3)], [torch.randint(0, 3, (6,)) for _ in range(3)]
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    pi0 = TERMS["pi"]()
    seen = _train(pi0, model, ctx_for(0, model), xs, ys, lr=0.1)
    # independent SI score: sum_t -g_t * lr * (-g_t) ... = sum lr * g_t^2 over the path
    # (plain SGD: delta_t = -lr * g_total_t; at step 0 the penalty is 0, so g_total = g_ce)
    end = dict(model.named_parameters())
    for n in start:
        omega = sum(0.1 * g[n] ** 2 for g in seen)
        expected = (omega / ((end[n].detach() - start[n]) ** 2 + 1e-20)).clamp(min=0)
        torch.testing.assert_close(pi0.state_dict()["score"][n], expected, rtol=1e-4, atol=1e-6)
    rw0 = TERMS["rw"](every=1)
    _train(rw0, Tiny(), ctx_for(0, Tiny()), xs, ys)
    assert set(rw0.state_dict()) == {"fisher", "score"}


def test_regulariser_without_previous_importance_names_the_problem():
    model = Tiny()
    with pytest.raises(ValueError, match=r"'ewc' at step 1 needs \['fisher'\] saved by step 0"):
        TERMS["ewc"]().before_step(ctx_for(1, model, prev_state={}))


# --- SDR prototypes ----------------------------------------------------------------------

def test_sdr_prototypes_grow_and_skip_background_after_step_0():
    feats = torch.rand(2, 3, 4, 4)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, :4, :4] = 7  # a new class, one quarter of each image
    term = TERMS["sdr_attraction"]()
    proto0 = torch.arange(18.0).reshape(6, 3)  # step 0's 6 classes
    ctx = ctx_for(1, prev_state={"sdr_attraction": {"prototypes": proto0,
                                                    "counts": torch.full((6,), 5)}})
    term.before_step(ctx)
    term.loss(Batch(None, labels, {"stages": [feats], "logits": feats}, None, ctx))
    state = term.state_dict()
    assert state["prototypes"].shape == (11, 3)
    torch.testing.assert_close(state["prototypes"][:6], proto0)  # background skipped too
    expected = feats[:, :, :2, :2].permute(0, 2, 3, 1).reshape(-1, 3).mean(0)
    torch.testing.assert_close(state["prototypes"][7], expected)
    assert state["counts"].tolist() == [5] * 6 + [0, 8, 0, 0, 0]


def test_sdr_pm_without_prototypes_names_the_problem():
    with pytest.raises(ValueError, match="'sdr_pm' at step 1 needs the prototypes"):
        TERMS["sdr_pm"]().before_step(ctx_for(1))


# --- output / feature terms --------------------------------------------------------------

def test_mib_ce_is_plain_ce_at_step_0_and_esm_ce_uses_the_old_argmax():
    logits = torch.randn(2, 6, 4, 4)
    labels = torch.randint(0, 6, (2, 4, 4))
    labels[0, 0, 0] = 255
    batch = Batch(None, labels, {"logits": logits}, None, ctx_for(0))
    assert TERMS["mib_ce"]().loss(batch).item() == pytest.approx(
        F.cross_entropy(logits, labels, ignore_index=255).item())
    new = torch.randn(2, 11, 4, 4)
    old = torch.randn(2, 6, 4, 4)
    lab = torch.tensor([0, 7, 255, 0]).repeat(2, 4, 1)
    esm = torch.where(lab == 0, old.argmax(1), lab)
    batch = Batch(None, lab, {"logits": new}, {"logits": old}, ctx_for(1))
    assert TERMS["esm_ce"]().loss(batch).item() == pytest.approx(
        F.cross_entropy(new, esm, ignore_index=255).item(), rel=1e-6)


def test_pod_weights_logits_layer_and_applies_the_schedule():
    g = torch.Generator().manual_seed(0)
    stages = [torch.randn(2, 3, 8, 8, generator=g) for _ in range(4)]
    old_stages = [s + 0.1 * torch.randn(s.shape, generator=g) for s in stages]
    feat, old_feat = torch.randn(2, 5, 4, 4, generator=g), torch.randn(2, 5, 4, 4, generator=g)
    logits, old_logits = torch.randn(2, 11, 4, 4, generator=g), torch.randn(2, 6, 4, 4)
    batch = Batch(None, None,
                  {"stages": stages, "features": feat, "logits_low": logits},
                  {"stages": old_stages, "features": old_feat, "logits_low": old_logits},
                  ctx_for(1))
    term = TERMS["pod"](weight=0.01, logits_weight=0.0005)
    folded = torch.cat([logits[:, :1] + logits[:, 6:].sum(1, keepdim=True), logits[:, 1:6]], 1)
    layers = [local_pod([a], [b]) for a, b in
              zip([*stages, feat, folded], [*old_stages, old_feat, old_logits])]
    expected = (0.01 * sum(layers[:5]) + 0.0005 * layers[5]) / 6 * math.sqrt(11 / 5)
    assert (term.weight * term.loss(batch)).item() == pytest.approx(expected.item(), rel=1e-5)


def test_ucd_term_uses_centred_labels_and_old_softmax():
    g = torch.Generator().manual_seed(0)
    feats, old_feats = torch.randn(2, 8, 4, 4, generator=g), torch.randn(2, 8, 4, 4, generator=g)
    old_low = torch.randn(2, 6, 4, 4, generator=g)
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, :8] = 6
    labels[:, 8:, :8] = 9
    labels[0, 2::4, 2::4] = 255  # exactly the cell centres (rows/cols 2, 6, 10, 14) of image 0
    batch = Batch(None, labels, {"features": feats}, {"features": old_feats, "logits_low": old_low},
                  ctx_for(1))
    small = labels[:, 2::4, 2::4]
    expected = ucd_loss(feats, old_feats, small, old_low.softmax(1), [6, 7, 8, 9, 10],
                        temperature=TEMPERATURE)
    assert TERMS["ucd"]().loss(batch).item() == pytest.approx(expected.item(), rel=1e-6)


# --- parameters and composition ----------------------------------------------------------

@pytest.mark.parametrize(("term", "params", "message"), [
    ("ucd", {"tau": 0.1}, r"term 'ucd' got unknown parameters \['tau'\]"),
    ("ucd", {"temperature": 0}, "term 'ucd': temperature must be a number > 0"),
    ("ucd", {"uncertainty": "no"}, "term 'ucd': uncertainty must be true or false"),
    ("kd", {"weight": "ten"}, "term 'kd': weight must be a number >= 0"),
    ("mib_kd", {"weight": -1}, "term 'mib_kd': weight must be a number >= 0"),
    ("ilt_masked", {"distance": "l1"}, r"term 'ilt_masked': distance must be one of"),
    ("plop_pseudo", {"bins": 0}, "term 'plop_pseudo': bins must be an integer >= 1"),
])
def test_bad_parameters_are_refused(term, params, message):
    with pytest.raises(ValueError, match=message):
        TERMS[term](**params)


def test_methods_are_composed_from_their_bases():
    mib, plop = get_method("mib"), get_method("plop")
    assert list(mib.terms) == ["mib_ce", "mib_kd"] and mib.init == "mib_init"
    assert mib.labels == {"ignore_to_background": "incremental"}
    assert plop.labels == {"ignore_to_background": "never"}
    for name, base, extra in [("mib_ucd", mib, "ucd"), ("plop_ucd", plop, "ucd"),
                              ("mib_segcon", mib, "segcon"), ("mib_pixcon", mib, "pixcon"),
                              ("mib_cd", mib, "ucd")]:
        m = get_method(name)
        assert list(m.terms) == [*base.terms, extra] and m.init == base.init
    params = {n: get_method(n).default_params()["ucd"] for n in
              ("mib_ucd", "mib_cd", "mib_ucd_bg", "mib_ucd_oldnew")}
    assert params["mib_ucd"]["uncertainty"] and not params["mib_cd"]["uncertainty"]
    assert params["mib_ucd_bg"]["include_background"] and params["mib_ucd_bg"]["old_includes_new"]
    assert not params["mib_ucd_oldnew"]["include_background"]
    assert params["mib_ucd_oldnew"]["old_includes_new"]
    assert {get_method(n).step0 for n in ("ewc", "pi", "rw", "sdr", "mib_sdr")} == {"own"}
    assert get_method("mib").default_params()["mib_kd"]["weight"] == 10
    assert get_method("plop").default_params()["pod"]["logits_weight"] == 0.0005


def test_lwf_mc_trains_its_own_step_0_with_its_bce():
    """MiB's code, which ran the paper's LwF-MC row, trains each method's own step 0 and picks
    the BCE criterion whenever LwF-MC's iCaRL flag is set, step 0 included (train.py:
    ``self.bce = opts.bce or opts.icarl``): the old model whose sigmoids step 1 distils is a
    BCE-trained one, not FT's softmax model. Step 0 therefore is LwF-MC's own, and its loss is
    the per-channel BCE against the one-hot label (hand-computed here), not cross-entropy."""
    method = get_method("lwf_mc")
    assert not method.shares_step0
    terms = method.build_terms(method.default_params(), 0)
    assert [t.name for t in terms] == ["bce"]
    logits = torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1).repeat(1, 1, 1, 2)
    labels = torch.tensor([[[1, 255]]])
    batch = Batch(None, labels, {"logits": logits}, None, ctx_for(0))
    # the one labelled pixel: -log(1 - s(0)) - log(s(2)) - log(1 - s(-1)); 255 left out
    expected = math.log(2) + math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(-1.0))
    assert terms[0].loss(batch).item() == pytest.approx(expected, rel=1e-6)
    assert F.cross_entropy(logits, labels, ignore_index=255).item() != pytest.approx(expected)


def test_ucd_official_is_mib_plus_ucd_with_the_official_label_policy():
    """The official code's `--method UCD`: loss_kd 10, unce, unkd, init_balanced (its
    argparser) + the contrastive loss / 100 (its train.py), 255 kept (its loader)."""
    official, ours = get_method("ucd_official"), get_method("mib_ucd")
    expected = {
        "mib_ce": {"weight": 1.0},
        "mib_kd": {"weight": 10, "alpha": 1.0, "class_mean": True},
        "ucd": {"weight": 0.01, "temperature": 0.07, "uncertainty": True,
                "include_background": False, "old_includes_new": False, "chunk_size": None},
    }
    assert official.default_params() == expected
    assert (official.init, official.step0, official.joint) == ("mib_init", "ft", False)
    assert official.labels == {"ignore_to_background": "never"}
    # the same terms and parameters as MiB+UCD; only the label policy differs
    assert ours.default_params() == expected and ours.init == "mib_init"
    assert ours.labels == {"ignore_to_background": "incremental"}
    terms = official.build_terms(official.default_params(), 1)
    assert [(t.name, t.weight) for t in terms] == [("mib_ce", 1.0), ("mib_kd", 10.0),
                                                   ("ucd", 0.01)]
    # at step 0 the terms needing an old model drop out (the workflow trains ft's shared
    # step 0 instead: tests/facts/test_stepspec.py)
    assert [t.name for t in official.build_terms(official.default_params(), 0)] == ["mib_ce"]


def test_mib_sdr_keeps_pytorch_init_as_sdr_code():
    """SDR's `--method SDR` sets loss_kd 100, unce, unkd and SDR's terms, not init_balanced."""
    m = get_method("mib_sdr")
    assert m.init == "none" and get_method("mib").init == "mib_init"
    assert m.default_params()["mib_kd"]["weight"] == 100


@pytest.mark.parametrize("name", ["sdr_attraction", "sdr_repulsion", "sdr_sparsity"])
def test_sdr_terms_can_be_idle_at_step_0_while_prototypes_accumulate(name):
    g = torch.Generator().manual_seed(0)
    feats = torch.rand(2, 3, 4, 4, generator=g, requires_grad=True)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, :4] = 3  # feature rows 0-1 of both images
    labels[1, 4:, :4] = 5  # feature rows 2-3, columns 0-1 of image 1
    saved = {"sdr_attraction": {"prototypes": torch.rand(6, 3, generator=g),
                                "counts": torch.full((6,), 2)}}

    def run(step, **params):
        term = TERMS[name](**params)
        ctx = ctx_for(step, prev_state=saved if step else {})
        if name == "sdr_attraction":
            term.before_step(ctx)
        return term, term.loss(Batch(None, labels, {"stages": [feats], "logits": feats}, None,
                                     ctx))

    term, loss = run(0, at_step0=False)
    assert loss.item() == 0.0
    assert run(0)[1].item() != 0.0  # ours: the term trains at a method's own step 0
    assert run(1, at_step0=False)[1].item() == run(1)[1].item()  # steps >= 1: unchanged
    if name == "sdr_attraction":  # the prototypes of step 0 are built all the same
        assert term.state_dict()["counts"].tolist() == [12, 0, 0, 16, 0, 4]
    with pytest.raises(ValueError, match=f"term '{name}': at_step0 must be true or false"):
        TERMS[name](at_step0="no")


def test_dataset_overrides_reach_the_run_config(tiny_config):
    from ucd.planning.resolve import resolve

    tiny_config["overrides"] = [{"match": {"dataset": "digits", "task": "5-1",
                                           "method": ["mib", "mib_ucd"]},
                                 "params": {"mib_kd": {"weight": 100}}}]
    params = [resolve(tiny_config, dataset="digits", task=t, setting="disjoint",
                      method="mib_ucd", step=1, seed=0).params for t in ("5-1", "5-5")]
    assert params[0]["mib_kd"]["weight"] == 100 and params[1]["mib_kd"]["weight"] == 10
    assert params[0]["ucd"]["weight"] == 0.01
