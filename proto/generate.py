"""Regenerate the Python protobuf/gRPC modules from the .proto files.

Run from the repository root:

    python proto/generate.py

The generated modules sit beside the .proto files in ``proto/vectord/v1/`` and are
installed as the ``vectord.v1`` package. ``tests/test_proto_fresh.py`` fails when they are
stale, so edit the .proto, run this, and commit both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
PROTO_FILES = sorted((PROTO_ROOT / "vectord" / "v1").glob("*.proto"))


def run_protoc(*args: str) -> None:
    """Runs grpc_tools' protoc on our .proto files (and google/protobuf's) with ``args``.

    It runs in a child process: protoc's bundled libprotobuf can clash with another copy
    already loaded in the calling process (TensorFlow's, in the test run) and crash it.
    """
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"  # google/protobuf/*.proto
    done = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{include}", *args,
         *[str(p.relative_to(PROTO_ROOT)) for p in PROTO_FILES]],
        capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"protoc failed ({done.returncode}): {done.stderr.strip()}")


def generate(out_dir: Path) -> list[Path]:
    """Runs protoc over every .proto into ``out_dir``; returns the files written."""
    run_protoc(f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}")
    return sorted(p for p in (out_dir / "vectord" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    written = generate(PROTO_ROOT)
    for path in written:
        print(path.relative_to(PROTO_ROOT.parent))
    sys.exit(0)
