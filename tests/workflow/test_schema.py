"""The workflow config's JSON schema takes its run-config sections from ucd/facts/config.py: a
value the dataclasses accept the schema accepts, and the reverse, field by field (jsonschema
against ucd's own checks, two independent validators); the hand-written file holds none of
the sections."""

from __future__ import annotations

from dataclasses import fields

import jsonschema
import pytest

from ucd.facts.config import SECTIONS, ConfigError, DataConfig, build_section
from ucd.workflow.schema import SCHEMA_FILE, main, section_schema, workflow_schema

SAMPLES = (None, True, False, -1, 0, 1, 8, 16, 0.5, 2.5, "", "x", "auto", "abn", "none",
           "fp16", "ignore", "background", "seen", "score", "incremental", "resnet18",
           [], [1, 2], [0], ["a"], {})


def _accepted_by_ucd(cls: type, name: str, value: object) -> bool:
    try:
        build_section(cls, {name: value}, "x")
    except ConfigError:
        return False
    return True


@pytest.mark.parametrize("section", list(SECTIONS))
def test_schema_and_dataclass_accept_the_same_values(section):
    cls = SECTIONS[section]
    validator = jsonschema.Draft202012Validator(section_schema(cls))
    for f in fields(cls):
        if not f.metadata["layered"]:
            continue
        values = (*SAMPLES, *f.metadata["choices"])
        for value in values:
            by_schema = validator.is_valid({f.name: value})
            assert by_schema == _accepted_by_ucd(cls, f.name, value), (section, f.name, value)


def test_generated_fields_as_written_by_hand():
    optim = section_schema(SECTIONS["optim"])["properties"]
    assert optim["lr"] == {"type": "number", "exclusiveMinimum": 0, "description": "learning rate"}
    assert optim["momentum"] == {"type": "number", "minimum": 0, "maximum": 1}
    model = section_schema(SECTIONS["model"])["properties"]
    assert model["output_stride"] == {"enum": [8, 16]}
    assert {k: v for k, v in model["aspp_rates"].items() if k != "description"} == {
        "type": ["array", "null"], "items": {"type": "integer", "minimum": 1}, "minItems": 1}
    assert section_schema(SECTIONS["train"])["properties"]["threads"]["type"] == [
        "integer", "null"]


def test_data_root_is_the_datasets_not_a_layers():
    assert "root" in {f.name for f in fields(DataConfig)}
    assert "root" not in section_schema(DataConfig)["properties"]


def test_every_object_taking_sections_lists_them():
    schema = workflow_schema()
    for where in (schema["properties"]["datasets"]["additionalProperties"],
                  schema["properties"]["overrides"]["items"],
                  schema["properties"]["variants"]["additionalProperties"],
                  schema["$defs"]["incremental"]):
        assert set(SECTIONS) <= set(where["properties"]), where
        assert where["additionalProperties"] is False


def test_the_file_holds_no_section_and_refuses_one(tmp_path):
    text = SCHEMA_FILE.read_text()
    assert "$defs" in text and "\n  optim:" not in text and "plain_sections:" not in text
    bad = tmp_path / "schema.yaml"
    bad.write_text(text.replace("$defs:\n", "$defs:\n  optim: {type: object}\n", 1))
    with pytest.raises(ValueError, match="optim are generated from ucd/facts/config.py"):
        workflow_schema(bad)


def test_the_whole_schema_prints(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "exclusiveMinimum: 0" in out and "ignore_to_background:" in out
