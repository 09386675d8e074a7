"""Regenerate the Python protobuf/gRPC modules from the .proto files.

Run from the repository root:

    python proto/generate.py

The generated modules sit beside the .proto files in ``proto/vectord/v1/`` and are
installed as the ``vectord.v1`` package. ``tests/test_proto_fresh.py`` fails when they are
stale, so edit the .proto, run this, and commit both.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILES = sorted((PROTO_ROOT / "vectord" / "v1").glob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc over every .proto into ``out_dir``; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(p.relative_to(PROTO_ROOT)) for p in PROTO_FILES],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed: " + " ".join(args))
    return sorted(p for p in (out_dir / "vectord" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    written = generate(PROTO_ROOT)
    for path in written:
        print(path.relative_to(PROTO_ROOT.parent))
    sys.exit(0)
