"""The measured sources of ``ucd cost`` from the real producers: a trained and evaluated tiny
step (metrics.json + run.yaml) and ``benchmarks/gpu_step.py --times`` on the CPU."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import yaml

from tests.conftest import make_run
from ucd.cost.measured import finished_runs, load_times
from ucd.cost.rates import shape_of
from ucd.methods import step_spec

REPO = Path(__file__).resolve().parents[2]


def test_a_finished_run_gives_its_seconds_per_iteration(tiny_config, tiny_splits, tmp_path):
    import ucd.training.engine as engine
    from ucd.evaluation.evaluate import evaluate_checkpoint
    from ucd.training.checkpoint import load_checkpoint

    run = make_run(tiny_config, tiny_splits, method="ft")
    step = tmp_path / "results/digits/5-5/disjoint/ft/seed42/step0"
    engine.train_step(run, step / "model.pt")
    metrics, _ = evaluate_checkpoint(step / "model.pt")
    (step / "metrics.json").write_text(json.dumps(metrics))
    (step / "run.yaml").write_text(yaml.safe_dump(run.to_dict()))
    iterations = load_checkpoint(step / "model.pt")["metrics"]["iterations"]
    assert metrics["iterations"] == iterations > 0  # carried into metrics.json
    train, evals = finished_runs(tmp_path / "results", train_gpus=0, eval_gpus=0)
    assert [f.shape for f in train] == [shape_of(step_spec(run), 0)]
    assert train[0].seconds == metrics["train_time_s"] / iterations
    assert evals[0].seconds == metrics["eval_time_s"] / metrics["n_val_images"]


def test_gpu_step_writes_a_step_times_file_ucd_cost_reads(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_step", REPO / "benchmarks/gpu_step.py")
    gpu_step = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_step)
    out = tmp_path / "times.json"
    args = ["--device", "cpu", "--crop", "32", "--batch", "2", "--iters", "1", "--warmup", "0",
            "--backbone", "resnet18", "--width", "4", "--norm", "abn", "--times", str(out)]
    assert gpu_step.main(args) == 0
    figures = load_times(out)
    assert [f.shape.kind for f in figures] == ["plain", "old", "ucd"]  # ft, mib, mib_ucd
    assert {(f.shape.model, f.shape.crop, f.shape.per_gpu, f.shape.gpus) for f in figures} == {
        ("resnet18/os16/w4", 32, 2, 0)}
    assert gpu_step.main([*args, "--methods", "ft"]) == 0  # replaces ft's entry, keeps others
    assert len(load_times(out)) == 3
