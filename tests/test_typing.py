"""The SDK is mypy-clean: vectord.client and the vectord modules users import.

The installed package maps top-level folders into ``vectord`` (``client/`` is
``vectord.client``, ``proto/vectord/v1`` is ``vectord.v1``), which the editable install does
with an import hook that mypy cannot see. So the check runs on a tree of symbolic links laid
out as installed, with the ``[tool.mypy]`` settings of pyproject.toml. By hand:

    python tests/test_typing.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: folders that become subpackages of ``vectord`` (the engine's are left out: the SDK's types
#: must not depend on them, and pyproject.toml tells mypy to skip them)
SUBPACKAGES = {"client": ROOT / "client", "v1": ROOT / "proto" / "vectord" / "v1"}
CHECKED = ["vectord/client", "vectord/__init__.py", "vectord/errors.py", "vectord/wire.py",
           "vectord/limits.py", "vectord/testing.py"]


def installed_layout(tree: Path) -> Path:
    """``tree/vectord/...`` as the wheel installs it, made of links to the sources."""
    package = tree / "vectord"
    package.mkdir(parents=True)
    for source in sorted((ROOT / "src" / "vectord").iterdir()):
        if source.suffix in (".py", ".pyi") or source.name == "py.typed":
            (package / source.name).symlink_to(source)
    for name, source in SUBPACKAGES.items():
        (package / name).symlink_to(source, target_is_directory=True)
    return tree


def run_mypy(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(tree / ".mypy_cache"), *CHECKED],
        cwd=installed_layout(tree), capture_output=True, text=True, timeout=600)


def test_sdk_is_mypy_clean(tmp_path):
    result = run_mypy(tmp_path)
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
    assert "Success: no issues found" in result.stdout


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        outcome = run_mypy(Path(tmp))
        print(outcome.stdout + outcome.stderr, end="")
        sys.exit(outcome.returncode)
