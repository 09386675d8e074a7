"""The state machine of tests/test_state_machine.py with sealed segments (docs/segments.md):
the tail is sealed every few records and segments merge, so that every rule (writes of
sealed records, filters, queries, checkpoints, compaction, restarts in a fresh process,
crashes) runs against a list of segments plus the tail, and must still match the model."""

from __future__ import annotations

from test_state_machine import PROFILE, VectordMachine, settings


class SegmentedMachine(VectordMachine):
    EXTRA_KNOBS = {"seal_rows": 5, "merge_factor": 2}


SegmentedMachine.TestCase.settings = settings.get_profile(PROFILE)
TestSegmentedStateMachine = SegmentedMachine.TestCase
