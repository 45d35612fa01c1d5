"""The JSON schema of the workflow config, its run-config sections generated from the
dataclasses of :mod:`ucd.facts.config`.

``workflow/schemas/config.schema.yaml`` holds what is not a run-config dataclass (grid, seeds,
datasets, overrides, variants, replay, report, resources) and refers to the sections
(``#/$defs/model`` ... ``#/$defs/labels``) without writing them: :func:`workflow_schema`
adds them from :data:`ucd.facts.config.SECTIONS` (each field's kind, choices, range and ``doc``),
and lists them in every object that takes sections (``allOf: [{$ref: .../plain_sections}]``).
A field the dataclasses gain, lose or re-range changes the schema with them.
``python -m ucd.workflow.schema`` prints the whole schema.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import Field, fields
from pathlib import Path
from typing import Any

import yaml

from ucd.facts.config import SECTIONS, load_yaml

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
PLAIN_SECTIONS = "#/$defs/plain_sections"
JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON schema of one run-config field, from its metadata (``ucd.facts.config._opt``)."""
    meta = f.metadata
    kind = meta["kind"]
    nullable = kind.endswith("?")
    kind = kind.rstrip("?")
    out: dict[str, Any] = {}
    if meta["choices"]:
        out["enum"] = [*meta["choices"], *([None] if nullable else [])]
    elif kind == "ints":
        out["type"] = ["array", "null"] if nullable else "array"
        out["items"] = {"type": "integer", **_range(meta)}
        out["minItems"] = 1
    else:
        out["type"] = [JSON_TYPES[kind], "null"] if nullable else JSON_TYPES[kind]
        out.update(_range(meta))
    if meta["doc"]:
        out["description"] = meta["doc"]
    return out


def _range(meta: Any) -> dict[str, float]:
    out = {}
    if meta["low"] is not None:
        out["exclusiveMinimum" if meta["strict_low"] else "minimum"] = meta["low"]
    if meta["high"] is not None:
        out["maximum"] = meta["high"]
    return out


def section_schema(cls: type) -> dict[str, Any]:
    """The JSON schema of a run-config section: its layered fields, nothing else."""
    props = {f.name: field_schema(f) for f in fields(cls) if f.metadata["layered"]}
    doc = (cls.__doc__ or "").strip().splitlines()[0]
    return {"description": doc, "type": "object", "additionalProperties": False,
            "properties": props}


def _list_sections(node: Any) -> None:
    """In every object that takes the sections (``allOf`` naming plain_sections, with
    ``additionalProperties: false``), accept each section's key."""
    if isinstance(node, dict):
        if {"$ref": PLAIN_SECTIONS} in (node.get("allOf") or []):
            node.setdefault("properties", {}).update({name: True for name in SECTIONS})
        for value in node.values():
            _list_sections(value)
    elif isinstance(node, list):
        for value in node:
            _list_sections(value)


def workflow_schema(schema_file: str | Path = SCHEMA_FILE) -> dict[str, Any]:
    """The whole schema: the hand-written file with the generated sections."""
    schema = copy.deepcopy(load_yaml(schema_file))
    defs = schema.setdefault("$defs", {})
    clash = sorted(set(defs) & set(SECTIONS))
    if clash:
        raise ValueError(f"{schema_file}: $defs {', '.join(clash)} are generated from "
                         "ucd/facts/config.py; remove them from the file")
    defs.update({name: section_schema(cls) for name, cls in SECTIONS.items()})
    defs["plain_sections"] = {
        "type": "object",
        "properties": {name: {"$ref": f"#/$defs/{name}"} for name in SECTIONS},
    }
    _list_sections(schema)
    return schema


def main(argv: list[str] | None = None) -> int:
    """Print the whole schema as YAML (``python -m ucd.workflow.schema [FILE]``)."""
    args = sys.argv[1:] if argv is None else argv
    schema = workflow_schema(args[0]) if args else workflow_schema()
    print(yaml.safe_dump(schema, sort_keys=False, width=100), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
