"""When the module panel may look at the scene (panel/scene_watch.py): not busy on an idle scene, busy
through a close until the selectors (observers of the default priority) have rebuilt, settled after
them; released twice without harm (the panel's clean-up can run more than once)."""

from __future__ import annotations

import pytest

try:
    import slicer
except ImportError as error:  # slicer-core has wheels for CPython 3.10-3.13 only
    pytest.skip(
        f"the MRML library (PyPI package slicer-core) cannot be imported here: {error}",
        allow_module_level=True,
    )

from CTAffineRegisterLib.panel.scene_watch import SceneWatch


def test_an_idle_scene_is_not_busy():
    scene = slicer.vtkMRMLScene()
    watch = SceneWatch(scene, lambda kind: None)
    assert watch.busy is False
    watch.release()


def test_a_close_is_busy_while_the_selectors_rebuild_and_settles_after_them():
    scene = slicer.vtkMRMLScene()
    scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "A")
    seen = []
    watch = SceneWatch(scene, lambda kind: seen.append((kind, watch.busy)))
    # a selector's scene model: the default priority, added after the watch as in the panel
    scene.AddObserver(
        scene.EndCloseEvent, lambda caller, event: seen.append(("selectors rebuilt", watch.busy))
    )
    scene.Clear(0)
    assert seen == [("selectors rebuilt", True), ("close", False)]
    assert watch.busy is False
    watch.release()


def test_release_twice_is_harmless_and_stops_the_calls():
    scene = slicer.vtkMRMLScene()
    seen = []
    watch = SceneWatch(scene, seen.append)
    watch.release()
    watch.release()
    scene.Clear(0)
    assert seen == [] and watch.busy is False
