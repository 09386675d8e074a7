"""The former name of storage/layout.py (the on-disk layout of a collection: MANIFEST, log,
generations), kept as an alias so that ``from vectord.storage import checkpoint`` (in
storage/reembed.py, tests and tools) goes on working: it is the same module object, so a
test that patches ``checkpoint.write_generation`` patches what the engine calls."""

import sys

from . import layout

sys.modules[__name__] = layout
