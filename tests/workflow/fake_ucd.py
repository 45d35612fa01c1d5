"""A stand-in for `python -m ucd` in workflow tests: checks that the files a command reads
exist, writes the files it would write (tiny placeholders), and appends its command line to
calls.log in the working directory, so a test can run the real DAG in seconds. A training call
also appends the fork server directory it was given (UCD_ZYGOTE, or an empty line) to
fork_server.log."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _opt(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _need(*paths: str | None) -> None:
    for p in paths:
        if p is not None and not Path(p).exists():
            raise SystemExit(f"fake ucd: input {p} does not exist")


def _outs(argv: list[str]) -> list[str]:
    """Every file after --out, up to the next option."""
    rest = argv[argv.index("--out") + 1:]
    return [a for a in rest[: next((i for i, a in enumerate(rest) if a.startswith("--")),
                                   len(rest))]]


def _write(path: str, text: str = "fake\n") -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)


def _figure(out: str) -> None:
    for suffix in (".pdf", ".png"):
        _write(str(Path(out).with_suffix(suffix)))


def _metrics(ckpt: str) -> dict:
    """Metrics of a fake checkpoint (a copy of its run.yaml): a confusion matrix over the
    classes seen, every pixel right, so cells can summarise it with their own columns."""
    import yaml

    from ucd.data.tasks import get_task

    run = yaml.safe_load(Path(ckpt).read_text())
    steps = get_task(run["dataset"], run["task"]).steps
    seen = [c for s in steps[: len(steps) if run["base_method"] == "joint" else run["step"] + 1]
            for c in s]
    n = max(seen) + 1
    matrix = [[10 if i == j and i in seen else 0 for j in range(n)] for i in range(n)]
    keys = ("dataset", "task", "setting", "method", "step", "seed")
    return {**{k: run[k] for k in keys}, "confusion_matrix": matrix, "miou_old": 1.0,
            "miou_new": None, "miou_all": 1.0, "background_iou": 1.0}


def main(argv: list[str]) -> int:
    with open("calls.log", "a") as log:
        log.write(" ".join(argv) + "\n")
    cmd = argv[:2]
    if cmd == ["data", "generate"]:
        _write(f"{_opt(argv, '--root')}/ImageSets/Segmentation/train.txt")
    elif cmd == ["data", "split"]:
        _need(_opt(argv, "--root"))
        _write(_opt(argv, "--out"), "{}\n")
    elif cmd == ["data", "decode"]:
        _need(_opt(argv, "--root"))
        _write(f"{_opt(argv, '--out')}/index.json", "{}\n")
    elif cmd == ["data", "replay"]:
        _need(_opt(argv, "--root"))
        _write(f"{_opt(argv, '--out')}/index.json", "{}\n")
    elif argv[0] == "train":  # evaluates its checkpoint too when --metrics is given
        with open("fork_server.log", "a") as log:
            log.write(os.environ.get("UCD_ZYGOTE", "") + "\n")
        _need(_opt(argv, "--run"), _opt(argv, "--prev"), _opt(argv, "--decoded"))
        if _opt(argv, "--run-json"):  # kept beside the model as run.yaml, like ucd train
            import yaml

            run = yaml.safe_dump(json.loads(_opt(argv, "--run-json")), sort_keys=False)
            _write(str(Path(_opt(argv, "--out")).with_name("run.yaml")), run)
        else:
            run = Path(_opt(argv, "--run")).read_text()
        _write(_opt(argv, "--out"), run)
        if _opt(argv, "--metrics"):
            _write(_opt(argv, "--metrics"), json.dumps(_metrics(_opt(argv, "--out"))))
            _write(_opt(argv, "--predictions"))
    elif argv[0] == "evaluate":
        _need(_opt(argv, "--ckpt"))
        _write(_opt(argv, "--out"), json.dumps(_metrics(_opt(argv, "--ckpt"))))
        _write(_opt(argv, "--predictions"))
    elif cmd == ["report", "collect"]:
        _write(_opt(argv, "--out"), "dataset,task,setting,method,step\n")
    elif cmd in (["report", "table"], ["report", "claims"], ["report", "fidelity"]):
        _need(_opt(argv, "--summary"))
        for out in _outs(argv):
            _write(out)
    elif argv[0] == "report":
        _need(_opt(argv, "--summary"))
        _figure(_opt(argv, "--out"))
    else:
        raise SystemExit(f"fake ucd: unknown command {argv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
