"""The module panel's decisions and its background run, on the real MRML library (PyPI ``slicer-core``).

``CTAffineRegister.py`` needs Qt and a running Slicer, so the suite only parses it; what its handlers
decide (which fill, which transform, which volumes, what the button and status say) is in
``panel_decisions`` and its run in ``panel_run``, both run here. The parameter node wrapper does not
exist in ``slicer-core``: its values come here as a plain object with the wrapper's attribute names;
every node is a real MRML node. The Qt timer is stood in for by a queue of calls.
"""

from __future__ import annotations

import collections
import gc
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk

try:
    import slicer
    import vtk
except ImportError as error:  # slicer-core has wheels for CPython 3.10-3.13 only
    pytest.skip(
        f"the MRML library (PyPI package slicer-core) cannot be imported here: {error}",
        allow_module_level=True,
    )

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge
from CTAffineRegisterLib.panel import decisions as panel_decisions
from CTAffineRegisterLib.panel.decisions import PanelChoices
from CTAffineRegisterLib.panel.run import PanelRun


@pytest.fixture(scope="module")
def pair():
    return synthetic.make_pair(
        seed=3, fixed_size=(64, 64, 48), fixed_spacing=(4.0, 4.0, 5.0), moving_spacing=(4.6, 4.6, 5.75)
    )


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    yield scene
    scene.Clear(1)


def _parameters(**values):
    """The parameter node wrapper's attributes (``CTAffineRegisterParameterNode``), defaults as there."""
    defaults = {
        "fixedVolume": None,
        "movingVolumes": [],
        "transformType": "affine",
        "automaticFill": True,
        "fillValue": -1000.0,
        "createMask": False,
        "carrySegmentations": False,
    }
    defaults.update(values)
    return SimpleNamespace(**defaults)


class _Timer:
    """Stands in for ``qt.QTimer.singleShot(0, call)``: calls run in order as the loop drains them."""

    def __init__(self):
        self.pending = collections.deque()

    def schedule(self, call) -> None:
        self.pending.append(call)

    def drain(self, seconds: float = 300.0) -> None:
        """Run scheduled calls until none is left (the run has finished); the time is a safety net."""
        expired = threading.Event()
        timer = threading.Timer(seconds, expired.set)
        timer.start()
        try:
            while self.pending and not expired.is_set():
                self.pending.popleft()()
        finally:
            timer.cancel()
        assert not self.pending, "the run never finished"


def _live_images() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, sitk.Image))


def _live_runs() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, mrml_bridge.ThreadedRegistration))


# ---------------------------------------------------------------------------------------------
# Which fill (issue 22 item 10: the "Automatic fill" checkbox must not act the wrong way round)


def test_automatic_fill_ticked_means_no_fill_value_and_unticked_the_typed_one():
    assert panel_decisions.fill_for_run(True, -500.0) is None
    assert panel_decisions.fill_for_run(False, -500.0) == -500.0
    assert panel_decisions.fill_value_editable(False) and not panel_decisions.fill_value_editable(True)
    ticked = panel_decisions.choices_from_parameters(_parameters(automaticFill=True, fillValue=-7.0))
    unticked = panel_decisions.choices_from_parameters(_parameters(automaticFill=False, fillValue=-7.0))
    assert (ticked.automatic_fill, unticked.automatic_fill) == (True, False)
    assert unticked.fill_value == -7.0


def test_unticked_automatic_fill_puts_the_typed_value_where_the_result_has_no_moving_data(scene, pair):
    """End to end through the panel's decisions and run: the typed value reaches the voxels."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    outcomes = []
    timer = _Timer()
    runner = PanelRun(timer.schedule, pause_seconds=0.005, registration=mrml_bridge.ThreadedRegistration)
    for automatic in (False, True):
        parameters = _parameters(
            fixedVolume=fixed,
            movingVolumes=[moving],
            transformType="rigid",
            automaticFill=automatic,
            fillValue=-777.0,
            createMask=True,
        )
        arguments = panel_decisions.run_arguments(panel_decisions.choices_from_parameters(parameters))

        def on_finished(results, error):
            (result,) = results
            voxels = slicer.util.arrayFromVolume(result.volume_node)
            outside = slicer.util.arrayFromVolume(result.mask_node) == 0
            outcomes.append((result.report["fill"], set(np.unique(voxels[outside]).tolist()), error))

        runner.start(**arguments, on_finished=on_finished)
        timer.drain()
    (typed, typed_voxels, error), (air, air_voxels, _) = outcomes
    assert error is None and typed == -777.0 and typed_voxels == {-777}
    assert air != -777.0 and air_voxels == {air}  # the moving scan's own air level


# ---------------------------------------------------------------------------------------------
# Which transform, which volumes, when Apply is possible


def test_run_arguments_take_each_choice_to_its_own_option(scene):
    fixed, b, c = (mrml_bridge.add_volume_node_from_image(scene, _small(), name) for name in "ABC")
    for transform, mask, carry in (("similarity", True, False), ("rigid", False, True)):
        choices = panel_decisions.choices_from_parameters(
            _parameters(
                fixedVolume=fixed,
                movingVolumes=[c, None, b],  # None: a checked volume deleted meanwhile
                transformType=transform,
                createMask=mask,
                carrySegmentations=carry,
            )
        )
        arguments = panel_decisions.run_arguments(choices)
        assert arguments == {
            "fixed_node": fixed,
            "moving_nodes": [c, b],
            "transform": transform,
            "fill": None,
            "create_mask": mask,
            "carry_segmentations": carry,
        }
    assert panel_decisions.moving_names([c, None, b]) == {c.GetID(): "C", b.GetID(): "B"}


def test_run_arguments_refuse_what_cannot_run(scene):
    fixed, moving = (mrml_bridge.add_volume_node_from_image(scene, _small(), name) for name in "AB")
    with pytest.raises(ValueError, match="not ready"):
        panel_decisions.run_arguments(PanelChoices(fixed_volume=fixed, moving_volumes=(None,)))
    with pytest.raises(ValueError, match="not ready"):
        panel_decisions.run_arguments(PanelChoices(fixed_volume=None, moving_volumes=(moving,)))
    with pytest.raises(ValueError, match="unknown transform type 'bspline'"):
        panel_decisions.run_arguments(
            PanelChoices(fixed_volume=fixed, moving_volumes=(moving,), transform_type="bspline")
        )


def test_apply_is_possible_only_with_a_fixed_and_a_checked_moving_volume(scene):
    fixed, moving = (mrml_bridge.add_volume_node_from_image(scene, _small(), name) for name in "AB")
    ready = panel_decisions.ready_to_apply
    assert ready(PanelChoices(fixed_volume=fixed, moving_volumes=(moving,)))
    assert ready(PanelChoices(fixed_volume=fixed, moving_volumes=(None, moving)))
    assert not ready(PanelChoices(fixed_volume=fixed, moving_volumes=(None,)))
    assert not ready(PanelChoices(fixed_volume=None, moving_volumes=(moving,)))
    assert not ready(PanelChoices())


def test_check_marks_and_the_default_fixed_volume_follow_the_scene(scene):
    assert panel_decisions.default_fixed_volume(scene, None) is None
    labels = scene.AddNewNodeByClass("vtkMRMLModelNode", "not a volume")
    a, b, c = (mrml_bridge.add_volume_node_from_image(scene, _small(), name) for name in "ABC")
    assert labels is not None
    assert panel_decisions.default_fixed_volume(scene, None) is a
    assert panel_decisions.default_fixed_volume(scene, c) is c
    assert panel_decisions.moving_check_marks([a, b, c], [c, None, a]) == [True, False, True]
    assert panel_decisions.moving_check_marks([a, b, c], []) == [False, False, False]


def test_selector_changes_count_only_when_the_user_made_them():
    accepts = panel_decisions.accepts_selector_change
    assert accepts(has_parameters=True, updating=False, entered=True, scene_busy=False)
    assert not accepts(has_parameters=False, updating=False, entered=True, scene_busy=False)
    assert not accepts(has_parameters=True, updating=True, entered=True, scene_busy=False)
    assert not accepts(has_parameters=True, updating=False, entered=False, scene_busy=False)
    assert not accepts(has_parameters=True, updating=False, entered=True, scene_busy=True)


# ---------------------------------------------------------------------------------------------
# What the progress bar and the status area say


def test_progress_covers_each_volume_in_turn():
    assert panel_decisions.progress_percent(0, 2, 0.0) == 0
    assert panel_decisions.progress_percent(0, 2, 0.5) == 25
    assert panel_decisions.progress_percent(1, 2, 1.0) == 100
    assert panel_decisions.progress_percent(1, 4, 7.0) == 50  # a fraction out of range is clamped
    assert panel_decisions.progress_percent(0, 0, 0.5) == 50
    event = SimpleNamespace(stage="affine", level=2, iteration=17, fraction=0.3)
    assert panel_decisions.progress_fields(1, 3, "CT C", event) == {
        "name": "CT C", "number": 2, "count": 3, "stage": "affine", "level": 2, "iteration": 17,
    }  # fmt: skip


def test_finished_view_names_each_volume_and_warns_only_when_nothing_was_registered(scene):
    shown = mrml_bridge.add_volume_node_from_image(scene, _small(), "B registered")
    later = mrml_bridge.add_volume_node_from_image(scene, _small(), "D registered")
    ok = {"status": "ok", "quality": {"verdict": "ok", "reason": "anatomy agrees"}}
    failed = {"status": "failed", "error": "'C' has no voxels"}
    names = {"id-b": "B", "id-c": "C", "id-d": "D"}
    results = [
        mrml_bridge.NodeResult("id-b", volume_node=shown, report=ok),
        mrml_bridge.NodeResult("id-c", report=failed),
        mrml_bridge.NodeResult("id-d", volume_node=later, report=ok),
    ]
    view = panel_decisions.finished_view(results, names, None)
    assert view.lines == [
        "2 registered: 2 ok verdict; 1 not registered.",
        "B: ok – anatomy agrees",
        "D: ok – anatomy agrees",
        "C: not registered – 'C' has no voxels",
    ]
    assert view.foreground is later and not view.show_error_dialog and view.error is None

    only_failed = panel_decisions.finished_view(results[1:2], names, None)
    assert only_failed.foreground is None and only_failed.show_error_dialog
    broken = panel_decisions.finished_view(results[:1], names, "the fixed analysis failed")
    assert broken.show_error_dialog and broken.error == "the fixed analysis failed"
    cancelled = [mrml_bridge.NodeResult("id-b", report=mrml_bridge.cancelled_report())]
    stopped = panel_decisions.finished_view(cancelled, names, None)
    assert stopped.lines == ["0 registered; 1 cancelled."] and not stopped.show_error_dialog
    unknown = panel_decisions.finished_view([mrml_bridge.NodeResult("id-x", report=failed)], {}, None)
    assert unknown.lines[1].startswith("id-x: not registered")


# ---------------------------------------------------------------------------------------------
# The logic's run: one at a time, and nothing of it kept once it has finished (issue 21 item 17)


def test_nothing_of_a_finished_run_stays_reachable_and_closing_the_scene_frees_its_results(pair):
    scene = slicer.vtkMRMLScene()
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    mrml_bridge.register_volume_nodes(fixed, [moving], transform="rigid")  # first-use allocations
    images_before, runs_before = _live_images(), _live_runs()
    timer = _Timer()
    # held for the panel's life, as the logic does
    runner = PanelRun(timer.schedule, pause_seconds=0.005, registration=mrml_bridge.ThreadedRegistration)
    statuses, freed = [], []

    def on_finished(results, error):
        statuses.append([result.status for result in results])
        for result in results:  # the result volume's voxels, freed only when nothing holds the node
            result.volume_node.GetImageData().AddObserver(
                vtk.vtkCommand.DeleteEvent, lambda caller, event: freed.append(True)
            )

    runner.start(fixed, [moving], transform="rigid", create_mask=True, on_finished=on_finished)
    assert runner.is_running()
    timer.drain()
    assert statuses == [["ok"]] and not runner.is_running()
    assert _live_images() == images_before, "the fixed volume's copy is still held"
    assert _live_runs() == runs_before, "the finished run is still held"
    assert freed == []  # the result is in the scene
    scene.Clear(0)  # File > Close Scene
    gc.collect()
    assert freed == [True], "the result volume's voxels outlive the scene"


def test_closing_the_scene_during_a_run_ends_it_with_nothing_made_and_nothing_kept(pair):
    """The panel cancels at the scene's StartCloseEvent (``onSceneStartClose``); here the user closes
    the scene while the first of two volumes is being registered."""
    scene = slicer.vtkMRMLScene()
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    movings = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BC"]
    mrml_bridge.register_volume_nodes(fixed, movings[:1], transform="rigid")  # first-use allocations
    scene.Clear(0)
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    movings = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BC"]
    images_before, runs_before = _live_images(), _live_runs()
    timer = _Timer()
    runner = PanelRun(timer.schedule, pause_seconds=0.005, registration=mrml_bridge.ThreadedRegistration)
    tag = scene.AddObserver(scene.StartCloseEvent, lambda caller, event: runner.cancel())
    statuses = []

    def close_at_first_progress(*args):
        if scene.GetNumberOfNodes():
            scene.Clear(0)  # File > Close Scene, between two polls on the GUI thread

    runner.start(
        fixed,
        movings,
        transform="rigid",
        on_progress=close_at_first_progress,
        on_finished=lambda results, error: statuses.append([result.status for result in results]),
    )
    del fixed, movings
    timer.drain()
    scene.RemoveObserver(tag)
    assert statuses == [["cancelled", "cancelled"]] and not runner.is_running()
    assert scene.GetNumberOfNodes() == 0  # nothing made in the closed (now empty) scene
    assert _live_images() == images_before and _live_runs() == runs_before


def test_a_run_whose_callbacks_raise_still_finishes_and_is_let_go(scene, pair, caplog):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    timer = _Timer()
    runner = PanelRun(timer.schedule, pause_seconds=0.005, registration=mrml_bridge.ThreadedRegistration)
    finished = []

    def on_case_done(index, count, result):
        raise MemoryError("the progress bar ran out of memory")

    def on_finished(results, error):
        finished.append([result.status for result in results])
        raise RuntimeError("the status label is gone")

    runs_before = _live_runs()
    runner.start(fixed, [moving], transform="rigid", on_case_done=on_case_done, on_finished=on_finished)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start(fixed, [moving])
    timer.drain()
    assert finished == [["ok"]] and not runner.is_running()
    assert "the progress bar ran out of memory" in caplog.text and "the status label is gone" in caplog.text
    assert _live_runs() == runs_before
    runner.start(fixed, [moving], transform="rigid", on_progress=lambda *args: runner.cancel())
    timer.drain()  # a cancelled run finishes through the poll too
    assert not runner.is_running()


def _small():
    image = sitk.Image((24, 24, 12), sitk.sitkInt16) - 1000
    image.SetSpacing((2.0, 2.0, 3.0))
    return image
