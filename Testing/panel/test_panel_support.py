"""What the module panel relies on, on the real MRML library (PyPI ``slicer-core``): scene import and
close events (``scene_watch``), the "Detected" analyses off the GUI thread (``volume_findings``) and
the status lines with each result's verdict (``result_summary``).

The panel itself needs Qt and runs only inside Slicer (its self-test covers it there).
"""

from __future__ import annotations

import threading
import time
import weakref

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
from CTAffineRegisterLib.pair import register as pipeline
from CTAffineRegisterLib.panel.result_lines import summary_lines
from CTAffineRegisterLib.panel.scene_watch import SceneWatch
from CTAffineRegisterLib.panel.volume_findings import FAILED, READY, WAITING, VolumeFindings, detected_text

MODULE = "CTAffineRegister"


def _volume(scene, name: str, offset: int = 0, size=(24, 24, 12)):
    image = sitk.Image(size, sitk.sitkInt16) - 1000 + offset
    image.SetSpacing((2.0, 2.0, 3.0))
    return mrml_bridge.add_volume_node_from_image(scene, image, name)


def _parameter_node(scene):
    """The module's singleton parameter node, holding what the parameter node wrapper writes for
    ``fixedVolume`` and ``movingVolumes`` (a node reference per item, as Slicer 5.8's serializers do)."""
    node = slicer.vtkMRMLScriptedModuleNode()
    node.SetSingletonTag(MODULE)
    node.SetAttribute("ModuleName", MODULE)
    return scene.AddNode(node)


def _set_selection(parameters, fixed, moving: list) -> None:
    parameters.SetParameter("fixedVolume", "")
    parameters.SetNodeReferenceID("fixedVolume", fixed.GetID())
    parameters.SetParameter("movingVolumes.len", str(len(moving)))
    for index, node in enumerate(moving):
        parameters.SetParameter(f"movingVolumes.{index}", "")
        parameters.SetNodeReferenceID(f"movingVolumes.{index}", node.GetID())


def _moving(parameters) -> list:
    return [
        parameters.GetNodeReference(f"movingVolumes.{index}")
        for index in range(int(parameters.GetParameter("movingVolumes.len")))
    ]


@pytest.fixture
def saved_scene(tmp_path):
    """A scene file with volumes A (fixed), B and C (moving) and the module's parameter node."""
    scene = slicer.vtkMRMLScene()
    nodes = [_volume(scene, name, offset) for name, offset in (("A", 0), ("B", 30), ("C", 60))]
    for node in nodes:
        storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(tmp_path / f"{node.GetName()}.nrrd"))
        node.SetAndObserveStorageNodeID(storage.GetID())
        assert storage.WriteData(node)
    _set_selection(_parameter_node(scene), nodes[0], nodes[1:])
    scene.SetURL(str(tmp_path / "saved.mrml"))
    assert scene.Commit()
    scene.Clear(1)
    return tmp_path / "saved.mrml"


# ---------------------------------------------------------------------------------------------
# scene_watch


def test_scene_import_is_busy_until_the_selectors_have_rebuilt(saved_scene):
    scene = slicer.vtkMRMLScene()
    for name in ("X", "Y", "Z"):  # their IDs clash with the saved ones, which get new IDs on import
        _volume(scene, name)
    parameters = _parameter_node(scene)
    events = []

    def settled(kind):
        moving = _moving(parameters)
        has_voxels = moving[0].GetImageData() is not None
        events.append(("settled", kind, [node.GetName() for node in moving], has_voxels))

    watch = SceneWatch(scene, settled)
    # a selector's scene model observes at the default priority, and here after the watch
    # (the scene no longer says it is importing then: only the watch knows the panel must wait)
    scene.AddObserver(
        scene.EndImportEvent, lambda caller, event: events.append(("selectors rebuilt", watch.busy))
    )

    def parameters_modified(caller, event):
        first = parameters.GetNodeReference("movingVolumes.0")
        events.append(("modified", watch.busy, first.GetName() if first else None))

    parameters.AddObserver(vtk.vtkCommand.ModifiedEvent, parameters_modified)
    scene.SetURL(str(saved_scene))
    assert scene.Import()

    modified = [event for event in events if event[0] == "modified"]
    # mid-import the parameter node names a pre-existing volume (an ID clash not yet resolved) or a
    # volume without voxels: the panel must not look at it then
    assert modified and all(busy for _, busy, _ in modified)
    assert any(name != "B" for _, _, name in modified)
    assert events[-2:] == [("selectors rebuilt", True), ("settled", "import", ["B", "C"], True)]
    assert not watch.busy
    watch.release()


def test_scene_bundle_import_settles_with_the_imported_volumes(tmp_path):
    """Slicer's loadScene of a .mrb into a scene with nodes: ReadFromMRB(file, clear=False), an import."""
    scene = slicer.vtkMRMLScene()
    scene.SetRootDirectory(str(tmp_path))
    cache = slicer.vtkCacheManager()  # what Slicer's application sets up; ReadFromMRB needs it
    cache.SetRemoteCacheDirectory(str(tmp_path))
    io_manager = slicer.vtkDataIOManager()
    io_manager.SetCacheManager(cache)
    scene.SetDataIOManager(io_manager)
    scene.SetCacheManager(cache)
    fixed, *moving = [_volume(scene, name, offset) for name, offset in (("A", 0), ("B", 30), ("C", 60))]
    parameters = _parameter_node(scene)
    _set_selection(parameters, fixed, moving)
    bundle = str(tmp_path / "scene.mrb")
    assert scene.WriteToMRB(bundle)
    settled = []

    def on_settled(kind):
        nodes = _moving(parameters)
        settled.append(
            (kind, [node.GetID() for node in nodes], [node.GetImageData() is not None for node in nodes])
        )

    watch = SceneWatch(scene, on_settled)
    assert scene.ReadFromMRB(bundle, False)
    ((kind, imported, has_voxels),) = settled
    assert kind == "import" and has_voxels == [True, True]
    assert imported != [node.GetID() for node in moving]  # the saved selection, naming the imported copies
    assert [scene.GetNodeByID(node_id).GetName() for node_id in imported] == ["B", "C"]
    watch.release()


def test_scene_close_is_busy_until_the_selectors_have_rebuilt():
    scene = slicer.vtkMRMLScene()
    _volume(scene, "A")
    seen = []
    watch = SceneWatch(scene, lambda kind: seen.append((kind, watch.busy)))
    scene.AddObserver(scene.NodeRemovedEvent, lambda caller, event: seen.append(("removed", watch.busy)))
    scene.Clear(0)
    assert seen and all(busy for what, busy in seen if what == "removed")
    assert seen[-1] == ("close", False)
    watch.release()
    scene.Clear(0)
    assert seen[-1] == ("close", False) and len([s for s in seen if s[0] == "close"]) == 1


# ---------------------------------------------------------------------------------------------
# volume_findings


def _settle(findings: VolumeFindings, deadline_s: float = 60.0) -> None:
    deadline = time.time() + deadline_s
    while findings.working and time.time() < deadline:
        findings.poll()
        time.sleep(0.005)
    assert not findings.working, "the analyses never finished"


@pytest.fixture(scope="module")
def pair():
    return synthetic.make_pair(
        seed=3, fixed_size=(64, 64, 48), fixed_spacing=(4.0, 4.0, 5.0), moving_spacing=(4.6, 4.6, 5.75)
    )


def test_findings_are_worked_out_off_the_calling_thread_and_once_per_content(pair):
    scene = slicer.vtkMRMLScene()
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    copied_on, analysed_on = [], []

    def copy(node):
        copied_on.append(threading.current_thread())
        return mrml_bridge.image_from_volume_node(node)

    def analyze(image):
        analysed_on.append(threading.current_thread())
        return pipeline.analyze(image)

    findings = VolumeFindings(copy, analyze)
    assert findings.status(moving) == (WAITING, None)  # nothing runs on this thread meanwhile
    assert analysed_on == []
    _settle(findings)
    state, value = findings.status(moving)
    assert state == READY and value == mrml_bridge.analyze_volume_node(moving)
    assert value["padding_value"] == -3024
    assert set(copied_on) == {threading.current_thread()}  # MRML read on the polling thread only
    assert analysed_on and threading.current_thread() not in analysed_on

    # an unchanged volume is never analysed again, whatever asks for it
    for _ in range(3):
        assert findings.status(moving)[0] == READY
    findings.poll()
    assert findings.analyses == 1

    # changed voxels are new content
    voxels = slicer.util.arrayFromVolume(moving)
    voxels[voxels == -3024] = -1000
    slicer.util.arrayFromVolumeModified(moving)
    assert findings.status(moving) == (WAITING, None)
    _settle(findings)
    state, value = findings.status(moving)
    assert state == READY and value["padding_value"] != -3024 and findings.analyses == 2

    text, working = detected_text(findings, fixed, [moving], scene_busy=False)
    assert working and text.startswith("analysing A")
    _settle(findings)
    text, working = detected_text(findings, fixed, [moving], scene_busy=False)
    assert not working and text.startswith("fixed: air") and "moving:" in text


def test_findings_copy_one_volume_at_a_time(pair):
    scene = slicer.vtkMRMLScene()
    nodes = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BCD"]
    copies, alive_at_copy = [], []

    def copy(node):
        alive_at_copy.append(sum(1 for earlier in copies if earlier() is not None))
        image = mrml_bridge.image_from_volume_node(node)
        copies.append(weakref.ref(image))
        return image

    findings = VolumeFindings(copy)
    assert [findings.status(node)[0] for node in nodes] == [WAITING] * 3
    _settle(findings)
    assert [findings.status(node)[0] for node in nodes] == [READY] * 3
    assert alive_at_copy == [0, 0, 0] and findings.analyses == 3


def test_volume_without_voxels_is_reported_and_never_cached():
    scene = slicer.vtkMRMLScene()
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "loading")
    findings = VolumeFindings(mrml_bridge.image_from_volume_node)
    assert findings.status(empty) == (FAILED, "'loading' has no voxels")
    assert not findings.working
    slicer.util.updateVolumeFromArray(empty, np.full((12, 24, 24), -1000, dtype=np.int16))
    assert findings.status(empty) == (WAITING, None)  # the voxels arrived: now it is analysed
    _settle(findings)
    assert findings.status(empty)[0] in (READY, FAILED) and findings.analyses == 1


def test_nothing_is_analysed_while_the_scene_is_busy(pair):
    scene = slicer.vtkMRMLScene()
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    findings = VolumeFindings(mrml_bridge.image_from_volume_node)
    text, working = detected_text(findings, None, [moving], scene_busy=True)
    assert (text, working) == ("waiting for the scene to finish loading.", False)
    assert not findings.working and findings.analyses == 0
    assert detected_text(findings, None, [], scene_busy=False) == ("select the volumes.", False)


# ---------------------------------------------------------------------------------------------
# result_summary


def test_summary_shows_every_verdict_with_its_reason():
    results = [
        ("CT B", {"status": "ok", "quality": {"verdict": "ok", "reason": "anatomy agrees"}}),
        ("CT C", {"status": "ok", "quality": {"verdict": "suspect", "reason": "lungs overlap 0.71"}}),
        ("CT D", {"status": "ok", "quality": {"verdict": "failed", "reason": "mirrored left-right"}}),
        ("CT E", {"status": "failed", "error": "'CT E' has no voxels"}),
        ("CT F", {"status": "cancelled", "error": "cancelled by the user"}),
    ]
    assert summary_lines(results) == [
        "3 registered: 1 ok, 1 suspect, 1 failed verdict; 1 not registered; 1 cancelled.",
        "CT B: ok – anatomy agrees",
        "CT C: suspect – lungs overlap 0.71",
        "CT D: failed – mirrored left-right (result kept, but do not trust it)",
        "CT E: not registered – 'CT E' has no voxels",
    ]
    assert summary_lines([]) == ["0 registered."]


def test_summary_of_a_real_result_carries_its_quality(pair):
    scene = slicer.vtkMRMLScene()
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    (result,) = mrml_bridge.register_volume_nodes(fixed, [moving], transform="rigid")
    quality = result.report["quality"]
    lines = summary_lines([("B", result.report)])
    assert lines[0] == f"1 registered: 1 {quality['verdict']} verdict."
    assert lines[1] == f"B: {quality['verdict']} – {quality['reason']}" + (
        " (result kept, but do not trust it)" if quality["verdict"] == "failed" else ""
    )


def test_findings_copy_that_raises_anything_fails_that_volume_only(pair):
    """Issue 21 item 18: the "Detected" copy caught only ValueError; a MemoryError escaped the poll
    (the panel's timer then stopped and the line said "analysing…" for ever)."""
    scene = slicer.vtkMRMLScene()
    huge = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "huge")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")

    def copy(node):
        if node.GetName() == "huge":
            raise MemoryError("cannot allocate 150 MB")
        return mrml_bridge.image_from_volume_node(node)

    findings = VolumeFindings(copy)
    assert [findings.status(node)[0] for node in (huge, moving)] == [WAITING, WAITING]
    _settle(findings)
    assert findings.status(huge) == (FAILED, "cannot allocate 150 MB")
    assert findings.status(moving)[0] == READY
    text, working = detected_text(findings, None, [huge, moving], scene_busy=False)
    assert not working and "huge: cannot allocate 150 MB" in text
