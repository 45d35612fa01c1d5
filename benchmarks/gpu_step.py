"""Training-step time and peak memory of FT, MiB and MiB+UCD at the paper's configuration.

One incremental step of VOC 15-1 (step 1: 16 old classes + 1 new): DeepLab-V3, ResNet-101,
output stride 16, crop 512, batch 12 per GPU, SGD; the new model trains and, for methods with
an old model, the frozen old model runs forward, with the method's terms (``ft``: ce;
``mib``: mib_ce + mib_kd; ``mib_ucd``: + ucd) built from ``ucd/methods/methods.yaml``. Random
images and labels (10% ignore 255), so no data is needed. Records seconds per iteration,
images/s (timed iterations after warm-up, CUDA-synchronised) and peak GPU memory, with the
card's name; the UCD overhead goal is at most 15% time.

``--times FILE`` adds the results to a step-times file (one entry per kind of job: plain, old,
ucd) that ``python -m ucd cost --times FILE`` uses before any other source; the default place
``ucd cost`` looks at is ``results/step_times.json``.

Usage: python benchmarks/gpu_step.py [--iters 20] [--amp bf16] [--channels-last] [--out x.json]
                                     [--times results/step_times.json]
CPU smoke: python benchmarks/gpu_step.py --device cpu --crop 128 --batch 2 --iters 2 --warmup 0
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from ucd.cost.measured import merge_times  # noqa: E402
from ucd.cost.rates import model_label  # noqa: E402
from ucd.data.tasks import get_task  # noqa: E402
from ucd.facts.config import DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig  # noqa: E402
from ucd.methods import Batch, Clock, StepContext, get_method, step_spec  # noqa: E402
from ucd.models import build_model  # noqa: E402
from ucd.training.distributed import precision_of  # noqa: E402

METHODS = ("ft", "mib", "mib_ucd")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_run(name: str, args: argparse.Namespace) -> RunConfig:
    """The run config of the benchmarked step (step 1 of VOC 15-1, the method's defaults)."""
    model = ModelConfig(backbone=args.backbone, output_stride=args.output_stride, width=args.width,
                        head_channels=args.head_channels, norm=args.norm, pretrained=None)
    amp = args.amp or "none"
    return RunConfig(dataset="voc", task="15-1", setting="overlapped", method=name,
                     base_method=name, step=1, seed=0, model=model,
                     optim=OptimConfig(batch_size=args.batch), data=DataConfig(crop_size=args.crop),
                     train=TrainConfig(amp=amp, channels_last=args.channels_last),
                     params=get_method(name).default_params())


def bench_method(name: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Seconds per iteration, images/s and peak memory of ``iters`` training iterations."""
    torch.manual_seed(0)
    run = bench_run(name, args)
    task = get_task("voc", "15-1")
    method = get_method(name)
    old = build_model(run.model, [list(c) for c in task.steps[:1]]).to(device).eval()
    for p in old.parameters():
        p.requires_grad_(False)
    model = build_model(run.model, [list(c) for c in task.steps[:1]])
    model.load_state_dict(old.state_dict())
    model.classifier.add_step(task.new_classes(1))
    model.to(device).train()
    if not method.needs_old_model(1):
        old = None
    prec = precision_of(run.train, device)
    for m in (model, old):
        if prec.channels_last and m is not None:
            m.to(memory_format=torch.channels_last)
    ctx = StepContext(run=run, task=task, step=1, model=model, old_model=old, device=device,
                      clock=Clock(step=1, max_iterations=args.warmup + args.iters))
    terms = method.build_terms(run.params, 1)
    for t in terms:
        t.before_step(ctx)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
    n_cls = len(task.classes_seen(1))
    images = prec.images(torch.randn(args.batch, 3, args.crop, args.crop, device=device))
    labels = torch.randint(0, n_cls, (args.batch, args.crop, args.crop), device=device)
    labels[torch.rand(labels.shape, device=device) < 0.1] = 255

    def step() -> None:
        with prec.autocast(device):
            out = model(images)
            with torch.no_grad():
                old_out = None if old is None else old(images)
            batch = Batch(images, labels, out, old_out, ctx)
            total = sum(t.weight * t.loss(batch) for t in terms)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        ctx.iteration += 1

    for _ in range(args.warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(args.iters):
        step()
    _sync(device)
    dt = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return {"method": name, "kind": step_spec(run).cost_kind(),
            "model": model_label(run.model, run.train.amp), "terms": [t.name for t in terms],
            "seconds": dt, "s_per_iter": dt / args.iters,
            "images_per_s": args.batch * args.iters / dt, "peak_gpu_mem_mb": peak}


def times_entries(results: list[dict], args: argparse.Namespace, card: str) -> list[dict]:
    """The results as step-times entries (ucd.cost.measured), one per kind of job."""
    return [{"kind": r["kind"], "model": r["model"], "crop": args.crop,
             "images_per_gpu": args.batch, "gpus": 0 if card == "cpu" else 1,
             "s_per_iter": r["s_per_iter"], "peak_gpu_mem_mb": r["peak_gpu_mem_mb"],
             "device": card, "torch": torch.__version__, "method": r["method"],
             "measured": time.strftime("%Y-%m-%dT%H:%M:%S")} for r in results]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--crop", type=int, default=512)
    parser.add_argument("--batch", type=int, default=12, help="images per GPU")
    parser.add_argument("--iters", type=int, default=20, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--output-stride", type=int, default=16, choices=[8, 16])
    parser.add_argument("--head-channels", type=int, default=256, help="ASPP output channels")
    parser.add_argument("--norm", default="auto", help="auto | iabn | abn")
    parser.add_argument("--amp", default=None, choices=["none", "bf16"])
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--times", default=None,
                        help="add the results to this step-times file (for ucd cost)")
    args = parser.parse_args(argv)
    if min(args.crop, args.batch, args.iters) < 1 or args.warmup < 0:
        parser.error("--crop, --batch and --iters must be >= 1 and --warmup >= 0")
    name = args.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results = [bench_method(m, args, device) for m in args.methods]
    by_name = {r["method"]: r for r in results}
    report = {"device": card, "torch": torch.__version__, "config": vars(args),
              "results": results}
    for r in results:
        mem = "-" if r["peak_gpu_mem_mb"] is None else f"{r['peak_gpu_mem_mb']:.0f} MiB"
        print(f"{card} {r['method']:8s} {r['kind']:6s} {r['s_per_iter']:7.3f} s/iter "
              f"{r['images_per_s']:8.2f} images/s  peak {mem}")
    if {"mib", "mib_ucd"} <= set(by_name):
        base, ucd = by_name["mib"], by_name["mib_ucd"]
        overhead = base["images_per_s"] / ucd["images_per_s"] - 1  # extra time per image
        report.update(ucd_time_overhead=overhead, overhead_goal_met=overhead <= 0.15)
        print(f"UCD time overhead: {100 * overhead:+.1f}% (goal <= 15%)")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    if args.times:
        merge_times(args.times, times_entries(results, args, card))
        print(f"step times added to {args.times} (python -m ucd cost reads them)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
