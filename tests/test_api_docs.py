"""docs/api.md, the API reference, is rendered from the current .proto files and is complete.

Edit a .proto, then run `python proto/render_docs.py` and commit docs/api.md with it.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "proto"))

import render_docs  # noqa: E402


def test_api_reference_is_fresh():
    committed = ROOT / "docs" / "api.md"
    assert committed.exists(), "docs/api.md is missing: run `python proto/render_docs.py`"
    assert committed.read_text() == render_docs.render(), (
        "docs/api.md is stale: run `python proto/render_docs.py` and commit it")


def _walk(messages, prefix=""):
    for message in messages:
        yield f"{prefix}{message.name}", message
        yield from _walk(message.nested_type, f"{prefix}{message.name}.")


def test_every_service_rpc_message_field_and_enum_value_is_documented():
    """Everything in the protos has its place in the reference, with its comment."""
    files = render_docs.load_descriptors()
    text = render_docs.render()
    missing = []
    for file in files:
        for service in file.service:
            if f"### service `{service.name}`" not in text:
                missing.append(f"service {service.name}")
            for method in service.method:
                if f"#### `{service.name}.{method.name}`" not in text:
                    missing.append(f"rpc {service.name}.{method.name}")
        enums = [(e.name, e) for e in file.enum_type]
        for name, message in _walk(file.message_type):
            if message.options.map_entry:
                continue
            section = re.search(rf"### message `{re.escape(name)}`\n(.*?)(?=\n### |\Z)", text, re.S)
            if section is None:
                missing.append(f"message {name}")
                continue
            for field in message.field:
                row = re.search(rf"^\| `{field.name}` \| .+ \| {field.number} \| (.*) \|$", section.group(1), re.M)
                if row is None or not row.group(1).strip():
                    missing.append(f"field {name}.{field.name} (or its comment)")
            enums += [(f"{name}.{e.name}", e) for e in message.enum_type]
        for name, enum in enums:
            section = re.search(rf"### enum `{re.escape(name)}`\n(.*?)(?=\n### |\Z)", text, re.S)
            if section is None:
                missing.append(f"enum {name}")
                continue
            for value in enum.value:
                if not re.search(rf"^\| `{value.name}` \| {value.number} \| .+ \|$", section.group(1), re.M):
                    missing.append(f"enum value {name}.{value.name} (or its comment)")
    assert not missing, "\n".join(missing)


def test_comments_come_from_the_proto():
    text = render_docs.render()
    assert "Finds the nearest records to each query vector, nearest first." in text
    assert "| `data_f32le` | `bytes` | 3 | The vectors: exactly `count * dim * 4` bytes. |" in text
    assert "| `NIN` | 8 | Equal to none of the listed values; also true when the field is missing. |" in text
