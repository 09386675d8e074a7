"""Real `vectord serve` processes for tests: the same helpers users get from vectord.testing."""

from vectord.testing import ServerProcess, start_server

__all__ = ["ServerProcess", "start_server"]
