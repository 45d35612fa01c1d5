"""The Python side of the Snakemake workflow (``Snakefile``, ``workflow/rules/*.smk``).

The rule files hold rules only; what they compute lives here, linted and tested like the rest
of the package: the checks of the workflow config at parse time (:mod:`.checks`), its JSON
schema, generated from the run-config dataclasses (:mod:`.schema`), the input functions,
parameters and resources of the rules (:mod:`.helpers`) and the fork server's start and stop
(:mod:`.fork_server`). Every decision about the grid is :mod:`ucd.planning.plan`'s; this package
only turns it into file names and command-line arguments.
"""
