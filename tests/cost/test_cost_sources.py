"""Where ``ucd cost`` takes its numbers from: images per step (split file, published count,
estimate), the kind of a job, and seconds per iteration (the user's measurement file, then
finished runs, then the paper's Table 7), each in that order."""

from __future__ import annotations

import dataclasses
import inspect
import json

import pytest
import yaml

from ucd.cost.counts import iterations, step_images
from ucd.cost.measured import finished_runs, load_times, merge_times
from ucd.cost.rates import Rates, Shape, shape_of, table7
from ucd.facts.config import ConfigError, DataConfig, OptimConfig, RunConfig
from ucd.methods import default_spec, get_method, step_spec

# Paper Table 7, MiB+UCD row: 78 minutes for the incremental step of VOC 15-5 disjoint
# (2145 published images, 30 epochs, batch 24 on 2 GPUs x 12), 41.8 GB over the 2 GPUs.
T7_S_PER_ITER = 78 * 60 / (30 * (2145 // 24))
UCD_24 = Shape("ucd", "resnet101/os16", 512, 24, 24, 1)  # the paper's job on one GPU


def _run(method: str = "mib_ucd", step: int = 1, **changes) -> RunConfig:
    run = RunConfig(dataset="voc", task="15-5", setting="disjoint", method=method,
                    base_method=method, step=step, seed=42,
                    params=get_method(method).default_params())
    return run.replace(**changes)


# ------------------------------------------------------------------ images per step


def test_a_split_file_beats_the_published_count(tmp_path):
    from ucd.data.splits import FORMAT, save_split

    split = {"format": FORMAT, "dataset": "voc", "task": "15-5", "setting": "disjoint",
             "steps": [], "counts": [100, 37], "ids": [], "image_classes": {},
             "inputs": {"n_files": 0, "hash": "", "files": []}}
    save_split(split, tmp_path / "s.json")
    run = _run(data=DataConfig(split=str(tmp_path / "s.json")))
    count = step_images(run, joint=False)
    assert (count.images, count.origin) == (37, "split")
    without = step_images(_run(data=DataConfig(split=str(tmp_path / "none.json"))), joint=False)
    assert (without.images, without.origin) == (2145, "published")  # docs/protocol.md


def test_step0_of_15_1_is_counted_as_15_5s_step0():
    count = step_images(_run(task="15-1", step=0), joint=False)
    assert (count.images, count.origin) == (8437, "published") and "15-5" in count.source


def test_a_step_without_published_count_is_an_estimate_that_says_so():
    count = step_images(_run(task="10-1", step=3), joint=False)
    assert count.origin == "estimate" and count.images == 10582 * 1 // 20
    assert "estimate" in count.source and "10582" in count.source


def test_joint_trains_on_the_whole_training_set():
    count = step_images(_run(method="joint", step=0, data=DataConfig(root="/nonexistent")),
                        joint=True)
    assert (count.images, count.origin) == (10582, "published")


def test_iterations_drop_the_last_partial_batch():
    run = _run(optim=OptimConfig(epochs=3, batch_size=24))
    assert iterations(run, 50) == 3 * 2 and iterations(run, 23) == 0


def test_replayed_images_take_part_of_every_batch():
    recall = _run(method="recall", optim=OptimConfig(epochs=3, batch_size=24))
    assert iterations(recall, 50) == 3 * (50 // 12)  # ratio 1: 12 new + 12 replayed per batch
    quarter = recall.replace(params={"recall_ce": {"replay_ratio": 1 / 3}})
    assert iterations(quarter, 50) == 3 * (50 // 18)  # 18 new + 6 replayed
    assert iterations(recall.replace(step=0), 50) == 3 * 2  # step 0 replays nothing


def test_digits_sizes_in_tasks_yaml_are_the_generators_defaults():
    from ucd.data import digits
    from ucd.data.tasks import get_dataset_info

    defaults = inspect.signature(digits.generate).parameters
    images = get_dataset_info("digits").images
    assert images == {"train": defaults["n_train"].default, "val": defaults["n_val"].default}


# ------------------------------------------------------------------ kinds of jobs


def test_kind_of_a_job_follows_its_terms():
    def kind(method: str, step: int = 1, **params) -> str:
        run = _run(method, step)
        return step_spec(run.replace(params={**run.params, **params})).cost_kind()

    assert kind("ft") == "plain" and kind("ft", 0) == "plain"
    assert kind("mib") == "old"
    assert kind("mib_ucd") == "ucd"
    assert kind("mib_ucd", ucd={"weight": 0.0}) == "old"  # a zero-weight term is not trained
    assert kind("mib_ucd_bg") == "ucd+bg+oldnew"
    assert default_spec("mib_pixcon", "voc/15-5/disjoint", 1).cost_kind() == "pixcon"
    with pytest.raises(ConfigError, match="step 0 of mib is ft's shared step 0"):
        kind("mib", 0)  # the plan trains it as ft's run


def test_shape_divides_the_global_batch_over_the_gpus():
    run = _run(optim=OptimConfig(batch_size=24))
    spec = step_spec(run)
    assert shape_of(spec, 2).per_gpu == 12 and shape_of(spec, 0).per_gpu == 24
    assert shape_of(spec, 1) == UCD_24


# ------------------------------------------------------------------ seconds per iteration


def test_table7_gives_seconds_per_iteration_and_memory_per_gpu():
    fig = table7().figure(UCD_24)
    assert fig.seconds == pytest.approx(2 * T7_S_PER_ITER)  # 24 images per GPU, not 12
    assert fig.mem_gb == pytest.approx(41.8 / 2 * 2)
    assert fig.source.startswith("paper Table 7, mib_ucd row")
    bg = table7().figure(dataclasses.replace(UCD_24, kind="ucd+bg+oldnew"))
    assert bg.seconds == pytest.approx(2 * 147 * 60 / (30 * 89)) and "mib_ucd_bg" in bg.source
    plain = table7().figure(dataclasses.replace(UCD_24, kind="plain", per_gpu=12, micro=12))
    assert plain.seconds == pytest.approx(T7_S_PER_ITER) and "no plain row" in plain.note
    assert table7().figure(dataclasses.replace(UCD_24, gpus=0)) is None  # not for CPU jobs


def _finished_run(results, train_time_s: float, iterations: int | None) -> None:
    step = results / "voc/15-5/disjoint/mib_ucd/seed42/step1"
    step.mkdir(parents=True)
    (step / "run.yaml").write_text(yaml.safe_dump(_run().to_dict()))
    metrics = {"train_time_s": train_time_s, "images_per_s": 24 * 200 / train_time_s,
               "peak_gpu_mem_mb": 30 * 1024, "eval_time_s": 29.0, "n_val_images": 1449}
    if iterations:
        metrics["iterations"] = iterations
    (step / "metrics.json").write_text(json.dumps(metrics))


def test_sources_are_chosen_measured_then_finished_then_table7(tmp_path):
    merge_times(tmp_path / "times.json", [{
        "kind": "ucd", "model": "resnet101/os16", "crop": 512, "images_per_gpu": 24, "gpus": 1,
        "s_per_iter": 2.5, "peak_gpu_mem_mb": 20 * 1024, "device": "test card"}])
    measured = load_times(tmp_path / "times.json")
    _finished_run(tmp_path / "results", train_time_s=600.0, iterations=200)
    finished, _ = finished_runs(tmp_path / "results", train_gpus=1, eval_gpus=1)
    paper = table7()
    first = Rates(measured, finished, paper).train(UCD_24)
    assert (first.seconds, first.mem_gb) == (2.5, 20) and "test card" in first.source
    second = Rates([], finished, paper).train(UCD_24)
    assert (second.seconds, second.mem_gb) == (3.0, 30) and "finished" in second.source
    third = Rates([], [], paper).train(UCD_24)
    assert third.seconds == pytest.approx(2 * T7_S_PER_ITER) and "Table 7" in third.source


def test_finished_runs_without_iterations_use_images_per_second(tmp_path):
    _finished_run(tmp_path, train_time_s=400.0, iterations=None)
    train, evals = finished_runs(tmp_path, train_gpus=1, eval_gpus=1)
    assert train[0].seconds == pytest.approx(400.0 / 200)  # 200 batches of 24 images
    assert evals[0].seconds == pytest.approx(29.0 / 1449)


def test_a_measurement_at_another_batch_is_scaled_and_says_so(tmp_path):
    merge_times(tmp_path / "t.json", [{
        "kind": "ucd", "model": "resnet101/os16", "crop": 512, "images_per_gpu": 12, "gpus": 1,
        "s_per_iter": 1.0, "device": "c"}])
    fig = Rates(load_times(tmp_path / "t.json"), [], table7()).train(UCD_24)
    assert fig.seconds == 2.0 and "x2 from 12 images" in fig.note


def test_exact_measurements_give_their_median(tmp_path):
    entries = [{"kind": "ucd", "model": "resnet101/os16", "crop": 512, "images_per_gpu": 24,
                "gpus": 1, "s_per_iter": s, "device": d} for s, d in ((1.0, "a"), (3.0, "b"))]
    merge_times(tmp_path / "t.json", entries)
    assert Rates(load_times(tmp_path / "t.json"), [], table7()).train(UCD_24).seconds == 2.0


def test_a_bad_measurement_file_is_named(tmp_path):
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="t.json.*ucd-step-times/1"):
        load_times(path)
    path.write_text(json.dumps({"format": "ucd-step-times/1", "entries": [{"kind": "ucd"}]}))
    with pytest.raises(ValueError, match=r"entries\[0\]\.model"):
        load_times(path)


def test_gpu_memory_check_flags_a_batch_that_does_not_fit():
    from ucd.cost.counts import Count
    from ucd.cost.dag import Job
    from ucd.cost.estimate import JobCost, Part
    from ucd.cost.report import figures_section

    fig = table7().figure(UCD_24)  # 41.8 GB on one GPU at 24 images
    costs = [JobCost(Job("train"), parts=[Part("train", Count(2145, "", "published"), 2670,
                                               UCD_24, fig)])]
    assert "DOES NOT FIT in 40 GB" in "\n".join(figures_section(costs, 40.0))
    assert " fits " in "\n".join(figures_section(costs, 48.0))
