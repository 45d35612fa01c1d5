"""A method's step-0 metrics.json: the shared step-0 metrics, relabelled with the method (and
its base method) that reuses them, and the directory they come from.

Snakemake `script:` of rule step0_from_shared; `snakemake` is injected."""

import json
from pathlib import Path

snakemake = globals()["snakemake"]
src = Path(snakemake.input[0])
metrics = json.loads(src.read_text())
metrics.update(method=snakemake.wildcards.method, base_method=snakemake.params.base,
               shared_step0=str(src.parent))
Path(snakemake.output[0]).write_text(json.dumps(metrics, indent=1) + "\n")
Path(snakemake.log[0]).write_text(f"copied {src} for {snakemake.wildcards.method}\n")
