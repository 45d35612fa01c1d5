"""Command line: ``python -m ucd`` / ``ucd``. Subcommands are thin wrappers the workflow calls."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml


def _cmd_methods(args: argparse.Namespace) -> int:
    from ucd.methods import describe_methods

    print("\n".join(describe_methods()))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ucd.facts.config import RunConfig, load_run, write_yaml_atomic
    from ucd.training.engine import train_step
    from ucd.training.resume import Preempted

    if args.run_json:  # the workflow passes the resolved config; it is kept beside the model
        run = RunConfig.from_dict(json.loads(args.run_json), where="--run-json")
        write_yaml_atomic(run, Path(args.out).with_name("run.yaml"))
    else:
        run = load_run(args.run)
    if args.decoded:
        _use_decoded(args.decoded, run.data.root)
    try:
        metrics = train_step(run, Path(args.out), prev=args.prev)
    except Preempted as stop:
        print(f"ucd train: {stop.message}", file=sys.stderr)
        return stop.code
    logging.getLogger("ucd").info(
        "trained %s step %d in %.1f s (%.1f images/s)",
        run.method, run.step, metrics["train_time_s"], metrics["images_per_s"],
    )
    if args.metrics:
        _evaluate(args.out, args.metrics, args.predictions, run.eval.batch_size,
                  run.eval.predictions)
    return 0


def _use_decoded(directory: str, root: str | None) -> None:
    """Read the images from arrays decoded once (ucd.data.decoded) instead of their files."""
    from ucd.data.decoded import use

    decoded_root = use(directory)
    if root is not None and os.path.realpath(decoded_root) != os.path.realpath(root):
        raise FileNotFoundError(f"--decoded {directory} holds the images of {decoded_root}, "
                                f"not of this run's data root {root}")


def _evaluate(ckpt: str, out: str, predictions: str | None, batch_size: int,
              n_predictions: int) -> None:
    """Evaluate a checkpoint; write metrics.json and (if asked) predictions.npz atomically."""
    import numpy as np

    from ucd.evaluation.evaluate import evaluate_checkpoint
    from ucd.evaluation.records import write_json_atomic

    metrics, preds = evaluate_checkpoint(
        ckpt, batch_size=batch_size, n_predictions=n_predictions if predictions else 0
    )
    write_json_atomic(metrics, out)
    if predictions:
        tmp = Path(predictions).with_name(f".{Path(predictions).stem}.tmp.npz")
        np.savez_compressed(tmp, **(preds or {}))
        tmp.replace(predictions)
    cols = {k: metrics[k] for k in ("background_iou", "miou_old", "miou_new", "miou_all")}
    logging.getLogger("ucd").info("evaluated %s: %s", ckpt, json.dumps(cols))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.decoded:
        _use_decoded(args.decoded, None)
    _evaluate(args.ckpt, args.out, args.predictions, args.batch_size, args.n_predictions)
    return 0


def _merged_config(paths: list[str]) -> dict:
    """Workflow config files merged as Snakemake merges --configfile (mappings key by key)."""
    from ucd.facts.config import deep_merge, load_yaml

    config: dict = {}
    for path in paths:
        config = deep_merge(config, load_yaml(path) or {})
    return config


def _spec_facts(run) -> dict[str, tuple]:
    """The facts the method layer derives from a run config (its step spec), for --explain;
    a step 0 that the method shares is its owner's training and says so."""
    from ucd.facts.config import ConfigError
    from ucd.methods import step_spec

    try:
        facts = step_spec(run).facts()
    except ConfigError as err:
        return {"spec": (str(err), "step spec")}
    return {f"spec.{k}": (v, "step spec") for k, v in facts.items()}


def _cmd_config(args: argparse.Namespace) -> int:
    from ucd.planning.resolve import LAYERS, check_static, derived, explain, resolve

    config = _merged_config(args.config)
    check_static(config)
    where = dict(dataset=args.dataset, task=args.task, setting=args.setting,
                 method=args.method, step=args.step, seed=args.seed)
    run = resolve(config, **where)
    if not args.explain:
        print(yaml.safe_dump(run.to_dict(), sort_keys=False))
        return 0
    values = explain(config, **where)
    values = {**values, **derived(config, values), **_spec_facts(run)}
    width = max(len(k) for k in values)
    print(f"# layers, later wins: {', '.join(f'{i} {n}' for i, n in enumerate(LAYERS, 1))}; "
          "at steps >= 1 an incremental key set in any layer beats the plain key")
    for key, (value, layer) in values.items():
        print(f"{key:{width}s}  {json.dumps(value):24s}  {layer}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ucd", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("methods", help="list every method with its terms and default weights")
    p.set_defaults(func=_cmd_methods)

    p = sub.add_parser("train", help="train one incremental step")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run.yaml (as a job writes beside its checkpoint)")
    source.add_argument("--run-json", help="the resolved run config as JSON; written as "
                        "run.yaml beside --out")
    p.add_argument("--out", required=True, help="checkpoint to write (model.pt)")
    p.add_argument("--prev", default=None, help="checkpoint of the previous step")
    p.add_argument("--metrics", default=None, help="then evaluate: metrics.json to write")
    p.add_argument("--predictions", default=None, help="predictions.npz (with --metrics)")
    p.add_argument("--decoded", default=None, help="the dataset's images decoded once "
                   "(`ucd data decode`), read instead of its image files")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a checkpoint on the validation set")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", required=True, help="metrics.json to write")
    p.add_argument("--predictions", default=None, help="predictions.npz for qualitative maps")
    p.add_argument("--n-predictions", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=None, help="default: the run config's")
    p.add_argument("--decoded", default=None, help="as for train")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("config", help="print the resolved run config of one step")
    p.add_argument("config", nargs="+", help="workflow config files, merged in order")
    for name in ("dataset", "task", "setting", "method"):
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--step", type=int, required=True)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--explain", action="store_true",
                   help="every value with the config layer that set it")
    p.set_defaults(func=_cmd_config)

    from ucd.cost.cli import register as register_cost
    from ucd.data.cli import register as register_data
    from ucd.reporting.cli import register as register_report

    register_data(sub)
    register_report(sub)
    register_cost(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError, ArithmeticError) as err:
        print(f"ucd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
