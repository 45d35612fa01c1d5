"""A bad workflow config fails at parse time with a message naming the key and the valid
values: JSON schema (structure, ranges) and registry checks (datasets, tasks, methods); a good
one gives the plan (cells and seeds) the Snakefile reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from workflow_helpers import SCHEMA, default_config, merged, snakemake

from ucd.planning.plan import Plan
from ucd.workflow.checks import check_config, check_schema
from ucd.workflow.helpers import WorkflowHelpers


def check(*overrides: dict) -> Plan:
    """Run the Snakefile's checks (schema, then registries) on config.yaml + overrides; the
    plan."""
    config = merged(default_config(), *overrides)
    check_schema(config, SCHEMA)
    return check_config(config)


def grid(benchmarks, methods):
    return {"grid": [{"benchmarks": benchmarks, "methods": methods}]}


def test_default_config_is_valid():
    plan = check()
    assert ("digits", "5-5", "overlapped", "plop_ucd") in plan.cells
    config = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())
    grid = config["grid"][0]
    assert len(plan.cells) == len(grid["benchmarks"]) * len(grid["methods"])
    assert plan.seeds == tuple(config["seeds"])


def test_seeds_are_checked_by_the_schema():
    with pytest.raises(ValueError, match=r"seeds: \[\] should be non-empty"):
        check({"seeds": []})
    with pytest.raises(ValueError, match=r"seeds\.1: -1 is less than the minimum of 0"):
        check({"seeds": [1, -1]})
    with pytest.raises(ValueError, match=r"seeds: \[3, 3\] has non-unique elements"):
        check({"seeds": [3, 3]})
    with pytest.raises(ValueError, match=r"seeds\.0: 'x1' does not match"):
        check({"seeds": ["x1"]})
    assert check({"seeds": [7]}).seeds == (7,)
    assert check({"seeds": ["7", "8"]}).seeds == (7, 8)  # as `--config seeds=[7,8]` gives them


def test_negative_lr_names_the_key():
    with pytest.raises(ValueError, match=r"datasets\.digits\.optim\.lr: -0\.01 is less than"):
        check({"datasets": {"digits": {"optim": {"lr": -0.01}}}})


def test_misspelt_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"datasets\.digits\.optim: .*'lrr' was unexpected.*"
                                         r"valid keys: .*batch_size.*lr.*weight_decay"):
        check({"datasets": {"digits": {"optim": {"lrr": 0.1}}}})


def test_keys_of_the_old_format_are_refused():
    """lr_next/epochs_next became `incremental:`; `defaults:` became the built-in layer."""
    with pytest.raises(ValueError, match=r"datasets\.digits\.optim: .*'lr_next' was unexpected"):
        check({"datasets": {"digits": {"optim": {"lr_next": 0.01}}}})
    with pytest.raises(ValueError, match=r"\(top level\): .*'defaults' was unexpected"):
        check({"defaults": {"seed": 1}})


def test_a_term_the_method_lacks_is_refused_at_parse_time():
    with pytest.raises(ValueError, match=r"method_params\.mib: method 'mib' has no term 'kd' "
                                         r"\(did you mean 'mib_kd'\?\)"):
        check({"method_params": {"mib": {"kd": {"weight": 100}}}})


def test_unknown_method_lists_the_methods():
    with pytest.raises(ValueError) as err:
        check(grid(["digits/5-5/disjoint"], ["ft", "mib_ucdd"]))
    msg = str(err.value)
    assert "run digits/5-5/disjoint/mib_ucdd" in msg and "unknown method 'mib_ucdd'" in msg
    assert "valid methods:" in msg and "mib_ucd" in msg and "plop" in msg
    assert "variants: mib_ucd-tau1" in msg


def test_unknown_dataset_lists_the_datasets():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'; valid datasets: .*digits"):
        check(grid(["mnist/5-5/disjoint"], ["ft"]))
    with pytest.raises(ValueError, match=r"datasets\.mnist: unknown dataset 'mnist'"):
        check({"datasets": {"mnist": {"root": "x"}}})


def test_unknown_task_lists_the_tasks():
    with pytest.raises(ValueError, match=r"run digits/7-3/disjoint/ft: unknown task '7-3' for "
                                         r"dataset 'digits'; valid tasks: 5-5, 5-1, 8-2, 6-4"):
        check(grid(["digits/7-3/disjoint"], ["ft"]))


def test_bad_setting_is_caught_by_the_schema():
    with pytest.raises(ValueError, match=r"grid\.0\.benchmarks\.0: 'digits/5-5/mixed' .*"
                                         r"disjoint or overlapped"):
        check(grid(["digits/5-5/mixed"], ["ft"]))


def test_unconfigured_dataset_and_bad_variant():
    with pytest.raises(ValueError, match=r"dataset 'voc' has no entry under datasets "
                                         r"\(configured: digits\)"):
        check(grid(["voc/15-5/disjoint"], ["ft"]))
    with pytest.raises(ValueError, match=r"variants\.foo-x\.method is 'foo'; valid methods: ft"):
        check({"variants": {"foo-x": {"method": "foo"}}})
    with pytest.raises(ValueError, match=r"variants: .*'foo' does not match"):
        check({"variants": {"foo": {"method": "ft"}}})


def test_benchmark_option_is_checked():
    with pytest.raises(ValueError, match=r"must read 'dataset/task/setting/method'"):
        check({"benchmark": "digits/5-5/ft"})
    assert check({"benchmark": "digits/5-5/disjoint/ft,digits/6-4/overlapped/mib"}).cells == [
        ("digits", "5-5", "disjoint", "ft"), ("digits", "6-4", "overlapped", "mib")]


def test_tables_not_on_the_embedded_benchmark():
    with pytest.raises(ValueError, match=r"report\.tables: table3 is not available on the "
                                         r"embedded benchmark; valid: table1"):
        check({"report": {"tables": ["table3"]}})


def test_generated_dataset_checks():
    with pytest.raises(ValueError, match=r"datasets\.digits\.root must be results/data/digits"):
        check({"datasets": {"digits": {"root": "elsewhere"}}})
    with pytest.raises(ValueError, match=r"datasets\.cityscapes\.root must be out/data/cityscapes"):
        check({"results": "out", "grid": grid(["cityscapes/13-1/overlapped"], ["ft"])["grid"],
               "datasets": {"cityscapes": {"root": "results/data/cityscapes", "generate": True}}})


def test_a_generated_dataset_the_grid_does_not_read_is_not_checked():
    """config.yaml's digits entry (results/data/digits) refused the paper's grid once its
    results moved (the rehearsal's results/rehearsal): only datasets the grid reads must be
    where generate_data writes them."""
    plan = check({"results": "out", "grid": grid(["cityscapes/13-1/overlapped"], ["ft"])["grid"],
                  "datasets": {"cityscapes": {"root": "out/data/cityscapes", "generate": True}}})
    assert {c.dataset for c in plan.cells} == {"cityscapes"}


def test_resources_map_to_snakemake_and_slurm_names():
    config = merged(default_config(), {"resources": {"train": {
        "cpus": 3, "gpus": 2, "slurm_partition": "gpu", "slurm_account": "", "gres": ""}}})
    wf = WorkflowHelpers(config, check_config(config))
    res = wf.resources_of("train")
    mem = default_config()["resources"]["train"]["mem_mb"]
    assert res == {"mem_mb": mem, "runtime": 60, "slurm_partition": "gpu", "gpu": 2,
                   "cpus_per_task": 3}
    assert wf.threads_of("train") == 3
    with pytest.raises(ValueError, match=r"resources\.train\.cpus: 0 is less than the minimum"):
        check({"resources": {"train": {"cpus": 0}}})


def test_snakemake_reports_a_bad_config(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(grid(["digits/5-5/disjoint"], ["mibb"])))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "bad.yaml"))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "unknown method 'mibb' (did you mean 'mib'?); valid methods:" in out
