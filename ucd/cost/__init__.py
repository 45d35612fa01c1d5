"""``ucd cost``: the GPU-hours, peak memory and critical path of a grid before it is submitted,
counted on the DAG the workflow would run (dag), with images per step (counts), seconds per
iteration per kind of job (rates, measured) and the report (estimate, report, cli)."""
