"""Dataset statistics (ucd.data.stats) on hand-built label maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from ucd.data.stats import class_pixels, classes_per_image, step_stats
from ucd.data.tasks import get_task


def label(*classes_and_pixels: tuple[int, int], size: int = 10) -> np.ndarray:
    """A size x size map: background, 255 on the last row, then each (class, n) as n pixels."""
    lab = np.zeros((size, size), np.uint8)
    lab[-1] = 255
    flat, at = lab.reshape(-1), 0
    for c, n in classes_and_pixels:
        flat[at : at + n] = c
        at += n
    return lab


def test_class_pixels_leaves_out_background_and_ignore():
    assert class_pixels(label((3, 7), (6, 2)), 11) == {3: 7, 6: 2}
    assert class_pixels(label(), 11) == {}


def test_classes_per_image_counts_distinct_object_classes():
    pixels = {"a": {1: 5}, "b": {1: 5, 6: 3}, "c": {2: 1, 7: 1, 8: 1}, "d": {}}
    got = classes_per_image(pixels)
    assert got["images"] == 4
    assert got["classes_per_image"] == {"0": 0.25, "1": 0.25, "2": 0.25, "3": 0.25}
    assert got["share_2plus_classes"] == 0.5
    assert got["mean_classes"] == pytest.approx((0 + 1 + 2 + 3) / 4, abs=1e-3)


def test_step_stats_share_of_step_images_showing_an_old_class():
    # digits 5-5: old classes 1-5, new 6-10. Images of step 1 are those showing 6-10.
    pixels = {
        "only_new": {7: 10},
        "new_and_old": {2: 30, 9: 10},
        "old_only": {3: 5},  # not an image of step 1
        "two_new": {6: 4, 10: 6},
    }
    task = get_task("digits", "5-5")
    for setting in ("disjoint", "overlapped"):
        (s1,) = step_stats(pixels, task, setting, 100)
        assert s1["step"] == 1 and s1["images"] == 3
        assert s1["share_with_old_class"] == pytest.approx(1 / 3, abs=1e-4)
        assert s1["old_pixel_share"] == pytest.approx(30 / 300, abs=1e-4)


def test_step_stats_disjoint_keeps_an_image_at_its_last_step_only():
    task = get_task("digits", "5-1")  # steps [0..5], [6], [7], [8], [9], [10]
    pixels = {"x": {1: 3, 6: 3, 8: 3}, "y": {6: 5}}
    dis = step_stats(pixels, task, "disjoint", 100)
    ovl = step_stats(pixels, task, "overlapped", 100)
    assert [s["images"] for s in dis] == [1, 0, 1, 0, 0]  # x only at step 3 (class 8)
    assert [s["images"] for s in ovl] == [2, 0, 1, 0, 0]
    # at step 3 image x shows class 1 and class 6, both learned before: old pixels 6 of 100
    assert dis[2]["share_with_old_class"] == 1.0 and dis[2]["old_pixel_share"] == 0.06
    assert ovl[0]["share_with_old_class"] == 0.5  # x shows class 1 at step 1, y does not
