"""A slice of the rehearsal (config/rehearsal.yaml: the paper's grid on generated fixtures of
VOC, ADE20K and Cityscapes) through `snakemake --profile slurm` on the local SLURM cluster:
one task of each dataset, every method family once (rehearsal_slice.yaml), every table and
figure rendered. Checked: every job ran as a SLURM job in dependency order (sacct), every cell
of the slice that the paper fills is filled (Table 7's memory aside: no GPU here), each
metrics.json's old/new/all agree with its per-class IoUs, every caption is marked as a
rehearsal, and the tables compile with pdflatex."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from slurm_records import check_records, parse_snakemake_log, query_sacct
from test_slurm_cluster import require_cluster, run_under_slurm

from ucd.reporting.aggregate import read_summary
from ucd.reporting.filled import missing_cells
from ucd.reporting.latex import standalone_document
from ucd.reporting.tables import column_classes, load_tables

REPO = Path(__file__).resolve().parents[2]
SLICE = Path(__file__).with_name("rehearsal_slice.yaml")
RESULTS = "results/rehearsal"


def slice_cells() -> list[tuple[str, ...]]:
    return [tuple(c.split("/")) for c in yaml.safe_load(SLICE.read_text())["benchmark"]]


def check_metrics_columns(results: Path, cell: tuple[str, ...]) -> None:
    """The last step's miou_old/new/all are the means of its per-class IoUs over the
    tables' columns (an independent reading of the same file)."""
    steps = sorted((results / "/".join(cell) / "seed42").glob("step*/metrics.json"))
    assert steps, cell
    m = json.loads(steps[-1].read_text())
    k = len(steps) - 1 if cell[3] != "joint" else None
    for key in ("old", "new", "all"):
        classes = column_classes(cell[0], cell[1], key, step=k)
        values = [m["iou"][str(c)] for c in classes if m["iou"].get(str(c)) is not None]
        want = sum(values) / len(values) if values else None
        got = m[f"miou_{key}"]
        assert (got is None) == (want is None) and (got is None or abs(got - want) < 1e-9), (
            cell, key, got, want)


@pytest.mark.slurm
@pytest.mark.slow
def test_rehearsal_slice_runs_as_slurm_jobs_and_fills_its_cells(tmp_path: Path) -> None:
    require_cluster()
    work = tmp_path / "run"
    since = run_under_slurm(work, "all_tables", "config/paper.yaml", "config/rehearsal.yaml",
                            str(SLICE))

    log = sorted((work / ".snakemake" / "log").glob("*.snakemake.log"))[-1]
    jobs = parse_snakemake_log(log.read_text())
    remote = [j for j in jobs.values() if not j.local]
    assert remote and all(j.slurm_id for j in remote), "some job did not go to SLURM"
    rules = {j.rule for j in remote}
    assert {"generate_data", "split", "replay_set", "train_shared", "train"} <= rules
    assert check_records(jobs, query_sacct(since, work)) == []

    results = work / RESULTS
    summary = read_summary(results / "summary.csv")
    cells = slice_cells()
    assert missing_cells(summary, load_tables(), runs=set(cells), skip_columns=("memory",)) == []
    for cell in cells:
        check_metrics_columns(results, cell)
    tables = sorted((results / "tables").glob("table*.tex"))
    assert len(tables) == 18  # Tables 1-9 and their comparison with the paper
    for path in [*tables, results / "claims.md"]:
        assert "REHEARSAL on generated fixture data" in path.read_text(), path
    assert len(list((results / "figures").rglob("*.png"))) == 2 + 3 + 3  # 10-11, curves, maps
    if shutil.which("pdflatex"):
        (tmp_path / "all.tex").write_text(standalone_document(*(p.read_text() for p in tables)))
        latex = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                                "all.tex"], cwd=tmp_path, capture_output=True, text=True,
                               errors="replace", timeout=300)  # fmt: skip
        assert latex.returncode == 0, latex.stdout[-3000:]
