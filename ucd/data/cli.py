"""`ucd tasks` and `ucd data {generate,split,replay,stats,decode,check}` (registered by
ucd/cli.py).

Handlers take the parsed arguments and return an exit code; errors are raised as ValueError /
FileNotFoundError and reported by the caller (`main` here, or the top-level CLI).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ucd.data.fixtures import FIXTURES
from ucd.data.replay.sources import SOURCES
from ucd.data.tasks import SETTINGS, check_setting, get_dataset_info, get_task, list_tasks

DEFAULT_ROOT = "results/data/{dataset}"


def _root(args: argparse.Namespace) -> Path:
    return Path(args.root or DEFAULT_ROOT.format(dataset=args.dataset))


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print the classes of each step of a task as JSON (all tasks when TASK is omitted)."""
    if args.dataset and args.task:
        print(json.dumps([list(s) for s in get_task(args.dataset, args.task).steps]))
    else:
        tasks = list_tasks(args.dataset)
        print(json.dumps({f"{t.dataset}/{t.name}": [list(s) for s in t.steps] for t in tasks}))
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate the embedded digits benchmark, or the fixture of a real dataset's layout."""
    from ucd.data.digits import generate

    root = _root(args)
    if args.dataset != "digits":
        return _generate_fixture(args, root)
    given = {k: getattr(args, k) for k in ("n_train", "n_val", "size") if getattr(args, k)}
    generate(root, seed=args.seed, progress=not args.quiet, **given)
    meta = json.loads((root / "meta.json").read_text())
    print(f"wrote {args.dataset} ({meta['n_train']} train, {meta['n_val']} val images) "
          f"of {meta['size']} px to {root}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Classes per image and, per task and setting, each step's share of images that show an
    old class (ucd.data.stats), as JSON."""
    from ucd.data.stats import dataset_stats

    stats = dataset_stats(args.dataset, _root(args), split=args.split,
                          tasks=args.task and [args.task])
    text = json.dumps(stats, indent=1)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def _generate_fixture(args: argparse.Namespace, root: Path) -> int:
    """The rehearsal's fixture of VOC, ADE20K or Cityscapes (ucd.data.fixtures)."""
    from ucd.data.fixtures import generate

    given = [k for k in ("n_train", "n_val", "size") if getattr(args, k)]
    if given:
        raise ValueError(f"--{given[0].replace('_', '-')} applies to digits only; the "
                         f"{args.dataset} fixture has a fixed set of images")
    manifest = generate(args.dataset, root, seed=args.seed)
    n = {s: sum(v["split"] == s for v in manifest["images"].values()) for s in ("train", "val")}
    print(f"wrote a FIXTURE of {args.dataset} in its real layout (generated shapes for the "
          f"rehearsal, not the dataset): {n['train']} train, {n['val']} val images, {root}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    """Compute and save the split file of (dataset, task, setting)."""
    from ucd.data.splits import compute_split, save_split

    check_setting(args.dataset, args.setting)
    split = compute_split(
        args.dataset,
        _root(args),
        args.task,
        args.setting,
        workers=args.workers,
        progress=not args.quiet,
    )
    save_split(split, args.out)
    print(f"wrote {args.out}: training images per step {split['counts']}")
    return 0


def format_check(split: dict, dataset: str, n_val: int | None = None) -> str:
    """Per-step classes and training-image counts (with published counts when known)."""
    info = get_dataset_info(dataset)
    task = get_task(dataset, split["task"])
    expected = task.expected_counts.get(split["setting"])
    lines = [
        f"{dataset} {task.name} {split['setting']}: {split['inputs']['n_files']} training "
        f"label files" + (f", {n_val} validation images" if n_val is not None else "")
    ]
    if split["setting"] not in info.settings:
        lines.append(f"note: the paper reports {dataset} in {'/'.join(info.settings)} only")
    for k, classes in enumerate(split["steps"]):
        names = ", ".join(info.class_names[c] for c in classes)
        exp = ""
        if expected and expected[k] is not None:
            ok = "ok" if expected[k] == split["counts"][k] else "DIFFERS"
            exp = f" (published: {expected[k]}, {ok})"
        lines.append(f"step {k}: classes {classes} [{names}]")
        lines.append(f"        training images: {split['counts'][k]}{exp}")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    """Print, per step, the classes and the number of training images."""
    from ucd.data.base import get_reader
    from ucd.data.splits import compute_split, load_split

    check_setting(args.dataset, args.setting)
    root = _root(args)
    if args.split:
        split = load_split(args.split, root=root, verify="full" if args.full else True)
        want = (args.dataset, get_task(args.dataset, args.task).name, args.setting)
        if (split["dataset"], split["task"], split["setting"]) != want:
            raise ValueError(
                f"split file '{args.split}' is for "
                f"{split['dataset']}/{split['task']}/{split['setting']}, "
                f"not {'/'.join(want)}"
            )
    else:
        split = compute_split(
            args.dataset,
            root,
            args.task,
            args.setting,
            workers=args.workers,
            progress=not args.quiet,
        )
    n_val = len(get_reader(args.dataset, root).samples("val"))
    print(format_check(split, args.dataset, n_val))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Build the replay set of one step (every old class) from a source."""
    from ucd.data.replay import build_replay_set, make_source

    source = make_source(args.source, root=args.root, generator=args.generator,
                         weights=args.weights)
    index = build_replay_set(args.dataset, args.task, args.step, args.out, source,
                             per_class=args.per_class, seed=args.seed)
    print(f"wrote {args.out}: {args.per_class} images for each of classes "
          f"{', '.join(index['classes'])} ({args.source})")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    """Decode every image and label of a dataset once, for the jobs (`ucd train --decoded`)."""
    from ucd.data.decoded import write_decoded

    index = write_decoded(args.dataset, _root(args), args.out)
    counts = ", ".join(f"{len(v['ids'])} {k}" for k, v in index["splits"].items())
    print(f"wrote {args.out}: decoded {args.dataset} images ({counts or 'none'})")
    for split, why in index.get("files_read_by_jobs", {}).items():
        print(f"{split} not decoded: {why}; the jobs read its files")
    return 0


def _common(p: argparse.ArgumentParser, setting: bool = True) -> None:
    p.add_argument("dataset", help="dataset name (tasks.yaml)")
    p.add_argument("task", help="task name, e.g. 15-5")
    if setting:
        p.add_argument("setting", choices=SETTINGS)
    p.add_argument("--root", default=None, help=f"data root (default {DEFAULT_ROOT})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `tasks` and `data` to the top-level `ucd` subcommands."""
    p = subparsers.add_parser("tasks", help="classes of each step of a task, as JSON")
    p.add_argument("dataset", nargs="?", default=None)
    p.add_argument("task", nargs="?", default=None)
    p.set_defaults(func=cmd_tasks)

    data = subparsers.add_parser("data", help="generate data, compute and check split files")
    sub = data.add_subparsers(dest="data_command", required=True)

    p = sub.add_parser("generate", help="generate the embedded benchmark, or a fixture of a "
                       "real dataset's layout (voc, ade, cityscapes: the rehearsal's data)")
    p.add_argument("dataset", choices=["digits", *FIXTURES])
    p.add_argument("--root", default=None, help=f"output directory (default {DEFAULT_ROOT})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-train", type=int, default=None, help="default: the generator's")
    p.add_argument("--n-val", type=int, default=None, help="default: the generator's")
    p.add_argument("--size", type=int, default=None, help="image side (default: the style's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("split", help="compute and save the split file of a task and setting")
    _common(p)
    p.add_argument("--out", required=True, help="split file to write (JSON)")
    p.add_argument("--workers", type=int, default=None, help="parallel label readers")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("replay", help="build the replay set of one step (RECALL)")
    p.add_argument("dataset", help="dataset name (tasks.yaml)")
    p.add_argument("task", help="task name, e.g. 15-5")
    p.add_argument("--step", type=int, required=True, help="the step replaying (>= 1)")
    p.add_argument("--out", required=True, help="replay set directory to write")
    p.add_argument("--per-class", type=int, default=500, help="images per old class")
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--root", default=None,
                   help="folder: one directory per class name; digits: the benchmark's root")
    p.add_argument("--generator", default=None, help="generator: 'module:function'")
    p.add_argument("--weights", default=None, help="generator: weights file, passed on")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_replay)

    for name, help_ in (("stats", "classes per image, old classes in each step's images"),
                        ("decode", "decode a dataset's images once, for every job")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("dataset", help="dataset name (tasks.yaml)")
        p.add_argument("--root", default=None, help=f"dataset root (default {DEFAULT_ROOT})")
    stats, decode = sub.choices["stats"], sub.choices["decode"]
    stats.add_argument("--task", default=None, help="one task (default: every task)")
    stats.add_argument("--split", default="train", help="train or val")
    stats.add_argument("--out", default=None, help="also write the JSON here")
    stats.set_defaults(func=cmd_stats)
    decode.add_argument("--out", required=True, help="directory of the arrays to write")
    decode.set_defaults(func=cmd_decode)

    p = sub.add_parser("check", help="classes and training images per step")
    _common(p)
    p.add_argument("--split", default=None, help="split file to verify and show")
    p.add_argument("--full", action="store_true", help="re-hash every label file")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(func=cmd_check)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (tests): parse `argv`, run the handler, report errors on stderr."""
    parser = argparse.ArgumentParser(prog="ucd")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        print(f"ucd {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
