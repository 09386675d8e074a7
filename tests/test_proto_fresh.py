"""The committed generated code matches the .proto files (run `python proto/generate.py`)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "proto"))

from generate import generate  # noqa: E402


def test_generated_code_is_fresh(tmp_path):
    written = generate(tmp_path)
    assert written, "protoc produced nothing"
    committed = ROOT / "proto" / "vectord" / "v1"
    stale = [p.name for p in written if p.read_bytes() != (committed / p.name).read_bytes()]
    missing = [p.name for p in written if not (committed / p.name).exists()]
    assert not missing and not stale, (
        f"generated code is stale ({stale + missing}): run `python proto/generate.py` and commit")


def test_every_rpc_and_field_is_commented():
    """The proto is written for people: a comment above every rpc, field and message."""
    undocumented = []
    for proto in sorted((ROOT / "proto" / "vectord" / "v1").glob("*.proto")):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            text = line.strip()
            is_field = text.endswith(";") and "=" in text and not text.startswith(("option", "syntax", "package"))
            if text.startswith("rpc ") or (is_field and not text.startswith("//")):
                if not lines[i - 1].strip().startswith("//"):
                    undocumented.append(f"{proto.name}:{i + 1}: {text}")
    assert not undocumented, "\n".join(undocumented)
