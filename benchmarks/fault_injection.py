"""Fault injection on the tiny digits benchmark: interruptions survived, corrupt inputs rejected.

Interruptions (each a real `ucd train` process, the faults installed from outside the package
by `python -m tests.faults`): SIGTERM at several iterations (and twice in one step), SIGKILL
while the resumable state is written, a corrupt resumable state;
each interrupted step is resumed and its weights compared bit for bit with an uninterrupted
run. Corrupt inputs (in-process, through the same functions the CLI calls): corrupt/truncated
checkpoints, a checkpoint of another task, setting or seed, truncated image, out-of-range label,
size mismatch, bad config values; each must be rejected with an error naming the problem.

    python benchmarks/fault_injection.py [--keep DIR]      (about 1-3 minutes on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ucd.data import digits, splits  # noqa: E402
from ucd.data.base import InputDataError, get_reader  # noqa: E402
from ucd.data.step import make_dataset  # noqa: E402
from ucd.facts.config import ConfigError, RunConfig, write_yaml_atomic  # noqa: E402
from ucd.planning.resolve import resolve  # noqa: E402
from ucd.training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from ucd.training.resume import RESUME_EXIT_CODE  # noqa: E402

TINY_MODEL = {
    "backbone": "resnet18",
    "width": 8,
    "head_channels": 16,
    "output_stride": 8,
    "norm": "abn",
    "pretrained": None,
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def train(run_file: Path, out: Path, prev: Path | None = None, **fault: int):
    """One `ucd train` process; faults (sigterm_at=N, kill_in_save=N) through tests/faults.py."""
    cmd = [sys.executable, "-m", "tests.faults"]
    cmd += [f"--{name.replace('_', '-')}={n}" for name, n in fault.items()]
    cmd += ["--", "train", "--run", str(run_file), "--out", str(out)]
    cmd += ["--prev", str(prev)] if prev else []
    return subprocess.run(cmd, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=300)


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def setup(work: Path) -> tuple[dict, Path, Path]:
    """Tiny benchmark, its 5-5 split files, the workflow config and the step-0 run file."""
    root = work / "digits"
    digits.generate(root, seed=0, n_train=96, n_val=24, size=32, progress=False)
    for setting in ("disjoint", "overlapped"):
        s = splits.compute_split("digits", root, "5-5", setting, workers=1, progress=False)
        splits.save_split(s, work / "splits" / f"{setting}.json")
    config = {
        "results": str(work / "results"),
        "datasets": {
            "digits": {
                "root": str(root),
                "model": TINY_MODEL,
                "optim": {"lr": 0.02, "epochs": 2, "batch_size": 8},
                "incremental": {"optim": {"lr": 0.01}},
                "data": {"crop_size": 32, "num_workers": 0},
            }
        },
    }
    run_file = write_run(config, work, "run.yaml")
    return config, root, run_file


def make_run(
    config: dict,
    work: Path,
    *,
    step: int = 0,
    task: str = "5-5",
    setting: str = "disjoint",
    method: str = "ft",
    seed: int = 42,
) -> RunConfig:
    run = resolve(config, dataset="digits", task=task, setting=setting, method=method, step=step,
                  seed=seed)
    split = str(work / "splits" / f"{setting}.json")
    return run.replace(data=dataclasses.replace(run.data, split=split))


def write_run(config: dict, work: Path, name: str, **train: object) -> Path:
    run = make_run(config, work)
    run = run.replace(train=dataclasses.replace(run.train, **train))
    path = work / name
    write_yaml_atomic(run, path)
    return path


# ------------------------------------------------------------------ interruptions


def interruption_cases(work: Path, run_file: Path, run_every: Path) -> list[tuple[str, Callable]]:
    """(name, function returning (survived, detail)) for each interruption scenario."""
    ref, ref_every = work / "ref" / "model.pt", work / "ref_every" / "model.pt"

    def sigterm(at: int):
        def case():
            out = work / f"term{at}" / "model.pt"
            cut = train(run_file, out, sigterm_at=at)
            if cut.returncode != RESUME_EXIT_CODE or not out.with_name("model.pt.resume").exists():
                return False, f"rc {cut.returncode}, no resumable state"
            again = train(run_file, out)
            ok = again.returncode == 0 and f"at iteration {at}/" in again.stderr
            return ok and same_weights(ref, out), f"resumed at {at}, rc {again.returncode}"

        return case

    def sigterm_twice():
        out = work / "term_twice" / "model.pt"
        rcs = [train(run_file, out, sigterm_at=a).returncode for a in (2, 5)]
        rcs.append(train(run_file, out).returncode)
        ok = rcs == [RESUME_EXIT_CODE, RESUME_EXIT_CODE, 0]
        return ok and same_weights(ref, out), f"exit codes {rcs}"

    def sigkill_in_save(at: int):
        def case():
            out = work / f"kill{at}" / "model.pt"
            cut = train(run_every, out, kill_in_save=at)
            if cut.returncode != -9:
                return False, f"rc {cut.returncode} (expected -9: SIGKILL)"
            had_state = out.with_name("model.pt.resume").exists()
            again = train(run_every, out)
            ok = again.returncode == 0 and (
                f"at iteration {at - 1}/" in again.stderr if at > 1 else not had_state
            )
            detail = f"killed writing state {at}, resumed from {at - 1 if had_state else 'start'}"
            return ok and same_weights(ref_every, out), detail

        return case

    def corrupt_state():
        out = work / "badstate" / "model.pt"
        cut = train(run_file, out, sigterm_at=3)
        state = out.with_name("model.pt.resume")
        if cut.returncode != RESUME_EXIT_CODE:
            return False, f"rc {cut.returncode}"
        state.write_bytes(state.read_bytes()[: state.stat().st_size // 3])  # truncated state
        again = train(run_file, out)
        ok = again.returncode == 0 and "unreadable" in again.stderr
        stale = out.with_name("model.pt.resume.stale").exists()
        return ok and stale and same_weights(ref, out), "truncated state set aside, restarted"

    cases = [(f"SIGTERM at iteration {a}, resume", sigterm(a)) for a in (1, 2, 3, 4, 5)]
    cases.append(("SIGTERM at iterations 2 and 5 (two resumes)", sigterm_twice))
    cases += [(f"SIGKILL while writing state {a}, resume", sigkill_in_save(a)) for a in (1, 3, 5)]
    cases.append(("truncated resumable state, rerun", corrupt_state))
    return cases


# ------------------------------------------------------------------ corrupt inputs


def expect(exc: type[BaseException], fragment: str, fn: Callable[[], object]) -> tuple[bool, str]:
    """Run fn; rejected = it raised `exc` whose message contains `fragment`."""
    try:
        fn()
    except exc as err:
        msg = str(err)
        return fragment in msg, msg
    except Exception as err:  # noqa: BLE001 - a wrong exception type counts as not rejected
        return False, f"wrong error {type(err).__name__}: {err}"
    return False, "accepted silently"


def corrupt_input_cases(work: Path, config: dict, root: Path) -> list[tuple[str, Callable]]:
    from ucd.training.engine import train_step

    ref = work / "ref" / "model.pt"
    run1 = make_run(config, work, step=1)

    def bad_ckpt(name: str, mutate: Callable[[bytes], bytes], keep_digest: bool = True) -> Path:
        d = work / "ckpt" / name
        d.mkdir(parents=True, exist_ok=True)
        p = d / "model.pt"
        p.write_bytes(mutate(ref.read_bytes()))
        if keep_digest:
            shutil.copy(ref.with_name("model.pt.sha256"), d / "model.pt.sha256")
        return p

    def flip(blob: bytes) -> bytes:
        b = bytearray(blob)
        b[len(b) // 2] ^= 0xFF
        return bytes(b)

    def half(blob: bytes) -> bytes:
        return blob[: len(blob) // 2]

    def step1(prev: Path, run: RunConfig | None = None) -> Callable[[], object]:
        return lambda: train_step(run or run1, work / "never" / "model.pt", prev=prev)

    def data_copy(name: str) -> tuple[Path, object]:
        dst = work / "data" / name
        shutil.copytree(root, dst)
        return dst, get_reader("digits", dst)

    def val_all(data_root: Path) -> Callable[[], object]:
        ds = make_dataset("digits", data_root, "5-5", "disjoint", 1, "val", crop_size=32)
        return lambda: [ds[i] for i in range(len(ds))]

    def truncated_image():
        d, r = data_copy("trunc_img")
        s = r.samples("val")[5]
        s.image.write_bytes(s.image.read_bytes()[:100])
        return expect(InputDataError, f"'{s.image}' is corrupt or truncated", val_all(d))

    def truncated_train_image():  # through a real training step
        d, r = data_copy("trunc_train")
        ids = splits.load_split(work / "splits" / "disjoint.json")["ids"][0]
        s = next(x for x in r.samples("train") if x.id == ids[0])
        s.image.write_bytes(s.image.read_bytes()[:60])
        run = make_run(config, work)
        run = run.replace(data=dataclasses.replace(run.data, root=str(d)))
        return expect(
            InputDataError,
            f"'{s.image}' is corrupt or truncated",
            lambda: train_step(run, work / "never0" / "model.pt"),
        )

    def label_37():
        d, r = data_copy("label37")
        s = r.samples("val")[3]
        with Image.open(s.label) as im:
            lab, pal = np.array(im), im.getpalette()
        lab[0, :4] = 37
        im = Image.fromarray(lab, "P")
        im.putpalette(pal)
        im.save(s.label)
        return expect(InputDataError, f"'{s.label}' has 4 pixels with values 37", val_all(d))

    def label_37_split():
        d, r = data_copy("label37_train")
        s = r.samples("train")[7]
        with Image.open(s.label) as im:
            lab = np.array(im)
        lab[-1, -1] = 37
        Image.fromarray(lab, "L").save(s.label)
        return expect(
            InputDataError,
            "has 1 pixels with values 37",
            lambda: splits.compute_split("digits", d, "5-5", "disjoint", workers=1, progress=False),
        )

    def size_mismatch():
        d, r = data_copy("size")
        s = r.samples("val")[0]
        Image.fromarray(np.zeros((30, 32), np.uint8), "L").save(s.label)
        return expect(InputDataError, "sizes differ", val_all(d))

    def bad_config(path: str, value: object, fragment: str) -> Callable:
        def case():  # a RUN.yaml edited by hand: refused when `ucd train` reads it
            run = make_run(config, work).to_dict()
            section, key = path.split(".")
            run[section][key] = value
            return expect(ConfigError, fragment, lambda: RunConfig.from_dict(run))

        return case

    def config_with(change: dict, fragment: str, **where: str) -> Callable:
        def case():
            cfg = copy.deepcopy(config)
            cfg["datasets"]["digits"].update(change)
            kw = {
                "dataset": "digits",
                "task": "5-5",
                "setting": "disjoint",
                "method": "ft",
                "step": 0,
                "seed": 42,
                **where,
            }
            return expect(ConfigError, fragment, lambda: resolve(cfg, **kw))

        return case

    other_task = make_run(config, work, step=1, task="8-2")
    other_setting = make_run(config, work, step=1, setting="overlapped")
    other_seed = make_run(config, work, step=1, seed=43)
    other_model = run1.replace(model=dataclasses.replace(run1.model, width=16))
    return [
        (
            "checkpoint with flipped bytes",
            lambda: expect(
                CheckpointError, "is corrupt: its SHA-256", step1(bad_ckpt("flip", flip))
            ),
        ),
        (
            "truncated checkpoint (with digest)",
            lambda: expect(CheckpointError, "is corrupt", step1(bad_ckpt("half", half))),
        ),
        (
            "truncated checkpoint (no digest file)",
            lambda: expect(
                CheckpointError, "cannot be read", step1(bad_ckpt("half_nd", half, False))
            ),
        ),
        (
            "empty checkpoint file",
            lambda: expect(
                CheckpointError, "cannot be read", step1(bad_ckpt("empty", lambda b: b"", False))
            ),
        ),
        (
            "missing previous checkpoint",
            lambda: expect(CheckpointError, "does not exist", step1(work / "nowhere" / "model.pt")),
        ),
        (
            "checkpoint of another task (5-5 -> 8-2)",
            lambda: expect(CheckpointError, "but task 8-2 of digits expects",
                           step1(ref, other_task)),
        ),
        (
            "checkpoint of another setting",
            lambda: expect(CheckpointError, "is for setting 'disjoint'", step1(ref, other_setting)),
        ),
        (
            "checkpoint of another seed (42 -> 43)",
            lambda: expect(CheckpointError, "is for seed 42", step1(ref, other_seed)),
        ),
        (
            "checkpoint of another model width",
            lambda: expect(CheckpointError, "model.width=8", step1(ref, other_model)),
        ),
        ("truncated validation image", truncated_image),
        ("truncated training image (in train_step)", truncated_train_image),
        ("validation label with value 37 (11 classes)", label_37),
        ("training label with value 37 (split scan)", label_37_split),
        ("image/label size mismatch", size_mismatch),
        ("config optim.lr = -0.1", bad_config("optim.lr", -0.1, "optim.lr must be")),
        ("config optim.batch_size = 0", bad_config("optim.batch_size", 0, "optim.batch_size")),
        ("config optim.epochs = 'ten'", bad_config("optim.epochs", "ten", "optim.epochs")),
        ("config data.crop_size = 8", bad_config("data.crop_size", 8, "data.crop_size must")),
        ("config unknown method", config_with({}, "unknown method 'mib_ucdd'", method="mib_ucdd")),
        ("config step out of range", config_with({}, "step 2 out of range", step=2)),
        ("config unknown key optim.lr_next (old format)",
         config_with({"optim": {"lr_next": 0.1}}, "optim has no key 'lr_next'")),
        ("config term the method lacks (mib kd)",
         lambda: expect(ConfigError, "did you mean 'mib_kd'",
                        lambda: resolve({**config, "method_params": {"mib": {"kd": {}}}},
                                        dataset="digits", task="5-5", setting="disjoint",
                                        method="mib", step=1, seed=42))),
    ]


# ------------------------------------------------------------------ main


def run_cases(title: str, cases: list[tuple[str, Callable]], workers: int, verb: str) -> int:
    print(f"\n{title}")
    with ThreadPoolExecutor(workers) as ex:
        results = list(ex.map(lambda c: c[1](), cases))
    ok = 0
    for (name, _), (passed, detail) in zip(cases, results):
        ok += bool(passed)
        short = detail if len(detail) <= 150 else detail[:147] + "..."
        print(f"  [{'ok' if passed else 'FAIL'}] {name}: {short}")
    print(f"  -> {ok}/{len(cases)} {verb}")
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="work in DIR and keep it (default: a temp dir)")
    ap.add_argument("--workers", type=int, default=2, help="training processes in parallel")
    args = ap.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="ucd-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    os.environ["TQDM_DISABLE"] = "1"  # the in-process training steps: no progress bars
    config, root, run_file = setup(work)
    run_every = write_run(config, work, "run_every.yaml", checkpoint_every_s=0)
    refs = [
        train(run_file, work / "ref" / "model.pt"),
        train(run_every, work / "ref_every" / "model.pt"),
    ]
    if any(r.returncode for r in refs):
        print("\n".join(r.stderr[-2000:] for r in refs))
        return 1
    same = same_weights(work / "ref" / "model.pt", work / "ref_every" / "model.pt")
    print(
        f"tiny digits 5-5 disjoint, step 0: 2 epochs x 3 iterations; reference runs done "
        f"(saving state every iteration changes nothing: {same})"
    )
    n_int = interruption_cases(work, run_file, run_every)
    survived = run_cases(
        "Interruptions (compared bit for bit with an uninterrupted run):",
        n_int,
        args.workers,
        "survived",
    )
    n_bad = corrupt_input_cases(work, config, root)
    rejected = run_cases(
        "Corrupt inputs (must be rejected with a clear error):",
        n_bad,
        1,
        "rejected with a clear error",
    )
    print(
        f"\nSUMMARY: interruptions tried {len(n_int)}, survived {survived}; corrupt inputs "
        f"tried {len(n_bad)}, rejected {rejected}; {time.perf_counter() - t0:.0f} s"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if survived == len(n_int) and rejected == len(n_bad) else 1


if __name__ == "__main__":
    sys.exit(main())
