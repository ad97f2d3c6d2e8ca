"""The panel's "Detected" line and the analyses behind it, on real MRML volume nodes (PyPI
``slicer-core``); the copy and the analysis are small functions given to ``VolumeFindings``, so every
case is fast; the panel's real copy of a node is in ``test_panel_support.py``.
"""

from __future__ import annotations

import threading
import time

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

from CTAffineRegisterLib.panel.volume_findings import (
    FAILED,
    READY,
    WAITING,
    VolumeFindings,
    describe_findings,
    detected_line,
    detected_text,
)

PADDED = {"kind": "fov-padding", "padding_value": -3024.0, "air_value": -1000.0, "summary": "FOV padding"}
EQUALS_AIR = {"kind": "fov-padding-equals-air", "padding_value": -1024.0, "air_value": -1024.0}
AIR = {"kind": "air-background", "padding_value": None, "air_value": -998.5}
CROPPED = {"kind": "no-background", "padding_value": None, "air_value": 0.0}


SCENE = slicer.vtkMRMLScene()


def _node(name: str, spacing=(0.7, 0.7, 2.5), points: int = 8):
    """A scalar volume node of this scene with ``points`` voxels."""
    node = SCENE.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    _set_voxels(node, points)
    node.SetSpacing(*spacing)
    return node


def _set_voxels(node, points: int) -> None:
    """New voxels (a new modification time), or none: a volume emptied while it loads again."""
    if points:
        slicer.util.updateVolumeFromArray(node, np.zeros((1, 1, points), np.int16))
    else:
        node.SetAndObserveImageData(vtk.vtkImageData())


def _copy(node) -> sitk.Image:
    return sitk.Image(2, 2, 2, sitk.sitkInt16)


def _settle(findings: VolumeFindings) -> None:
    deadline = time.time() + 30.0
    while findings.working and time.time() < deadline:
        findings.poll()
        time.sleep(0.002)
    assert not findings.working, "the analyses never finished"


def test_each_kind_of_background_in_a_few_words():
    assert describe_findings(PADDED) == "FOV padding -3024 → replaced"  # a moving volume by default
    assert describe_findings(PADDED, "fixed") == "FOV padding -3024 → ignored by the metric"
    assert describe_findings(EQUALS_AIR, "moving") == "FOV padding -1024 (equals air, kept)"
    assert describe_findings(EQUALS_AIR, "fixed") == "FOV padding -1024 (equals air, kept)"
    assert describe_findings(AIR) == "air -998.5"
    assert describe_findings(CROPPED) == "no background (cropped)"
    assert describe_findings({"kind": "fov-padding", "padding_value": None, "summary": "odd"}) == "odd"
    assert (
        describe_findings({"kind": "air-background-like", "padding_value": -2000.0}) == "air-background-like"
    )
    assert describe_findings({}) == "unknown"


def test_the_detected_line_names_the_fixed_volume_then_one_moving_or_each_by_name():
    assert (
        detected_line(("A", AIR), [("B", PADDED)])
        == "fixed: air -998.5; moving: FOV padding -3024 → replaced"
    )
    assert detected_line(("A", PADDED), []) == "fixed: FOV padding -3024 → ignored by the metric"
    assert detected_line(None, [("B", PADDED), ("C", CROPPED)]) == (
        "B: FOV padding -3024 → replaced; C: no background (cropped)"
    )


def test_detected_text_waits_for_every_volume_then_joins_findings_and_problems():
    nodes = {name: _node(name) for name in ("A", "B", "C", "D")}
    empty = _node("loading", points=0)
    answers = {"A": AIR, "B": PADDED, "D": CROPPED}

    copied: list[str] = []

    def analyze(image):  # one analysis at a time: the volume copied last
        return answers[copied[-1]]

    def copy(node):
        if node.GetName() == "C":
            raise ValueError("'C' is not a scalar volume")
        copied.append(node.GetName())
        return _copy(node)

    findings = VolumeFindings(copy, analyze)
    text, working = detected_text(findings, nodes["A"], [nodes["B"], None], scene_busy=False)
    assert (text, working) == ("analysing A, B…", True)
    _settle(findings)
    selection = [nodes["B"], nodes["C"], empty, nodes["D"]]
    text, working = detected_text(findings, nodes["A"], selection, scene_busy=False)
    assert working and text == "analysing C, D…"
    _settle(findings)
    text, working = detected_text(findings, nodes["A"], selection, scene_busy=False)
    assert not working
    # two moving volumes are named; a message that names its volume already is not prefixed again
    assert text == (
        "fixed: air -998.5; B: FOV padding -3024 → replaced; D: no background (cropped); "
        "'C' is not a scalar volume; "
        "'loading' has no voxels"
    )
    findings_text, _ = detected_text(findings, None, [nodes["C"]], scene_busy=False)
    assert findings_text == "'C' is not a scalar volume"
    other = VolumeFindings(lambda node: (_ for _ in ()).throw(OSError("disk gone")), analyze)
    assert detected_text(other, None, [nodes["B"]], scene_busy=False)[1]
    _settle(other)
    assert detected_text(other, None, [nodes["B"]], scene_busy=False) == ("B: disk gone", False)


def test_a_volume_is_analysed_again_when_its_voxels_or_spacing_change_not_for_float_noise():
    node = _node("B", spacing=(0.5, 0.5, 2.0))
    findings = VolumeFindings(_copy, lambda image: AIR)
    assert findings.status(node) == (WAITING, None)
    _settle(findings)
    assert findings.status(node) == (READY, AIR) and findings.analyses == 1
    node.SetSpacing(0.5 + 4e-10, 0.5, 2.0)  # the same spacing read back from a file
    assert findings.status(node) == (READY, AIR)
    node.SetSpacing(0.6, 0.6, 2.0)  # resampled: new findings, although the voxel count may be the same
    assert findings.status(node) == (WAITING, None)
    _settle(findings)
    assert findings.status(node)[0] == READY and findings.analyses == 2
    _set_voxels(node, 0)  # a volume emptied while loading again
    assert findings.status(node) == (FAILED, "'B' has no voxels")
    _set_voxels(node, 1)  # a single voxel is voxels
    assert findings.status(node) == (WAITING, None)


def test_poll_says_whether_an_analysis_finished_or_failed():
    release = threading.Event()

    def analyze(image):
        release.wait(10.0)
        return AIR

    findings = VolumeFindings(_copy, analyze)
    assert findings.poll() is False  # nothing queued
    findings.status(_node("B"))
    assert findings.poll() is False and findings.working  # started, not finished
    release.set()
    deadline = time.time() + 10.0
    finished = False
    while not finished and time.time() < deadline:
        finished = findings.poll()
        time.sleep(0.002)
    assert finished is True and not findings.working

    failing = VolumeFindings(lambda node: (_ for _ in ()).throw(MemoryError()), analyze)
    node = _node("C")
    failing.status(node)
    assert failing.poll() is True  # its copy failed at once: the line can say so now
    assert failing.status(node) == (FAILED, "MemoryError")  # no message: the error's name


@pytest.mark.parametrize(
    ("error", "message"), [(ValueError("not a CT"), "not a CT"), (RuntimeError(), "RuntimeError")]
)
def test_an_analysis_that_raises_fails_that_volume_with_its_message(error, message):
    def analyze(image):
        raise error

    node = _node("B")
    findings = VolumeFindings(_copy, analyze)
    findings.status(node)
    _settle(findings)
    assert findings.status(node) == (FAILED, message)


def test_volumes_are_analysed_in_the_order_asked_skipping_removed_and_emptied_ones():
    copied: list[str] = []

    def copy(node):
        copied.append(node.GetName())
        return _copy(node)

    removed, emptied, first, second = _node("removed"), _node("emptied"), _node("first"), _node("second")
    findings = VolumeFindings(copy, lambda image: AIR)
    for node in (removed, emptied, first, second):
        findings.status(node)
    SCENE.RemoveNode(removed)  # the node left the scene before its turn
    _set_voxels(emptied, 0)
    findings.poll()
    assert findings.analyses == 1  # the first volume still there starts at once
    _settle(findings)
    assert copied == ["first", "second"]


def test_the_worker_is_a_named_daemon_thread_so_slicer_can_quit_during_an_analysis():
    seen = []
    release = threading.Event()

    def analyze(image):
        seen.append(threading.current_thread())
        release.wait(10.0)
        return AIR

    findings = VolumeFindings(_copy, analyze)
    findings.status(_node("B"))
    findings.poll()
    deadline = time.time() + 10.0
    while not seen and time.time() < deadline:
        time.sleep(0.002)
    release.set()
    _settle(findings)
    (worker,) = seen
    assert worker.daemon and worker.name == "CTAffineRegister findings"
