"""A snapshot of a collection whose tail is due to be sealed (found with sealing forced on).

``Maintenance.snapshot`` refused a collection with sealed segments, but checked before the
checkpoint it runs first; that checkpoint could seal the tail, and the snapshot then copied
the (now empty) tail generation and a MANIFEST naming a segment it did not hold: it was
reported made, with record_count 0. Snapshots now hold sealed segments: every record.
"""

from __future__ import annotations

import numpy as np

from vectord.errors import FailedPreconditionError
from vectord.storage import Database, Tuning

SEALING = Tuning(exact_threshold=1 << 30, checkpoint_min_bytes=1 << 40, seal_rows=64)


def test_a_snapshot_whose_checkpoint_seals_refuses_or_holds_every_record(tmp_path):
    vectors = np.random.default_rng(0).random((100, 4), dtype=np.float32)
    with Database(tmp_path / "d", tuning=SEALING, checkpoint_interval_s=3600) as db:
        col = db.create_collection("c", dim=4)
        col.add([str(i) for i in range(100)], vectors)  # the tail: due to be sealed
        try:
            made = db.create_snapshot("c", "snap")
        except FailedPreconditionError:
            return
        assert made["record_count"] == 100, made
        restored = db.restore_snapshot("snap", "copy")
        assert restored.count() == 100
