"""Reporting: the paper's tables and figures as data, its published numbers,
aggregation of metrics.json files, LaTeX/HTML tables and figures.

Import from the submodules (`ucd.reporting.tables`, `.aggregate`, ...); the names below
are loaded lazily so that reading tables.yaml (the workflow does) does not import pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["collect", "load_tables", "required_runs"]


def __getattr__(name: str) -> Any:
    if name == "collect":
        from ucd.reporting.aggregate import collect

        return collect
    if name in ("load_tables", "required_runs"):
        from ucd.reporting import tables

        return getattr(tables, name)
    raise AttributeError(f"module 'ucd.reporting' has no attribute {name!r}")
