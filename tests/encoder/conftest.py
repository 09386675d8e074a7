"""Make the encoder importable in a source checkout before `vectord` is installed.

Tests import `vectord.encoder` when the package is installed, else the top-level `encoder` folder
of the repository (added to sys.path here; harmless when the package is installed).
"""
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:
    import vectord.encoder  # noqa: F401
except ImportError:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def pytest_configure(config):
    config.addinivalue_line("markers", "training: needs the training extra (tensorflow, tf2onnx)")


@pytest.fixture(scope="session")
def encmod():
    try:
        import vectord.encoder as m
    except ImportError:
        import encoder as m
    return m
