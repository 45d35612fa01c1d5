"""The config layers (ucd/planning/resolve.py): strict names, inheritance by variants,
`incremental:`, --explain, and the schema and check_static refusing unknown keys in every
section."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import jsonschema
import pytest
import yaml

from ucd.cli import main as ucd_main
from ucd.facts.config import SECTIONS, ConfigError, deep_merge
from ucd.planning.resolve import check_static, explain, resolve
from ucd.workflow.schema import workflow_schema

REPO = Path(__file__).resolve().parents[2]
SCHEMA = workflow_schema(REPO / "workflow/schemas/config.schema.yaml")
WHERE = {"dataset": "digits", "task": "5-5", "setting": "disjoint", "seed": 42}
# One unknown key per section, spelt like a real one (so 'did you mean' has something to say).
UNKNOWN = {"model": "widht", "optim": "lr_next", "data": "crop", "train": "amp_dtype",
           "eval": "unseen_classes", "labels": "ignore_to_bg"}


def base_config(**extra) -> dict:
    """A small workflow config: digits, lr 0.1 at step 0, two variants of mib_ucd."""
    cfg = {
        "datasets": {"digits": {"root": "data/digits", "optim": {"lr": 0.1, "epochs": 2}}},
        "variants": {
            "mib_ucd-tau0.1": {"method": "mib_ucd", "params": {"ucd": {"temperature": 0.1}}},
            "mib-bs4": {"method": "mib", "optim": {"batch_size": 4}},
        },
    }
    cfg.update(copy.deepcopy(extra))
    return cfg


def run(cfg: dict, method: str, step: int = 1):
    return resolve(cfg, method=method, step=step, **WHERE)


def workflow_config(change: dict) -> dict:
    """config.yaml with `change` merged in (for the schema, which needs every required key)."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in change.items():
        cfg[key] = value if not isinstance(value, dict) else {**cfg.get(key, {}), **value}
    return cfg


def schema_errors(cfg: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(cfg)]


# ------------------------------------------------------------- term and parameter names


def test_a_term_the_method_lacks_is_refused_naming_its_terms(tmp_path):
    cfg = base_config(method_params={"mib": {"kd": {"weight": 100}}})
    with pytest.raises(ConfigError, match=r"method_params\.mib.*no term 'kd'.*mib_kd"):
        check_static(cfg)
    with pytest.raises(ConfigError, match=r"no term 'kd' \(did you mean 'mib_kd'\?\); its terms: "
                                          r"mib_ce, mib_kd"):
        run(cfg, "mib")
    with pytest.raises(ConfigError, match="mib_kd"):
        run(cfg, "mib-bs4", step=0)  # the variant inherits the shorthand, and its error


def test_python_m_ucd_config_exits_non_zero_naming_the_term(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(base_config(method_params={"mib": {"kd": {"weight": 100}}})))
    args = ["config", str(path), "--dataset", "digits", "--task", "5-5", "--setting",
            "disjoint", "--method", "mib", "--step", "1"]
    assert ucd_main(args) != 0
    assert "mib_kd" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "ucd", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert proc.returncode != 0 and "did you mean 'mib_kd'" in proc.stderr, proc.stderr


def test_a_misspelt_parameter_names_the_right_one():
    cfg = base_config(method_params={"mib": {"mib_kd": {"wieght": 1}}})
    message = r"term 'mib_kd' has no parameter 'wieght' \(did you mean 'weight'\?\)"
    with pytest.raises(ConfigError, match=message):
        check_static(cfg)
    with pytest.raises(ConfigError, match=message):
        run(cfg, "mib")
    overrides = [{"match": {"method": "mib_ucd"}, "params": {"ucd": {"temprature": 0.2}}}]
    with pytest.raises(ConfigError, match=r"overrides\[0\].*'temprature'.*'temperature'"):
        check_static(base_config(overrides=overrides))


# ------------------------------------------------------------- what reaches which method


def test_an_override_on_a_method_reaches_its_variants():
    overrides = [{"match": {"method": "mib_ucd"}, "params": {"mib_kd": {"weight": 100}}}]
    cfg = base_config(overrides=overrides)
    variant = run(cfg, "mib_ucd-tau0.1")
    assert variant.params["mib_kd"]["weight"] == 100
    assert variant.params["ucd"]["temperature"] == 0.1  # and the variant keeps its own value
    assert run(cfg, "mib_ucd").params["mib_kd"]["weight"] == 100
    assert run(base_config(), "mib_ucd-tau0.1").params["mib_kd"]["weight"] == 10
    shorthand = base_config(method_params={"mib": {"mib_kd": {"weight": 50}}})
    assert run(shorthand, "mib-bs4").params["mib_kd"]["weight"] == 50


def test_an_override_on_a_variant_does_not_reach_its_method():
    overrides = [{"match": {"method": "mib_ucd-tau0.1"}, "params": {"ucd": {"weight": 0.5}}}]
    cfg = base_config(overrides=overrides)
    assert run(cfg, "mib_ucd-tau0.1").params["ucd"]["weight"] == 0.5
    assert run(cfg, "mib_ucd").params["ucd"]["weight"] == 0.01


def test_method_params_of_a_method_do_not_reach_methods_built_on_it():
    """Documented in ucd/planning/resolve.py: `base:` in methods.yaml is not inheritance of
    settings."""
    cfg = base_config(method_params={"mib": {"mib_kd": {"weight": 100}}})
    assert run(cfg, "mib").params["mib_kd"]["weight"] == 100
    assert run(cfg, "mib_ucd").params["mib_kd"]["weight"] == 10
    overrides = [{"match": {"method": "mib"}, "optim": {"batch_size": 6}}]
    assert run(base_config(overrides=overrides), "mib_ucd").optim.batch_size == 24
    assert "never methods derived from m with ``base:``" in " ".join(
        (REPO / "ucd/planning/resolve.py").read_text().split())


# ------------------------------------------------------------- incremental:


def test_incremental_beats_plain_values_of_every_layer_after_step0():
    cfg = base_config(
        overrides=[{"match": {"method": "mib"}, "optim": {"lr": 0.3, "epochs": 5}}],
        variants={"mib-fast": {"method": "mib", "optim": {"lr": 0.7}}},
    )
    cfg["datasets"]["digits"]["incremental"] = {"optim": {"lr": 0.005}}
    for method in ("mib", "mib-fast"):
        assert run(cfg, method, step=1).optim.lr == 0.005  # dataset's incremental wins
        assert run(cfg, method, step=1).optim.epochs == 5  # no incremental epochs: plain value
    assert run(cfg, "mib", step=0).optim.lr == 0.3  # incremental ignored at step 0
    assert run(cfg, "mib-fast", step=0).optim.lr == 0.7
    assert run(cfg, "ft", step=0).optim.lr == 0.1


def test_builtin_incremental_rate_applies_unless_a_layer_sets_one():
    cfg = base_config()
    assert run(cfg, "ft", step=0).optim.lr == 0.1
    assert run(cfg, "ft", step=1).optim.lr == 0.001  # the paper's 1e-3 after step 0
    later = base_config(overrides=[{"match": {"dataset": "digits"},
                                    "incremental": {"optim": {"lr": 0.02}}}])
    assert run(later, "ft", step=1).optim.lr == 0.02
    assert run(later, "ft", step=0).optim.lr == 0.1


# ------------------------------------------------------------- --explain


def test_explain_names_the_layer_of_each_value(capsys):
    cfg = base_config(overrides=[{"match": {"method": "mib_ucd"},
                                  "params": {"mib_kd": {"weight": 100}}}])
    cfg["datasets"]["digits"]["incremental"] = {"optim": {"epochs": 1}}
    values = explain(cfg, method="mib_ucd-tau0.1", step=1, **WHERE)
    assert values["params.ucd.temperature"] == (0.1, "4 variants.mib_ucd-tau0.1")
    assert values["params.mib_kd.weight"] == (100, "3 overrides[0]")
    assert values["params.ucd.weight"] == (0.01, "1 methods.yaml:mib_ucd")
    assert values["optim.epochs"] == (1, "2 datasets.digits.incremental")
    assert values["optim.lr"] == (0.001, "1 built-in.incremental")
    assert values["optim.momentum"] == (0.9, "1 built-in")
    assert explain(cfg, method="mib_ucd-tau0.1", step=0, **WHERE)["optim.lr"] == (
        0.1, "2 datasets.digits")
    resolved = run(cfg, "mib_ucd-tau0.1").to_dict()  # explain shows what resolve uses
    for key, (value, _) in values.items():
        node = resolved
        for part in key.split("."):
            node = node[part]
        assert node == value, key


def test_explain_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config()))
    assert ucd_main(["config", str(path), "--dataset", "digits", "--task", "5-5", "--setting",
                     "disjoint", "--method", "mib_ucd-tau0.1", "--step", "1", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# layers, later wins: 1 built-in, 2 dataset, 3 overrides, 4 variant")
    lines = {line.split()[0]: " ".join(line.split()[-2:]) for line in out[1:]}
    assert lines["params.ucd.temperature"] == "4 variants.mib_ucd-tau0.1"
    assert lines["optim.epochs"] == "2 datasets.digits"
    assert lines["optim.lr"] == "1 built-in.incremental"
    assert lines["labels.ignore_to_background"] == "1 methods.yaml:mib_ucd"


# ------------------------------------------------------------- unknown keys, every section


@pytest.mark.parametrize("section", list(SECTIONS))
def test_unknown_key_in_every_section_is_refused(section):
    bad = UNKNOWN[section]
    places = {
        "datasets.digits": {"datasets": {"digits": {"root": "results/data/digits",
                                                    "generate": True, section: {bad: 1}}}},
        "datasets.digits.incremental": {"datasets": {"digits": {
            "root": "results/data/digits", "generate": True, "incremental": {section: {bad: 1}}}}},
        "overrides[0]": {"overrides": [{"match": {"method": "mib"}, section: {bad: 1}}]},
        "variants.mib-x": {"variants": {"mib-x": {"method": "mib", section: {bad: 1}}}},
    }
    for where, change in places.items():
        assert any(bad in e for e in schema_errors(workflow_config(change))), (where, section)
        layered = {"datasets": {"digits": {"root": "x"}}, **change}
        with pytest.raises(ConfigError, match=rf"{section} has no key '{bad}'"):
            check_static(layered)


def test_unknown_match_key_is_refused():
    change = {"overrides": [{"match": {"methd": "mib"}, "params": {}}]}
    assert any("methd" in e for e in schema_errors(workflow_config(change)))
    with pytest.raises(ConfigError, match=r"overrides\[0\]\.match has no key 'methd' "
                                          r"\(did you mean 'method'\?\)"):
        check_static(base_config(**change))
    with pytest.raises(ConfigError, match=r"overrides\[0\]\.match\.setting: 'mixed'"):
        check_static(base_config(overrides=[{"match": {"setting": "mixed"}}]))


def test_schema_sections_have_the_run_config_fields():
    """The schema and the dataclasses name the same keys (data.root is set by datasets.<d>)."""
    for name, cls in SECTIONS.items():
        keys = {f.name for f in fields(cls)} - ({"root"} if name == "data" else set())
        assert set(SCHEMA["$defs"][name]["properties"]) == keys, name


def test_removed_keys_of_the_old_format_are_refused():
    with pytest.raises(ConfigError, match=r"optim has no key 'epochs_next'"):
        check_static(base_config(variants={"mib-x": {"method": "mib",
                                                     "optim": {"epochs_next": 2}}}))
    assert any("defaults" in e for e in schema_errors(workflow_config({"defaults": {"seed": 1}})))


@pytest.mark.parametrize("key, value", [("width", 8), ("output_stride", 16),
                                        ("backbone", "resnet50")])
def test_packaged_weights_of_another_backbone_are_refused_with_the_config(key, value):
    model = {"backbone": "resnet18", "width": 12, "output_stride": 8,
             "pretrained": "digits-resnet18-w12"}
    cfg = base_config()
    cfg["datasets"]["digits"]["model"] = model
    assert run(cfg, "ft", step=0).model.width == 12  # the weights' own backbone resolves
    cfg["datasets"]["digits"]["model"] = {**model, key: value}
    with pytest.raises(ConfigError, match=f"digits-resnet18-w12.*{key}"):
        run(cfg, "ft", step=0)


def test_every_value_of_every_grid_comes_from_one_of_four_layers():
    """The proof DESIGN.md cites: over every step of every grid (first seed), --explain names
    each value's layer, 1-4, and the places of a run come in layer order."""
    from tests.test_resolution_snapshot import GRIDS
    from ucd.planning.plan import Plan
    from ucd.planning.resolve import layers

    seen = set()
    for files in GRIDS.values():
        config: dict = {}
        for name in ("config.yaml", *files):
            config = deep_merge(config, yaml.safe_load((REPO / name).read_text()))
        plan = Plan(config)
        for cell in plan.cells:
            where = dict(zip(("dataset", "task", "setting", "method"), cell, strict=True))
            ranks = [layer.rank for layer in layers(config, **where)]
            assert ranks == sorted(ranks) and set(ranks) <= {1, 2, 3, 4}, (cell, ranks)
            for step in plan.steps(cell.dataset, cell.task, cell.method):
                values = explain(config, **where, step=step, seed=plan.seeds[0])
                for key, (_, label) in values.items():
                    assert re.fullmatch(r"run|[1-4] \S.*", label), (cell, step, key, label)
                    seen.add(label.split()[0])
    assert seen == {"run", "1", "2", "3", "4"}  # the grids use every layer
