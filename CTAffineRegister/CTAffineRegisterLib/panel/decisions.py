"""What the module panel decides, as plain functions: which fill, which transform, which volumes, what
the button and the status area say. The Qt panel (``CTAffineRegister.py``) only shows the answers.

The panel file needs Qt and a running Slicer, so the test suite can only parse it; every decision that
could be wrong (an inverted checkbox, a volume left out, a wrong status) lives here instead, where the
suite runs it against the real MRML library (``Testing/test_panel_support.py``). Strings the panel
translates stay in the panel; these functions return values, not sentences, except the result lines of
``result_lines``.

Pure module: works through the methods of the MRML nodes it is given; imports neither ``slicer`` nor Qt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

from . import result_lines

TRANSFORM_TYPES = ("affine", "similarity", "rigid")
# Why a run never starts: no fixed volume, or no moving volume checked.
NOT_READY = "not ready"


@dataclass(frozen=True)
class PanelChoices:
    """What the panel's parameter node says (``CTAffineRegisterParameterNode``, with Python names)."""

    fixed_volume: Any = None
    moving_volumes: tuple = ()
    transform_type: str = "affine"
    automatic_fill: bool = True
    fill_value: float = -1000.0
    create_mask: bool = False
    carry_segmentations: bool = False


def choices_from_parameters(parameters) -> PanelChoices:
    """The panel's choices from its parameter node wrapper (or anything with the same attributes).

    Args:
        parameters: ``CTAffineRegisterParameterNode`` (fixedVolume, movingVolumes, transformType,
            automaticFill, fillValue, createMask, carrySegmentations).

    Returns:
        The same values as a ``PanelChoices``.
    """
    return PanelChoices(
        fixed_volume=parameters.fixedVolume,
        moving_volumes=tuple(parameters.movingVolumes),
        transform_type=str(parameters.transformType),
        automatic_fill=bool(parameters.automaticFill),
        fill_value=float(parameters.fillValue),
        create_mask=bool(parameters.createMask),
        carry_segmentations=bool(parameters.carrySegmentations),
    )


def fill_for_run(automatic_fill: bool, fill_value: float) -> Optional[float]:
    """The ``fill`` a run gets: None (the moving scan's own air level) while *Automatic fill* is ticked,
    the typed value once it is unticked."""
    return None if automatic_fill else float(fill_value)


def fill_value_editable(automatic_fill: bool) -> bool:
    """The fill value box can be edited only while *Automatic fill* is unticked (it is unused otherwise)."""
    return not automatic_fill


def moving_volumes_to_register(choices: PanelChoices) -> list:
    """The checked moving volumes, in order, without the empty references a deleted node leaves."""
    return [node for node in choices.moving_volumes if node is not None]


def ready_to_apply(choices: PanelChoices) -> bool:
    """Apply is possible with a fixed volume and at least one checked moving volume."""
    return choices.fixed_volume is not None and bool(moving_volumes_to_register(choices))


def run_arguments(choices: PanelChoices) -> dict:
    """The keyword arguments of ``panel.run.PanelRun.start`` (and ``mrml.volume_nodes.ThreadedRegistration``).

    Args:
        choices: what the panel shows.

    Returns:
        ``fixed_node``, ``moving_nodes``, ``transform``, ``fill``, ``create_mask``, ``carry_segmentations``.

    Raises:
        ValueError: no fixed volume or no moving volume (message ``NOT_READY``...), or an unknown
            transform type (a scene saved by another version, say).
    """
    if not ready_to_apply(choices):
        raise ValueError(f"{NOT_READY}: select a fixed volume and check at least one moving volume")
    if choices.transform_type not in TRANSFORM_TYPES:
        raise ValueError(
            f"unknown transform type {choices.transform_type!r}; use one of {', '.join(TRANSFORM_TYPES)}"
        )
    return {
        "fixed_node": choices.fixed_volume,
        "moving_nodes": moving_volumes_to_register(choices),
        "transform": choices.transform_type,
        "fill": fill_for_run(choices.automatic_fill, choices.fill_value),
        "create_mask": bool(choices.create_mask),
        "carry_segmentations": bool(choices.carry_segmentations),
    }


def moving_names(moving_nodes: Sequence) -> dict:
    """Moving node ID → name, kept for the status lines: a node deleted meanwhile still has its name."""
    return {node.GetID(): node.GetName() for node in moving_nodes if node is not None}


def accepts_selector_change(has_parameters: bool, updating: bool, entered: bool, scene_busy: bool) -> bool:
    """Whether a selector's change is the user's (and goes to the parameter node): not made by the panel
    itself, not during a scene import or close (``scene_watch``), not while the module is hidden."""
    return bool(has_parameters and not updating and entered and not scene_busy)


def moving_check_marks(row_nodes: Sequence, moving_volumes: Sequence) -> list[bool]:
    """For each row of the moving volumes selector, whether it is checked: the parameter node's list."""
    wanted = {node.GetID() for node in moving_volumes if node is not None}
    return [node.GetID() in wanted for node in row_nodes]


def default_fixed_volume(scene, current):
    """The fixed volume to show: the chosen one, else the scene's first scalar volume (or None)."""
    if current is not None:
        return current
    return scene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode") if scene is not None else None


def progress_percent(index: int, count: int, fraction: float) -> int:
    """The progress bar for volume ``index`` of ``count`` at ``fraction`` of its registration."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    return int(100 * (index + fraction) / max(count, 1))


def progress_fields(index: int, count: int, name: str, event) -> dict:
    """What the status line shows during a run (the panel formats it): volume, its number, the
    registration's stage, pyramid level and iteration."""
    return {
        "name": name,
        "number": index + 1,
        "count": count,
        "stage": getattr(event, "stage", ""),
        "level": getattr(event, "level", ""),
        "iteration": getattr(event, "iteration", ""),
    }


@dataclass
class FinishedView:
    """What the panel shows when a run ends.

    ``lines``: the status lines (counts, then each volume's verdict or error); ``error``: why the run
    itself broke down, or None; ``foreground``: the newest registered volume to show over the fixed
    one, or None; ``show_error_dialog``: the run broke down, or nothing was registered and something
    failed.
    """

    lines: list
    error: Optional[str]
    foreground: Any
    show_error_dialog: bool


def finished_view(results: Sequence, names: dict, error: Optional[str]) -> FinishedView:
    """What the panel shows for a finished run.

    Args:
        results: ``mrml.volume_nodes.NodeResult`` per moving volume.
        names: moving node ID → name (``moving_names``, taken when the run started).
        error: the first line of why the run itself broke down, or None.

    Returns:
        The ``FinishedView``; it holds the result volume to show, so the caller drops it once shown.
    """
    named = [(names.get(result.moving_node_id, result.moving_node_id), result.report) for result in results]
    done = [result for result in results if result.status == "ok"]
    failed = [result for result in results if result.status == "failed"]
    return FinishedView(
        lines=result_lines.summary_lines(named),
        error=error or None,
        foreground=done[-1].volume_node if done else None,
        show_error_dialog=bool(error) or bool(failed and not done),
    )
