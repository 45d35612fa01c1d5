"""Render every table and figure from SYNTHETIC results, to look at them.

    python benchmarks/render_check.py [--out /tmp/render_check] [--embedded]

Writes fake metrics.json files (deterministic, plausible numbers: they are not
results), runs `ucd report collect/table/figure/curves/qualitative` on them and,
when `pdflatex` is on PATH, compiles every table into one PDF.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np

from ucd.data.tasks import get_dataset_info, get_task
from ucd.reporting.cli import main as report
from ucd.reporting.tables import available, get_spec, required_runs


def _strength(method: str) -> tuple[float, float]:
    """Deterministic (old, new) quality of a fake method."""
    h = zlib.crc32(method.encode())
    return 0.3 + 0.5 * ((h % 1000) / 1000), 0.1 + 0.5 * (((h // 1000) % 1000) / 1000)


def fake_results(root: Path, runs: list[tuple[str, str, str, str]], *, skip: int = 7) -> None:
    """metrics.json for every step of the runs (every `skip`-th run left out: missing cells)."""
    for n, (dataset, task, setting, method) in enumerate(runs):
        if skip and n % skip == skip - 1:
            continue
        t = get_task(dataset, task)
        old_q, new_q = _strength(method)
        rng = np.random.default_rng(zlib.crc32(f"{dataset}{task}{setting}{method}".encode()))
        steps = [t.n_steps - 1] if method.startswith("joint") else range(t.n_steps)
        for k in steps:
            seen = t.classes_seen(t.n_steps - 1 if method.startswith("joint") else k)
            forget = 0.85**k
            iou = {}
            for c in range(get_dataset_info(dataset).num_classes):
                if c not in seen:
                    iou[c] = None
                elif c == 0:
                    iou[c] = 0.9
                elif c in t.steps[0]:
                    iou[c] = float(np.clip(old_q * forget + rng.normal(0, 0.05), 0, 1))
                else:
                    iou[c] = float(np.clip(new_q + rng.normal(0, 0.05), 0, 1))
            step = 0 if method.startswith("joint") else k
            d = root / dataset / task / setting / method / f"step{step}"
            d.mkdir(parents=True, exist_ok=True)
            mem = 40000 + 20000 * old_q if "ucd" in method else 30000.0
            (d / "metrics.json").write_text(
                json.dumps(
                    {
                        "seed": 42,
                        "classes_seen": seen,
                        "iou": {str(c): v for c, v in iou.items()},
                        "train_time_s": 3600 * (1 + old_q),
                        "peak_gpu_mem_mb": mem,
                    }
                )
            )


def fake_predictions(path: Path, dataset: str, seed: int, n: int = 3, size: int = 64) -> None:
    """A predictions.npz with blobs of a few classes (same images for every seed)."""
    rng = np.random.default_rng(0)
    n_cls = get_dataset_info(dataset).num_classes
    image = rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8)
    label = np.zeros((n, size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        for _ in range(3):
            cy, cx, r = rng.integers(10, size - 10, 2).tolist() + [int(rng.integers(5, 14))]
            disk = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            label[i][disk] = rng.integers(1, n_cls)
            ring = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r + 1) ** 2) & ~disk
            label[i][ring] = 255
    pred = label.copy()
    noise = np.random.default_rng(seed).random(pred.shape) < 0.15
    pred[noise] = 0
    pred[pred == 255] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, ids=np.array([f"img{i:03d}" for i in range(n)]), image=image, label=label, pred=pred
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="/tmp/render_check")
    ap.add_argument("--embedded", action="store_true", help="digits tables instead of the paper's")
    args = ap.parse_args()
    out = Path(args.out)
    results = out / "results"
    shutil.rmtree(out, ignore_errors=True)
    fake_results(results, required_runs(None, embedded=args.embedded))
    emb = ["--embedded"] if args.embedded else []
    summary = str(out / "summary.csv")
    report(["collect", "--results", str(results), "--out", summary])
    tex = []
    for item in available(embedded=args.embedded):
        spec = get_spec(item, embedded=args.embedded)
        if item.startswith("table"):
            for variant in [[]] if args.embedded else [[], ["--compare"]]:
                name = item + ("_compare" if variant else "")
                report(
                    [
                        "table",
                        item,
                        "--summary",
                        summary,
                        "--out",
                        str(out / f"{name}.tex"),
                        *emb,
                        *variant,
                    ]
                )
                report(
                    [
                        "table",
                        item,
                        "--summary",
                        summary,
                        "--out",
                        str(out / f"{name}.html"),
                        *emb,
                        *variant,
                    ]
                )
                tex.append((out / f"{name}.tex").read_text())
        else:
            report(["figure", item, "--summary", summary, "--out", str(out / f"{item}.png"), *emb])
            report(
                [
                    "curves",
                    "--summary",
                    summary,
                    "--benchmark",
                    spec.block.benchmark,
                    "--out",
                    str(out / f"curves_{item}.png"),
                ]
            )
    b = get_spec("table1", embedded=args.embedded).blocks[2]
    preds = []
    for i, m in enumerate(["mib", "mib_ucd", "plop"]):
        p = out / f"pred_{m}.npz"
        fake_predictions(p, b.dataset, seed=i)
        preds.append(f"{m}={p}")
    report(
        [
            "qualitative",
            "--benchmark",
            b.benchmark,
            "--predictions",
            *preds,
            "--out",
            str(out / "qualitative.png"),
        ]
    )
    if shutil.which("pdflatex"):
        from ucd.reporting.latex import standalone_document

        (out / "all_tables.tex").write_text(standalone_document(*tex))
        r = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "all_tables.tex"],
            cwd=out,
            capture_output=True,
            text=True,
        )
        print("pdflatex:", "ok" if r.returncode == 0 else r.stdout[-2000:])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
