"""Panel decisions that need no MRML scene (panel/decisions.py): run without slicer-core too."""

from __future__ import annotations

from types import SimpleNamespace

from CTAffineRegisterLib.panel import decisions


def test_progress_fields_before_the_first_stage_leave_stage_level_and_iteration_blank():
    # The first progress event of a volume comes before any stage started: the status line must show
    # blanks, not "None" or a placeholder.
    fields = decisions.progress_fields(0, 2, "CT A", SimpleNamespace(fraction=0.0))
    assert fields == {"name": "CT A", "number": 1, "count": 2, "stage": "", "level": "", "iteration": ""}
    assert "".join(str(fields[key]) for key in ("stage", "level", "iteration")) == ""


def test_no_default_fixed_volume_without_a_scene():
    assert decisions.default_fixed_volume(None, None) is None
    chosen = object()
    assert decisions.default_fixed_volume(None, chosen) is chosen
