# Checks of the workflow config at parse time (no rules here): the JSON schema (structure,
# types, ranges), then names against the registries (datasets, tasks, settings, methods,
# tables) and every resolved step config. Messages name the key and list the valid values.

from pathlib import Path

import jsonschema
import yaml

from ucd.config import ConfigError, resolve_method_name
from ucd.data.tasks import check_setting, get_dataset_info, get_task
from ucd.reporting.tables import available

# Datasets the workflow can generate itself (`ucd data generate NAME`).
GENERATORS = ("digits",)


def check_schema(config: dict, schema_file: str) -> None:
    """Validate the config against the JSON schema; the error names every bad key."""
    schema = yaml.safe_load(Path(schema_file).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [
            f"  {_key(e.absolute_path)}: {_schema_message(e)}" for e in errors[:10]
        ]
        raise ConfigError(
            f"invalid workflow config ({len(errors)} problem(s)):\n" + "\n".join(lines)
        )


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _schema_message(err: jsonschema.ValidationError) -> str:
    if err.validator == "additionalProperties" and "properties" in err.schema:
        valid = ", ".join(sorted(err.schema["properties"]))
        return f"{err.message}; valid keys: {valid}"
    if err.validator == "pattern" and "description" in err.schema:
        return f"{err.message} (expected {err.schema['description']})"
    return err.message


def check_config(config: dict) -> list[Cell]:
    """Check names against the registries and resolve every run of the grid; return the grid.

    Errors name the key and list the valid values (datasets, tasks, settings, methods, tables).
    """
    datasets = config["datasets"]
    for name, ds in datasets.items():
        _registry_check(f"datasets.{name}", get_dataset_info, name)
        if ds.get("generate"):
            if name not in GENERATORS:
                raise ConfigError(
                    f"datasets.{name}.generate: only {', '.join(GENERATORS)} can be generated"
                )
            if ds["root"] != generated_root(name):
                raise ConfigError(
                    f"datasets.{name}.root must be {generated_root(name)} for a generated "
                    f"dataset, got {ds['root']!r}"
                )
    for name in config.get("variants") or {}:
        _registry_check(f"variants.{name}", resolve_method_name, config, name)
    embedded = bool(config["report"].get("embedded"))
    valid_tables = available(embedded=embedded)
    for table in config["report"]["tables"]:
        if table not in valid_tables:
            raise ConfigError(
                f"report.tables: {table} is not available"
                f"{' on the embedded benchmark' if embedded else ''}; "
                f"valid: {', '.join(valid_tables)}"
            )
    cells = grid_cells(config)
    if not cells:
        raise ConfigError("grid: no runs (every entry is empty or filtered out)")
    for cell in cells:
        check_cell(config, cell)
    return cells


def _registry_check(key: str, func, *args) -> None:
    """Call func(*args); a ValueError becomes a ConfigError prefixed with `key`."""
    try:
        func(*args)
    except (ValueError, ConfigError) as err:
        text = str(err)
        raise ConfigError(text if text.startswith(key) else f"{key}: {text}") from None


def check_cell(config: dict, cell: Cell) -> None:
    """Raise ConfigError naming the cell when its dataset, task, setting, method or any
    of its resolved step configs is invalid."""
    where = f"run {'/'.join(cell)}"
    _registry_check(where, get_task, cell.dataset, cell.task)
    _registry_check(where, check_setting, cell.dataset, cell.setting)
    if cell.dataset not in config["datasets"]:
        raise ConfigError(
            f"{where}: dataset {cell.dataset!r} has no entry under datasets "
            f"(configured: {', '.join(config['datasets'])})"
        )
    _registry_check(where, resolve_method_name, config, cell.method)
    for k in steps(*cell[:2], cell.method):
        _registry_check(f"{where} step {k}", step_config, *cell, k)
