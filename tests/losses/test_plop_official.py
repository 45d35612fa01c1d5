"""PLOP's own histogram thresholds (``thresholds: official``) against hand-worked histograms."""

import math

import pytest
import torch

from ucd.losses.plop_pseudo import (
    EntropyHistogram,
    entropy_thresholds,
    official_median,
    plop_pseudo_labels,
)


def hist100(**bins: int) -> list[int]:
    counts = [0] * 100
    for key, n in bins.items():
        counts[int(key[1:])] = n
    return counts


def test_official_median_hand_worked_histograms():
    # bin 0 holds half (60 of 100): exact, 50 / 60 of bin 0
    assert official_median(hist100(b0=60, b1=30, b2=10)) == pytest.approx(0.01 * 50 / 60)
    # 40 / 50 / 10: half = 50 is compared with bin 1 alone (the running sum is 0, not 40):
    # 0.01 + 50 / 50 * 0.01 = 0.02, where the median is 0.01 + 10 / 50 * 0.01 = 0.012
    assert official_median(hist100(b0=40, b1=50, b2=10)) == pytest.approx(0.02)
    # 30 / 30 / 40 (half 50): no bin alone holds it; the running sum of indices (0, 1, 3, 6,
    # ..., 4950) never equals 50, the walk ends on the empty bin 99: (50 - 4950) / 0 -> -inf
    assert official_median(hist100(b0=30, b1=30, b2=40)) == -math.inf
    # the same shape with half > 4950 pixels: +inf
    assert official_median(hist100(b0=3000, b1=3000, b2=4000)) == math.inf
    # 4 / 4 / 4 (half 6): the walk stops at the empty bin 4, where the running sum 0+1+2+3 = 6
    # equals half: 0 / 0 -> NaN
    assert math.isnan(official_median(hist100(b0=4, b1=4, b2=4)))
    assert official_median([0] * 100) == 0.0


def test_official_median_reads_bin_28_at_step_29():
    # int((29 / 100) * 100) = 28: at step 29 the running sum is 0 + 1 + ... + 28 = 406 and
    # bin 28 (10 pixels) is read again: 406 <= 410 <= 416 -> 0.29 + (410 - 406) / 10 * 0.01.
    # (The true median is in bin 90.)
    assert official_median(hist100(b28=10, b90=810)) == pytest.approx(0.294)


def pixels(qs_and_counts: list[tuple[float, int]]) -> torch.Tensor:
    """Old logits (1, 3, 1, N) whose pixels have probabilities (1 - q, q, 0): class 0."""
    cols = []
    for q, n in qs_and_counts:
        cols += [[math.log(1 - q), math.log(q), -50.0]] * n
    return torch.tensor(cols).T.reshape(1, 3, 1, -1)


def accepted(logits: torch.Tensor, thresholds: torch.Tensor) -> float:
    labels = torch.zeros(1, 1, logits.shape[-1], dtype=torch.long)
    return plop_pseudo_labels(labels, logits, thresholds)[1].item()


def h_plop(q: float, n_old: int = 3, t_k: int = 4) -> float:
    """PLOP's entropy value: the channel mean of -p log p over log(n_old), over log(T_k)."""
    h = -(1 - q) * math.log(1 - q) - q * math.log(q)
    return h / n_old / math.log(n_old) / math.log(t_k)


def test_official_thresholds_bin_on_plops_scale():
    # n_old = 3, T_k = 4. PLOP values of q = 0.005 / 0.009 / 0.012 / 0.02: 0.0069 / 0.0112 /
    # 0.0142 / 0.0215, bins 0 / 1 / 1 / 2 (checked here from the formula)
    assert [int(100 * h_plop(q)) for q in (0.005, 0.009, 0.012, 0.02)] == [0, 1, 1, 2]
    logits = pixels([(0.005, 40), (0.009, 25), (0.012, 25), (0.02, 10)])
    labels = torch.zeros(1, 1, 100, dtype=torch.long)
    hist = EntropyHistogram(3, scale=1 / (3 * math.log(4)))
    hist.update(logits, labels)
    assert hist.counts.view(3, 100)[0, :3].tolist() == [40, 50, 10]
    # official: bins 40 / 50 / 10 -> 0.02 on PLOP's scale (hand-worked above), returned on the
    # normalised scale (x 3 log 4); classes without pixels: the floor 0.001 (x 3 log 4)
    floor = 0.001 * 3 * math.log(4)
    official = entropy_thresholds([(logits, labels)], 3, min_threshold=floor,
                                  method="official", n_classes=4)
    assert official.tolist() == pytest.approx([0.02 * 3 * math.log(4), floor, floor], rel=1e-5)
    # it accepts 90 % of the background pixels (everything below q = 0.02); the median, read
    # on the normalised scale, 40 %
    median = entropy_thresholds([(logits, labels)], 3, min_threshold=floor)
    assert accepted(logits, official) == pytest.approx(0.9)
    assert accepted(logits, median) == pytest.approx(0.4)


@pytest.mark.parametrize(("repeat", "rate"), [(100, 1.0), (1, 0.0)])
def test_official_thresholds_run_off_the_histogram(repeat, rate):
    # bins 30 / 30 / 40 (x repeat): +inf with 10,000 pixels (all accepted), -inf -> the floor
    # with 100 (none accepted); the median accepts about half in both
    logits = pixels([(0.005, 30 * repeat), (0.009, 30 * repeat), (0.02, 40 * repeat)])
    labels = torch.zeros(1, 1, logits.shape[-1], dtype=torch.long)
    floor = 0.001 * 3 * math.log(4)
    official = entropy_thresholds([(logits, labels)], 3, min_threshold=floor,
                                  method="official", n_classes=4)
    assert accepted(logits, official) == rate
    median = entropy_thresholds([(logits, labels)], 3, min_threshold=floor)
    assert 0.3 <= accepted(logits, median) <= 0.6


def test_official_needs_the_class_count_and_a_known_method():
    with pytest.raises(ValueError, match="method 'official' needs n_classes = T_k > n_old=3"):
        entropy_thresholds([], 3, method="official")
    with pytest.raises(ValueError, match=r"method must be one of \['median', 'official'\]"):
        entropy_thresholds([], 3, method="mean")
    with pytest.raises(ValueError, match="scale must be a number > 0"):
        EntropyHistogram(3, scale=0)


class LogitsAreImages(torch.nn.Module):
    """An 'old model' whose logits are its input."""

    def forward(self, x):
        return {"logits": x}


def test_plop_pseudo_term_computes_the_official_thresholds_on_plops_scale():
    from ucd.data.tasks import get_task
    from ucd.methods import TERMS, StepContext

    g = torch.Generator().manual_seed(0)
    n_old, t_k = 6, 11  # digits 5-5, step 1
    data = [(torch.randn(4, n_old, 8, 8, generator=g) * 6,  # some classes in bin 0, some not
             torch.randint(0, 2, (4, 8, 8), generator=g) * 7) for _ in range(2)]
    ctx = StepContext(run={}, task=get_task("digits", "5-5"), step=1, model=torch.nn.Linear(1, 1),
                      old_model=LogitsAreImages(), device=torch.device("cpu"), loader=data)
    official, median = TERMS["plop_pseudo"](thresholds="official"), TERMS["plop_pseudo"]()
    official.before_step(ctx)
    median.before_step(ctx)
    # independent: PLOP's values (channel mean of -p log p / log n_old / log T_k), 100 bins
    logits = torch.cat([x for x, _ in data]).permute(0, 2, 3, 1).reshape(-1, n_old).double()
    bg = torch.cat([y for _, y in data]).reshape(-1) == 0
    p = logits.softmax(1)[bg]
    value = -(p * (p + 1e-8).log()).mean(1) / math.log(n_old) / math.log(t_k)
    bins = (value * 100).long().clamp(max=99)
    scale, floor = n_old * math.log(t_k), 0.001
    finite = 0
    for c in range(n_old):
        counts = torch.bincount(bins[p.argmax(1) == c], minlength=100).tolist()
        finite += math.isfinite(official_median(counts))
        expected = max(official_median(counts), floor) * scale
        assert official.thresholds[c].item() == pytest.approx(expected, rel=1e-4), c
    assert 0 < finite < n_old  # both paths: a median read in bin 0, a walk off the end
    assert not torch.allclose(official.thresholds, median.thresholds)
    with pytest.raises(ValueError, match=r"thresholds must be one of \['median', 'official'\]"):
        TERMS["plop_pseudo"](thresholds="plop")
