"""Embedded digits benchmark: determinism, class encoding, VOC-like layout, splits differ."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ucd.data.base import get_reader
from ucd.data.digits import POOL_FRACTIONS, Style, compose, generate, glyph_pools, label_palette
from ucd.data.splits import compute_split
from ucd.data.tasks import get_dataset_info, get_task


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_deterministic_bytes(tmp_path: Path, digits_root: Path) -> None:
    generate(tmp_path / "a", seed=3, n_train=120, n_val=30, progress=False)
    assert _tree_hash(tmp_path / "a") == _tree_hash(digits_root)
    generate(tmp_path / "b", seed=4, n_train=120, n_val=30, progress=False)
    assert _tree_hash(tmp_path / "b") != _tree_hash(digits_root)


def test_layout_is_read_by_the_voc_reader(digits_root: Path) -> None:
    r = get_reader("digits", digits_root)
    train, val = r.samples("train"), r.samples("val")
    assert len(train) == 120 and len(val) == 30
    assert train[0].id == "train_00000" and val[-1].id == "val_00029"
    assert train[0].image == digits_root / "JPEGImages" / "train_00000.png"
    assert train[0].label == digits_root / "SegmentationClass" / "train_00000.png"
    assert r.read_image(train[0].image).size == (Style().size,) * 2


def test_label_pngs_encode_classes(digits_root: Path) -> None:
    im = Image.open(digits_root / "SegmentationClass" / "train_00001.png")
    assert im.mode == "P"
    pal = im.getpalette()
    info = get_dataset_info("digits")
    for c in range(11):
        assert tuple(pal[3 * c : 3 * c + 3]) == info.palette[c]
    assert tuple(pal[765:768]) == (224, 224, 192)
    r = get_reader("digits", digits_root)
    seen = set()
    for s in r.samples("train"):
        seen |= set(np.unique(r.read_label(s.label)).tolist())
    assert seen == set(range(11)) | {255}


def _pools() -> tuple[np.ndarray, list[np.ndarray]]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32), [np.flatnonzero(data.target == d) for d in range(10)]


@pytest.mark.parametrize("style", [Style(), Style(size=48, bold_px=0, noise=6)])
def test_ignore_ring_separates_digits_from_background(style: Style) -> None:
    glyphs, pools = _pools()
    rng = np.random.default_rng(0)
    n = style.size
    for _ in range(20):
        img, lab = compose(rng, glyphs, pools, style)
        assert img.shape == (n, n, 3) and img.dtype == np.uint8
        obj = (lab != 0) & (lab != 255)
        assert obj.any(), "at least one digit"
        # no object pixel touches background (8-neighbourhood): a 255 ring separates them
        p = np.pad(lab, 1, constant_values=255)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                nb = p[1 + dy : n + 1 + dy, 1 + dx : n + 1 + dx]
                assert not np.any(obj & (nb == 0))
        assert (lab == 255).any()


class _ForcedDigit:
    """A numpy Generator whose digit draws (integers(10)) all return `d`."""

    def __init__(self, d: int, seed: int) -> None:
        self.d, self.rng = d, np.random.default_rng(seed)

    def integers(self, *args, **kw):
        return self.d if args == (10,) else self.rng.integers(*args, **kw)

    def __getattr__(self, name):
        return getattr(self.rng, name)


@pytest.mark.parametrize("d", range(10))
def test_digit_d_is_class_d_plus_1(d: int) -> None:
    glyphs, pools = _pools()
    _, lab = compose(_ForcedDigit(d, seed=d), glyphs, pools, 64)
    assert set(np.unique(lab).tolist()) == {0, d + 1, 255}
    assert (
        get_dataset_info("digits").class_names[d + 1]
        == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][d]
    )


def test_three_disjoint_glyph_pools_cover_every_glyph() -> None:
    from sklearn.datasets import load_digits

    target = load_digits().target
    pools = glyph_pools(target)
    assert list(pools) == ["train", "replay", "val"]
    sets = {name: set(np.concatenate(p).tolist()) for name, p in pools.items()}
    assert not sets["train"] & sets["val"] and not sets["train"] & sets["replay"]
    assert not sets["replay"] & sets["val"]
    assert len(sets["train"] | sets["replay"] | sets["val"]) == len(target) == 1797
    for name, per_class in pools.items():
        for d, idx in enumerate(per_class):
            assert (target[idx] == d).all()  # pool d holds glyphs of digit d only
            share = len(idx) / np.sum(target == d)
            assert abs(share - POOL_FRACTIONS[name]) < 0.01, (name, d, share)
    assert 0.15 <= POOL_FRACTIONS["replay"] <= 0.2


def test_train_and_val_images_use_their_own_pool(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import ucd.data.digits as digits

    used: list[set[int]] = []
    real = digits.compose

    def spy(rng, glyphs, pools, style):
        used.append(set(np.concatenate(pools).tolist()))
        return real(rng, glyphs, pools, style)

    monkeypatch.setattr(digits, "compose", spy)
    digits.generate(tmp_path, n_train=2, n_val=2, progress=False)
    meta = json.loads((tmp_path / "meta.json").read_text())
    recorded = {k: {i for p in v for i in p} for k, v in meta["glyph_pools"].items()}
    assert used[0] == used[1] == recorded["train"]
    assert used[2] == used[3] == recorded["val"]
    assert meta["version"] == digits.GENERATOR_VERSION == 4
    assert meta["style"]["size"] == meta["size"] == Style().size


def test_style_is_checked() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['blur'\]"):
        Style.from_dict({"blur": 1})
    with pytest.raises(ValueError, match="textures must be a non-empty subset"):
        Style.from_dict({"textures": ["plasma"]})
    with pytest.raises(ValueError, match="digit_px must satisfy"):
        Style.from_dict({"size": 48, "digit_px": [30, 60]})
    with pytest.raises(ValueError, match="n_digits_p must be probabilities"):
        Style.from_dict({"n_digits_p": [0.5, 0.2]})
    assert Style.from_dict({"digit_px": [20, 30]}).digit_px == (20, 30)


def test_bold_digits_are_thicker_than_plain_ones() -> None:
    glyphs, pools = _pools()
    areas = {}
    for bold in (0, 2):
        rng = np.random.default_rng(0)
        style = Style(bold_px=bold, n_digits_p=(1.0,))
        areas[bold] = sum(((compose(rng, glyphs, pools, style)[1]) % 255 > 0).sum()
                          for _ in range(10))
    assert areas[2] > 1.3 * areas[0]


def test_disjoint_and_overlapped_differ(digits_root: Path) -> None:
    task = get_task("digits", "5-5")
    d = compute_split("digits", digits_root, "5-5", "disjoint", workers=1, progress=False)
    o = compute_split("digits", digits_root, "5-5", "overlapped", workers=1, progress=False)
    assert d["counts"][0] < o["counts"][0]
    assert d["ids"][1] == o["ids"][1]  # the last step is the same in both settings
    # independent brute-force check of the protocol's definitions
    for k in range(task.n_steps):
        later = {c for s in task.steps[k + 1 :] for c in s}
        exp_o, exp_d = [], []
        for i, cls in o["image_classes"].items():
            if set(cls) & (set(task.steps[k]) - {0}):
                exp_o.append(i)
                if not set(cls) & later:
                    exp_d.append(i)
        assert o["ids"][k] == exp_o and d["ids"][k] == exp_d


def test_palette_and_errors(tmp_path: Path) -> None:
    assert len(label_palette()) == 768
    with pytest.raises(ValueError, match=r"size must be >= 32 px \(got 16\)"):
        generate(tmp_path, size=16, progress=False)
    with pytest.raises(ValueError, match=r"n_train and n_val must be >= 1 \(got 0, 5\)"):
        generate(tmp_path, n_train=0, n_val=5, progress=False)


def _distinct_share(p: tuple[float, ...], s: float) -> float:
    """P(an image shows 2+ distinct digits) when every digit is placed: n = 1, 2, 3 digits with
    probabilities p; a further digit repeats a placed one with probability s, else is uniform
    over the 10 digits (and may still coincide)."""
    same = s + (1 - s) / 10  # a further digit has the class of the (single-class) image so far
    return p[1] * (1 - same) + p[2] * (1 - same * same)


def test_realised_co_occurrence_matches_the_style() -> None:
    # small digits in a large image, never overlapping: every digit is placed whole, so the
    # realised share of images with 2+ classes must equal the style's analytic value
    style = Style(size=96, digit_px=(12, 14), bold_px=1, n_digits_p=(0.3, 0.4, 0.3),
                  same_class_p=0.3, max_overlap=0.0, place_tries=200)
    glyphs, pools = _pools()
    rng = np.random.default_rng(5)
    n = 1500
    k = [len({int(c) for c in np.unique(compose(rng, glyphs, pools, style)[1]) if 1 <= c <= 10})
         for _ in range(n)]
    want = _distinct_share(style.n_digits_p, style.same_class_p)  # 0.4689
    sd = (want * (1 - want) / n) ** 0.5
    assert abs(np.mean(np.array(k) >= 2) - want) < 4 * sd
    assert max(k) <= 3 and min(k) >= 1


def test_default_benchmark_images_often_show_several_digits(tmp_path: Path) -> None:
    # the default style (VOC-like co-occurrence): its stats.json, recounted from the PNGs
    generate(tmp_path, seed=0, n_train=200, n_val=10, progress=False)
    stats = json.loads((tmp_path / "stats.json").read_text())
    r = get_reader("digits", tmp_path)
    k = [len(set(np.unique(r.read_label(s.label)).tolist()) - {0, 255})
         for s in r.samples("train")]
    assert stats["images"] == 200
    assert stats["share_2plus_classes"] == pytest.approx(np.mean(np.array(k) >= 2), abs=1e-4)
    assert stats["share_2plus_classes"] >= 0.35
    step1 = stats["tasks"]["5-5"]["overlapped"][0]
    assert step1["share_with_old_class"] >= 0.3
