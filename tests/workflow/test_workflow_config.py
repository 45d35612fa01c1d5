"""A bad workflow config fails at parse time with a message naming the key and the valid
values: JSON schema (structure, ranges) and registry checks (datasets, tasks, methods)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from workflow_helpers import SCHEMA, default_config, load_common, merged, snakemake


def check(*overrides: dict):
    """Run the Snakefile's checks (schema, then registries) on config.yaml + overrides."""
    config = merged(default_config(), *overrides)
    ns = load_common(config)
    ns["check_schema"](config, str(SCHEMA))
    return ns["check_config"](config)


def grid(benchmarks, methods):
    return {"grid": [{"benchmarks": benchmarks, "methods": methods}]}


def test_default_config_is_valid():
    cells = check()
    assert ("digits", "5-5", "overlapped", "plop_ucd") in cells
    grid = yaml.safe_load((Path(__file__).parents[2] / "config.yaml").read_text())["grid"][0]
    assert len(cells) == len(grid["benchmarks"]) * len(grid["methods"])


def test_negative_lr_names_the_key():
    with pytest.raises(ValueError, match=r"datasets\.digits\.optim\.lr: -0\.01 is less than"):
        check({"datasets": {"digits": {"optim": {"lr": -0.01}}}})


def test_misspelt_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"datasets\.digits\.optim: .*'lrr' was unexpected.*"
                                         r"valid keys: .*batch_size.*lr_next"):
        check({"datasets": {"digits": {"optim": {"lrr": 0.1}}}})


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
    assert check({"benchmark": "digits/5-5/disjoint/ft,digits/6-4/overlapped/mib"}) == [
        ("digits", "5-5", "disjoint", "ft"), ("digits", "6-4", "overlapped", "mib")]


def test_tables_not_on_the_embedded_benchmark():
    with pytest.raises(ValueError, match=r"report\.tables: table3 is not available on the "
                                         r"embedded benchmark; valid: table1"):
        check({"report": {"tables": ["table3"]}})


def test_generated_dataset_checks():
    with pytest.raises(ValueError, match=r"datasets\.digits\.root must be results/data/digits"):
        check({"datasets": {"digits": {"root": "elsewhere"}}})


def test_resources_map_to_snakemake_and_slurm_names():
    config = merged(default_config(), {"resources": {"train": {
        "gpus": 2, "slurm_partition": "gpu", "slurm_account": "", "gres": ""}}})
    ns = load_common(config)
    res = ns["resources_of"]("train")
    assert res == {"mem_mb": 4000, "runtime": 60, "slurm_partition": "gpu", "gpu": 2,
                   "cpus_per_task": 2}
    assert ns["threads_of"]("train") == 2
    with pytest.raises(ValueError, match=r"resources\.train\.cpus: 0 is less than the minimum"):
        check({"resources": {"train": {"cpus": 0}}})


def test_snakemake_reports_a_bad_config(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(grid(["digits/5-5/disjoint"], ["mibb"])))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "bad.yaml"))
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "unknown method 'mibb'; valid methods:" in out
