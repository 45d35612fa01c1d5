"""Write RUN.yaml (the resolved config of one training step, passed as params.run) atomically.

Snakemake `script:` of rules run_config and run_config_shared; `snakemake` is injected."""

from pathlib import Path

import yaml

snakemake = globals()["snakemake"]
run, out = snakemake.params.run, Path(snakemake.output[0])
tmp = out.with_name(f".{out.name}.tmp")
tmp.write_text(yaml.safe_dump(run, sort_keys=False))
tmp.replace(out)
Path(snakemake.log[0]).write_text(f"wrote {out}: {run['method']} step {run['step']}\n")
