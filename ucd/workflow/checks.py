"""Checks of the workflow config at parse time: the JSON schema (structure, types, ranges),
then every layer against the registries (:func:`ucd.planning.resolve.check_static`: sections, term
names and parameters, override matches, variants) and every resolved step config of the grid
(:meth:`ucd.planning.plan.Plan.check`). Messages name the key and list the valid values, so a bad
config fails before any job with a message a user can act on."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from ucd.data.fixtures import FIXTURES
from ucd.data.tasks import check_setting, get_dataset_info, get_task
from ucd.facts.config import ConfigError
from ucd.planning.plan import Cell, Plan
from ucd.planning.resolve import check_static, method_of
from ucd.reporting.tables import available
from ucd.workflow.schema import workflow_schema

# Datasets the workflow can generate itself (`ucd data generate NAME`): the embedded benchmark,
# and fixtures in the real layouts of the paper's datasets (the rehearsal, config/rehearsal.yaml).
GENERATORS = ("digits", *FIXTURES)


def check_schema(config: Mapping[str, Any], schema_file: str | Path) -> None:
    """Validate the config against the JSON schema; the error names every bad key."""
    validator = jsonschema.Draft202012Validator(workflow_schema(schema_file))
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key(e.absolute_path)}: {_schema_message(e)}" for e in errors[:10]]
        raise ConfigError(
            f"invalid workflow config ({len(errors)} problem(s)):\n" + "\n".join(lines)
        )


def _key(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_message(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and "properties" in err.schema:
        valid = ", ".join(sorted(err.schema["properties"]))
        return f"{err.message}; valid keys: {valid}"
    if err.validator == "pattern" and "description" in err.schema:
        return f"{err.message} (expected {err.schema['description']})"
    return err.message


def check_config(config: Mapping[str, Any]) -> Plan:
    """Check names against the registries and resolve every run of the grid; return the plan.

    Errors name the key and list the valid values (datasets, tasks, settings, methods, tables).
    """
    for name, ds in config["datasets"].items():
        _registry_check(f"datasets.{name}", get_dataset_info, name)
        if ds.get("generate") and name not in GENERATORS:
            raise ConfigError(
                f"datasets.{name}.generate: only {', '.join(GENERATORS)} can be generated"
            )
    check_static(config)
    check_tables(config)
    plan = Plan(config)
    for cell in plan.cells:
        check_cell(config, cell)
    check_generated_roots(config, {cell.dataset for cell in plan.cells})
    plan.check()
    return plan


def check_tables(config: Mapping[str, Any]) -> None:
    """Every table of ``report.tables`` is one the report can render (embedded or not)."""
    embedded = bool(config["report"].get("embedded"))
    valid_tables = available(embedded=embedded)
    for table in config["report"]["tables"]:
        if table not in valid_tables:
            raise ConfigError(
                f"report.tables: {table} is not available"
                f"{' on the embedded benchmark' if embedded else ''}; "
                f"valid: {', '.join(valid_tables)}"
            )


def check_generated_roots(config: Mapping[str, Any], used: set[str]) -> None:
    """A generated dataset that the grid reads must be where `generate_data` writes it,
    RESULTS/data/NAME. One the grid does not read is not checked: config.yaml's digits entry
    (results/data/digits) would otherwise refuse the paper's grid with another `results`.
    """
    for name in sorted(used):
        ds = config["datasets"][name]
        if ds.get("generate") and ds["root"] != f"{config['results']}/data/{name}":
            raise ConfigError(
                f"datasets.{name}.root must be {config['results']}/data/{name} for a "
                f"generated dataset, got {ds['root']!r}"
            )


def _registry_check(key: str, func: Callable[..., Any], *args: Any) -> None:
    """Call func(*args); a ValueError becomes a ConfigError prefixed with `key`."""
    try:
        func(*args)
    except (ValueError, ConfigError) as err:
        text = str(err)
        raise ConfigError(text if text.startswith(key) else f"{key}: {text}") from None


def check_cell(config: Mapping[str, Any], cell: Cell) -> None:
    """Raise ConfigError naming the cell when its dataset, task, setting or method is invalid."""
    where = f"run {cell.path}"
    _registry_check(where, get_task, cell.dataset, cell.task)
    _registry_check(where, check_setting, cell.dataset, cell.setting)
    if cell.dataset not in config["datasets"]:
        raise ConfigError(
            f"{where}: dataset {cell.dataset!r} has no entry under datasets "
            f"(configured: {', '.join(config['datasets'])})"
        )
    _registry_check(where, method_of, config, cell.method)
