"""The `final` flag of a run: the metrics file of its last step and the paper's columns.

Snakemake `script:` of rule final (input: metrics.json of every step, in order)."""

import json
from pathlib import Path

snakemake = globals()["snakemake"]
last = str(snakemake.input[-1])
metrics = json.loads(Path(last).read_text())
cols = ("miou_old", "miou_new", "miou_all", "background_iou")
out = {"metrics": last, "step": metrics.get("step"), **{k: metrics.get(k) for k in cols}}
Path(snakemake.output[0]).write_text(json.dumps(out, indent=1) + "\n")
Path(snakemake.log[0]).write_text(f"{snakemake.output[0]}: {out}\n")
