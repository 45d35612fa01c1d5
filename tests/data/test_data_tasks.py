"""Task registry: docs/protocol.md tasks, class names, palettes, Task arithmetic, errors."""

from __future__ import annotations

import pytest

from tests.data.conftest import PROTOCOL_ORDER
from ucd.data.tasks import (
    check_setting,
    get_dataset_info,
    get_task,
    list_datasets,
    list_tasks,
    parse_task,
    voc_colormap,
)

R = lambda a, b: list(range(a, b + 1))  # noqa: E731

# Written from the table of docs/protocol.md (and the brief for digits), independently of
# tasks.yaml.
PROTOCOL = {
    ("voc", "19-1"): [R(0, 19), [20]],
    ("voc", "15-5"): [R(0, 15), R(16, 20)],
    ("voc", "15-1"): [R(0, 15), [16], [17], [18], [19], [20]],
    ("voc", "10-10"): [R(0, 10), R(11, 20)],
    ("voc", "10-1"): [R(0, 10)] + [[c] for c in range(11, 21)],
    ("ade", "100-50"): [R(0, 100), R(101, 150)],
    ("ade", "100-10"): [R(0, 100)] + [R(a, a + 9) for a in (101, 111, 121, 131, 141)],
    ("ade", "50-50"): [R(0, 50), R(51, 100), R(101, 150)],
    ("cityscapes", "13-6"): [R(0, 13), R(14, 19)],
    ("cityscapes", "13-1"): [R(0, 13)] + [[c] for c in range(14, 20)],
    ("digits", "5-5"): [R(0, 5), R(6, 10)],
    ("digits", "5-1"): [R(0, 5), [6], [7], [8], [9], [10]],
    ("digits", "8-2"): [R(0, 8), [9, 10]],
    ("digits", "6-4"): [R(0, 6), R(7, 10)],
}


@pytest.mark.parametrize(("dataset", "task"), sorted(PROTOCOL))
def test_protocol_tasks(dataset: str, task: str) -> None:
    t = get_task(dataset, task)
    assert [list(s) for s in t.steps] == PROTOCOL[dataset, task]
    assert t.n_steps == len(PROTOCOL[dataset, task])


def test_every_registered_task_is_known() -> None:
    assert {(t.dataset, t.name) for t in list_tasks()} == set(PROTOCOL)
    assert [t.name for t in list_tasks("voc")] == ["19-1", "15-5", "15-1", "10-10", "10-1"]
    assert set(list_datasets()) == {"voc", "ade", "cityscapes", "digits"}


def test_task_arithmetic() -> None:
    t = get_task("voc", "15-1")
    assert t.classes_seen(2) == R(0, 17)
    assert t.new_classes(2) == [17]
    assert t.new_classes(0) == R(0, 15)
    assert t.n_classes(0) == 16 and t.n_classes(5) == 21
    assert t.base_classes == R(1, 15)
    assert t.added_classes(0) == [] and t.added_classes(3) == [16, 17, 18]
    assert t.step_of()[16] == 1 and t.step_of()[0] == 0


def test_dataset_infos() -> None:
    voc = get_dataset_info("voc")
    assert voc.num_classes == 21 and voc.class_names[0] == "background"
    assert voc.class_names[15] == "person" and voc.class_names[20] == "tvmonitor"
    # well-known VOC colours: aeroplane, person, tvmonitor
    assert voc.palette[1] == (128, 0, 0)
    assert voc.palette[15] == (192, 128, 128)
    assert voc.palette[20] == (0, 64, 128)
    assert voc.ignore_index == 255
    ade = get_dataset_info("ade")
    assert ade.num_classes == 151 and len(ade.palette) == 151
    assert (ade.class_names[1], ade.class_names[13], ade.class_names[150]) == (
        "wall",
        "person",
        "flag",
    )
    assert len(set(ade.class_names)) == 151
    cs = get_dataset_info("cityscapes")
    assert cs.class_names[1:] == PROTOCOL_ORDER
    assert cs.settings == ("overlapped",)
    assert cs.palette[1] == (128, 64, 128) and cs.palette[14] == (0, 0, 142)
    digits = get_dataset_info("digits")
    assert digits.class_names == [
        "background",
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
    ]


def test_voc_colormap_known_values() -> None:
    cmap = voc_colormap(256)
    assert cmap[:5] == [(0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0), (0, 0, 128)]
    assert cmap[255] == (224, 224, 192)  # VOC's boundary colour


def test_unknown_names_list_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'vocc'; valid datasets: voc, ade"):
        get_dataset_info("vocc")
    with pytest.raises(ValueError, match=r"unknown task '15-7'.*valid tasks: 19-1, 15-5"):
        get_task("voc", "15-7")
    with pytest.raises(ValueError, match=r"unknown dataset 'x'"):
        get_task("x", "15-5")
    with pytest.raises(ValueError, match=r"unknown setting 'mixed'; valid settings: disjoint"):
        check_setting("voc", "mixed")
    assert check_setting("cityscapes", "disjoint") == "disjoint"  # allowed, see tasks.py
    with pytest.raises(ValueError, match=r"step 2 out of range .*voc/15-5 \(steps 0..1\)"):
        get_task("voc", "15-5").classes_seen(2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["1..5"], "step 0 must contain background"),
        (["0..5", "5..6"], "more than one step"),
        (["0..5", "6..25"], r"classes \[21, 22, 23, 24, 25\] outside 0..20"),
        (["0..5", 7], "in class-index order"),
        (["0..5", "9..7"], "empty range"),
        (["0..5", "a..b"], "bad range"),
        (["0..5", 2.5], "bad class"),
        ([], "non-empty list"),
        ({"stepz": []}, "no 'steps'"),
        ({"steps": ["0..5", 6], "expected_counts": {"disjoint": [1]}}, "one per step"),
    ],
)
def test_bad_task_entries(spec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_task("voc", "bad", spec, 21)


def test_task_entry_forms() -> None:
    t = parse_task("voc", "x", ["0..2", [3, "4..5"], 6], 21)
    assert t.steps == ((0, 1, 2), (3, 4, 5), (6,))
    t = parse_task(
        "voc", "y", {"steps": ["0..1", 2], "expected_counts": {"disjoint": [5, None]}}, 21
    )
    assert t.expected_counts == {"disjoint": (5, None)}


def test_bad_dataset_entries() -> None:
    from ucd.data.tasks import _parse_dataset

    with pytest.raises(ValueError, match=r"dataset d: palette has 1 colours for 2 classes"):
        _parse_dataset("d", {"classes": ["background", "a"], "palette": [[0, 0, 0]]})
    with pytest.raises(ValueError, match=r"dataset d: settings must be among"):
        _parse_dataset("d", {"classes": ["background", "a"], "settings": ["joint"]})
    with pytest.raises(ValueError, match=r"empty step"):
        parse_task("voc", "e", ["0..3", []], 21)
