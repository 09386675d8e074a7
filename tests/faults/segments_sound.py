"""What a collection with sealed segments must hold after any crash (the crash tests' check)."""

from __future__ import annotations

from vectord.storage import checkpoint as disk


def assert_segments_sound(col) -> None:
    """Every live id is in exactly one of the tail and the sealed segments, and every
    segment directory or delete bitmap on disk is one the MANIFEST lists (no stray
    ``seg-*`` left by a swap the crash cut short, except those the next start removes)."""
    seen: set[str] = set()
    for state in [col.state] + [segment.state for segment in col.sealed]:
        ids = set(state.records.ids.take(state.records.live().tolist()))
        assert not seen & ids, f"ids in two places: {sorted(seen & ids)[:5]}"
        seen |= ids
    listed = disk.read_manifest(col.path).get("segments", [])
    names = {entry["name"] for entry in listed} | {entry["deletes"]["file"] for entry in listed if entry["deletes"]}
    assert {p.name for p in col.path.glob("seg-*")} <= names
