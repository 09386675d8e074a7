"""The state machine of tests/test_state_machine.py with sealed segments (docs/segments.md):
the tail is sealed every few records and segments merge, so that every rule (writes of
sealed records, filters, queries, checkpoints, compaction, restarts in a fresh process,
crashes) runs against a list of segments plus the tail, and must still match the model."""

from __future__ import annotations

import pytest

from test_state_machine import PROFILE, VectordMachine, settings

pytestmark = pytest.mark.timeout(3600 if PROFILE == "long" else 900)


class SegmentedMachine(VectordMachine):
    EXTRA_KNOBS = {"seal_rows": 5, "merge_factor": 2}


# half the ci profile's examples: a run here seals and merges at most checkpoints (~400 s
# for 25 examples on 2 loaded cores); the long profile runs all of its own
PROFILE_SETTINGS = settings.get_profile(PROFILE)
SegmentedMachine.TestCase.settings = (settings(PROFILE_SETTINGS, max_examples=12) if PROFILE == "ci"
                                      else PROFILE_SETTINGS)
TestSegmentedStateMachine = SegmentedMachine.TestCase
