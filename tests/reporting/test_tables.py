"""tables.yaml: ids, rows, required runs, embedded mapping, derived column labels."""

from __future__ import annotations

import copy

import pytest

from ucd.facts import tablespec
from ucd.methods import list_methods
from ucd.reporting import tables as T


def test_every_paper_item_is_defined():
    specs = T.load_tables()
    assert list(specs) == [f"table{i}" for i in range(1, 10)] + ["figure10", "figure11"]
    assert [r.method for r in specs["table7"].rows] == ["mib_ucd_bg", "mib_ucd_oldnew", "mib_ucd"]
    assert [r.name for r in specs["table8"].rows] == ["1", "0.1", "0.07", "0.05", "0.01"]
    assert specs["table4"].decimals == 2 and specs["table1"].decimals == 1
    # Joint is never a candidate for bold/underline
    assert [r.part for r in specs["table1"].rows if r.method == "joint"] == [None]


def test_required_runs_of_table9_by_hand():
    runs = T.required_runs(["table9"])
    methods = ["mib_ucd-lam0", "mib_ucd-lam0.1", "mib_ucd", "mib_ucd-lam0.001", "mib_ucd-lam0.0001"]
    expected = [("voc", "15-5", "disjoint", m) for m in methods] + [
        ("voc", "19-1", "disjoint", m) for m in methods
    ]
    assert runs == expected


def test_required_runs_figures():
    fig11 = T.required_runs(["figure11"])
    assert len(fig11) == 10
    assert ("voc", "15-5", "disjoint", "mib-bs2") in fig11
    assert ("voc", "15-5", "disjoint", "mib_ucd") in fig11  # batch 24 = the plain method
    assert ("voc", "15-5", "disjoint", "mib-bs24") not in fig11
    fig10 = T.required_runs(["figure10"])
    assert {r[3] for r in fig10} == {r.method for r in T.load_tables()["table8"].rows}
    assert {r[:3] for r in fig10} == {("voc", "15-1", "disjoint")}


def test_required_runs_skip_reference_only_and_deduplicate():
    runs = T.required_runs(["table1", "table2", "table3", "table6"])
    assert len(runs) == len(set(runs))
    assert not {r for r in runs if r[3] == "incseg"}  # Table 3's Inc.Seg row: reference only
    # RECALL is trained: every block of Tables 1-2 (VOC) has its cell
    blocks = {(b.dataset, b.task, b.setting)
              for t in ("table1", "table2") for b in T.load_tables()[t].blocks}
    assert {r[:3] for r in runs if r[3] == "recall"} == blocks and len(blocks) == 10
    # 6 benchmarks x 17 rows
    assert sum(1 for r in runs if r[1] in ("19-1", "15-1") or r[1] == "15-5") >= 6 * 17
    # table6's mib on voc 15-5 disjoint is also table1's: listed once
    assert runs.count(("voc", "15-5", "disjoint", "mib")) == 1
    assert ("ade", "100-50", "disjoint", "mib_segcon") in runs
    everything = T.required_runs()
    assert set(runs) <= set(everything)


def test_unknown_id_is_named():
    with pytest.raises(ValueError, match="unknown table or figure 'table42'.*table1"):
        T.required_runs(["table42"])


def test_embedded_mapping():
    assert T.available(embedded=True) == [
        "table1",
        "table2",
        "table6",
        "table7",
        "table8",
        "table9",
        "figure10",
        "figure11",
    ]
    assert T.required_runs(["table8"], embedded=True) == [
        ("digits", "5-5", "disjoint", r.method) for r in T.load_tables()["table8"].rows
    ]
    t2 = T.get_spec("table2", embedded=True)
    assert [b.benchmark for b in t2.blocks] == ["digits/6-4/disjoint", "digits/6-4/overlapped"]
    assert T.get_spec("figure10", embedded=True).block.benchmark == "digits/5-1/disjoint"
    assert T.get_spec("table9", embedded=True).caption.startswith("Embedded digits benchmark")
    with pytest.raises(ValueError, match="table3 is not available on the embedded benchmark"):
        T.get_spec("table3", embedded=True)
    # unavailable embedded tables are skipped, not an error, in a grid listing
    assert T.required_runs(["table3", "table9"], embedded=True) == T.required_runs(
        ["table9"], embedded=True
    )


@pytest.mark.parametrize(
    ("benchmark", "key", "label"),
    [
        ("voc/15-5/disjoint", "old", "1-15"),
        ("voc/15-5/disjoint", "new", "16-20"),
        ("voc/19-1/disjoint", "new", "20"),
        ("voc/15-1/disjoint", "new", "16-20"),
        ("ade/100-10/disjoint", "step1", "101-110"),
        ("ade/100-10/disjoint", "step5", "141-150"),
        ("ade/50-50/overlapped", "new", "51-150"),
        ("cityscapes/13-6/overlapped", "new", "14-19"),
        ("digits/5-5/disjoint", "old", "1-5"),
        ("digits/5-5/disjoint", "new", "6-10"),
        ("digits/8-2/overlapped", "new", "9-10"),
        ("voc/15-5/disjoint", "all", "mIoU"),
    ],
)
def test_column_labels_come_from_the_task(benchmark, key, label):
    block = T.Block(*T.parse_benchmark(benchmark), (key,))
    assert T.column_label(block, key, all_label="mIoU") == label


def test_class_range_label():
    assert T.class_range_label([3, 1, 2, 7, 9, 8]) == "1-3,7-9"
    assert T.class_range_label([20]) == "20"
    assert T.class_range_label([]) == "-"


def test_column_classes_after_a_step():
    assert T.column_classes("voc", "15-1", "new", step=2) == [16, 17]
    assert T.column_classes("voc", "15-1", "all", step=0) == list(range(1, 16))
    with pytest.raises(ValueError, match="'step7'.*has 6 steps"):
        T.column_classes("ade", "100-10", "step7")


def test_bad_definitions_are_rejected():
    raw = copy.deepcopy(T.settings())
    raw["tables"]["table1"]["columns"] = ["old", "bogus"]
    with pytest.raises(ValueError, match="table1: unknown column 'bogus'"):
        tablespec._parse(raw)
    raw = copy.deepcopy(T.settings())
    raw["tables"]["table7"]["rows"][0]["lead"] = [1, 1]
    with pytest.raises(ValueError, match="table7: row 'mib_ucd_bg' has 2 marks, expected 9"):
        tablespec._parse(raw)
    raw = copy.deepcopy(T.settings())
    raw["tables"]["table2"]["rows"].append({"method": "nosuch", "part": 1})
    with pytest.raises(ValueError, match="method 'nosuch' has no display name"):
        tablespec._parse(raw)
    with pytest.raises(ValueError, match="'voc/15-5' must read 'dataset/task/setting'"):
        T.parse_benchmark("voc/15-5")


def test_tables_use_registered_tasks_and_methods():
    from ucd.data.tasks import get_task

    for spec in T.load_tables().values():
        blocks = spec.blocks if isinstance(spec, T.TableSpec) else (spec.block,)
        for b in blocks:
            get_task(b.dataset, b.task)  # raises if the registry lacks it
    for task in T.settings()["embedded"]["tasks"].values():
        get_task("digits", task)
    registered = set(list_methods())
    bases = {r[3].split("-", 1)[0] for r in T.required_runs()}
    assert bases <= registered, sorted(bases - registered)
