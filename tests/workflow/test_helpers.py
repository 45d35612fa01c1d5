"""ucd.workflow.helpers and ucd.workflow.fork_server: the files and arguments the rules get,
checked against paths written out by hand from the results path scheme (DESIGN.md)."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from ucd.facts.config import ConfigError, deep_merge
from ucd.workflow.checks import check_config
from ucd.workflow.fork_server import fork_server_dir
from ucd.workflow.helpers import WorkflowHelpers, decoded_arg, prev_arg, ucd_command

REPO = Path(__file__).resolve().parents[2]
SHARED0 = r"results/digits/_shared/step0-[0-9a-f]+/seed42/step0"
JOINT = r"results/digits/_shared/joint-[0-9a-f]+/seed42/step0"


def helpers(**override: object) -> WorkflowHelpers:
    """The helpers of config.yaml with `override` merged over it (as --config does)."""
    config = deep_merge(yaml.safe_load((REPO / "config.yaml").read_text()), override)
    config["ucd_command"] = ucd_command(config)
    return WorkflowHelpers(config, check_config(config))


def job(method: str = "mib", step: int = 1, setting: str = "disjoint", **more: str):
    """The wildcards of a job on digits 5-5, seed 42."""
    return SimpleNamespace(dataset="digits", task="5-5", setting=setting, method=method,
                           seed="42", step=str(step), **more)


class Input(dict):
    """A rule's `input` as an input function sees it: names as attributes."""

    __getattr__ = dict.__getitem__


def test_a_step_after_a_shared_step0_reads_its_checkpoint_split_and_data():
    files = helpers().train_inputs(job("mib", 1))
    assert re.fullmatch(f"{SHARED0}/model.pt", files.pop("prev"))
    assert files == {"split": "results/splits/digits/5-5/disjoint.json",
                     "data": "results/data/digits", "decoded": "results/decoded/digits"}


def test_a_shared_step_asks_for_a_file_no_rule_makes():
    assert helpers().train_inputs(job("mib", 0)) == {
        "shared": "results/digits/5-5/disjoint/mib/seed42/step0/"
                  ".shared-training-not-trained-here"}


def test_a_step_the_task_lacks_is_refused_with_the_valid_steps():
    with pytest.raises(ConfigError, match=r"^mib on digits/5-5 has steps 0, 1, not 2$"):
        helpers().train_inputs(job("mib", 2))


def test_an_unknown_shared_training_is_refused():
    w = SimpleNamespace(dataset="digits", group="step0-0123456789", seed="42")
    with pytest.raises(ConfigError, match="no run of the grid uses the shared training "
                                          "'step0-0123456789' with seed 42"):
        helpers().shared_train_inputs(w)


def test_final_waits_for_every_step_and_shared_metrics_point_at_the_group():
    wf = helpers()
    assert wf.final_inputs(job("plop")) == [
        "results/digits/5-5/disjoint/plop/seed42/step0/metrics.json",
        "results/digits/5-5/disjoint/plop/seed42/step1/metrics.json"]
    assert re.fullmatch(f"{SHARED0}/metrics.json", wf.shared_metrics(job("plop", 0)))
    # a step the cell trains itself names a file no rule makes, so `train` makes its metrics
    assert wf.shared_metrics(job("plop", 1)) == (
        "results/digits/_shared/.none/seed42/step0/metrics.json")


def test_run_json_is_the_resolved_run_config():
    wf = helpers()
    assert yaml.safe_load(wf.step_run_json(job("mib_ucd", 1))) == wf.step_run_dict(
        job("mib_ucd", 1))
    run = wf.step_run_dict(job("mib_ucd", 1))
    assert (run["method"], run["step"], run["seed"], run["optim"]["lr"]) == ("mib_ucd", 1, 42,
                                                                             0.001)


def test_command_line_arguments_of_optional_inputs():
    assert prev_arg(None, Input(prev="a/model.pt")) == "--prev a/model.pt"
    assert prev_arg(None, Input(split="s.json")) == ""
    assert decoded_arg(None, Input(decoded="results/decoded/digits")) == (
        "--decoded results/decoded/digits")
    assert decoded_arg(None, Input()) == ""


def test_replay_arguments_name_the_source_quoted():
    assert helpers().replay_args("digits") == "--source digits --root results/data/digits --seed 0"
    wf = helpers(replay={"digits": {"source": "folder", "root": "my images", "seed": 3}})
    assert shlex.split(wf.replay_args("digits")) == ["--source", "folder", "--root",
                                                     "my images", "--seed", "3"]


def test_report_targets_of_the_default_grid():
    assert helpers().report_targets() == [
        "results/summary.csv", "results/claims.md", "results/fidelity.md",
        "results/tables/table1.tex", "results/tables/table1.html",
        "results/figures/curves/digits/5-5/disjoint.png",
        "results/figures/curves/digits/5-5/overlapped.png",
        "results/figures/qualitative/digits/5-5/disjoint.png",
        "results/figures/qualitative/digits/5-5/overlapped.png"]


def test_table_outputs_and_unavailable_tables():
    wf = helpers()
    assert wf.table_outputs("table1") == ["results/tables/table1.tex",
                                          "results/tables/table1.html"]
    assert wf.table_outputs("figure10") == ["results/figures/figure10.pdf",
                                            "results/figures/figure10.png"]
    with pytest.raises(ConfigError, match="table3 is not available on the embedded benchmark"):
        wf.table_outputs("table3")


def test_qualitative_maps_name_each_shown_method_by_its_display_name():
    pairs = shlex.split(helpers().predictions_args("digits", "5-5", "disjoint"))
    found = dict(p.split("=", 1) for p in pairs)
    assert list(found) == ["FT", "MiB", "MiB+UCD", "PLOP", "PLOP+UCD", "Joint"]
    assert found["MiB+UCD"] == "results/digits/5-5/disjoint/mib_ucd/seed42/step1/predictions.npz"
    assert re.fullmatch(f"{JOINT}/predictions.npz", found["Joint"])


def test_note_is_quoted_for_the_shell():
    assert helpers().note_arg() == ""
    note = helpers(report={"note": "it's a rehearsal"}).note_arg()
    assert note.startswith(" --note ") and shlex.split(note) == ["--note", "it's a rehearsal"]


def test_ucd_command_auto_is_this_interpreter():
    assert ucd_command({"ucd_command": "auto"}) == f"{shlex.quote(sys.executable)} -m ucd"
    assert ucd_command({}) == f"{shlex.quote(sys.executable)} -m ucd"
    assert ucd_command({"ucd_command": "ucd"}) == "ucd"


def test_several_gpus_train_through_torchrun():
    assert helpers().train_launcher() == f"{shlex.quote(sys.executable)} -m ucd"
    launcher = helpers(resources={"train": {"gpus": 4}}).train_launcher()
    assert launcher.endswith(" -m torch.distributed.run --standalone --nproc_per_node=4 -m -- ucd")
    assert helpers(resources={"train": {"gpus": 1}}).train_launcher().endswith(" -m ucd")


def test_the_fork_server_serves_local_single_process_trainings_only():
    local = SimpleNamespace(local_exec=True, is_main_process=True)
    assert fork_server_dir(helpers(), local) == os.path.abspath("results/.ucd-zygote")
    assert fork_server_dir(helpers(fork_server=False), local) is None
    assert fork_server_dir(helpers(), SimpleNamespace(local_exec=False,
                                                      is_main_process=True)) is None
    assert fork_server_dir(helpers(), SimpleNamespace(local_exec=True,
                                                      is_main_process=False)) is None
    assert fork_server_dir(helpers(resources={"train": {"gpus": 2}}), local) is None


def test_rule_files_hold_rules_not_python_functions():
    """The workflow's Python lives in ucd/workflow (linted, tested, in the import graph): the
    Snakefile and the rule files define no function or class of their own."""
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    assert len(files) > 1
    for path in files:
        defs = [line for line in path.read_text().splitlines()
                if re.match(r"\s*(async\s+)?(def|class)\s", line)]
        assert not defs, (path.name, defs)
