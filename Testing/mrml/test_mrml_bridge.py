"""The MRML bridge against the real MRML library (PyPI ``slicer-core``), no Slicer application needed.

RAS/LPS conventions are checked against an independent reader: SimpleITK reading the files that
Slicer's own storage node writes, and the other way round.
"""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref

import numpy as np
import pytest
import SimpleITK as sitk
from support.expected_masks import expected_data_mask

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
from CTAffineRegisterLib.mrml.volume_nodes import VolumeNodeError
from CTAffineRegisterLib.panel import volume_findings

FLIP = np.diag([-1.0, -1.0, 1.0])


@pytest.fixture
def scene():
    scene = slicer.vtkMRMLScene()
    yield scene
    scene.Clear(1)


def _rotation(angles_deg) -> np.ndarray:
    return np.array(sitk.Euler3DTransform((0, 0, 0), *np.deg2rad(angles_deg)).GetMatrix()).reshape(3, 3)


def _oblique_node(scene, name="oblique", dtype=np.int16, shape=(7, 9, 11)):
    """A volume node with rotated axes, anisotropic spacing, non-zero origin and random voxels."""
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", name)
    node.SetSpacing(0.7, 1.3, 2.9)
    node.SetOrigin(-12.5, 40.25, 7.0)
    directions = np.eye(4)
    directions[:3, :3] = _rotation((17.0, -8.0, 31.0))
    node.SetIJKToRASDirectionMatrix(mrml_bridge._vtk_matrix(directions))
    rng = np.random.default_rng(1)
    slicer.util.updateVolumeFromArray(node, rng.integers(-3024, 3000, size=shape).astype(dtype))
    return node


def _oblique_image(pixel_type=sitk.sitkFloat32) -> sitk.Image:
    rng = np.random.default_rng(2)
    image = sitk.GetImageFromArray(rng.normal(size=(5, 6, 8)).astype(np.float32))
    image = sitk.Cast(image, pixel_type)
    image.SetSpacing((0.9, 2.2, 3.1))
    image.SetOrigin((101.0, -33.5, -250.0))
    image.SetDirection(_rotation((-25.0, 12.0, 70.0)).ravel().tolist())
    return image


def _array(node) -> np.ndarray:
    return np.array(slicer.util.arrayFromVolume(node), copy=True)


# ---------------------------------------------------------------------------------------------
# Geometry


def test_node_to_image_gives_lps_geometry_and_same_voxels(scene):
    node = _oblique_node(scene)
    image = mrml_bridge.image_from_volume_node(node)

    ijk_to_ras = mrml_bridge.ijk_to_ras(node)
    ijk_to_lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ ijk_to_ras
    direction = np.array(image.GetDirection()).reshape(3, 3)
    assert np.allclose(direction * np.array(image.GetSpacing()), ijk_to_lps[:3, :3], atol=1e-12)
    assert np.allclose(image.GetOrigin(), ijk_to_lps[:3, 3], atol=1e-12)
    assert image.GetOrigin()[0] == 12.5 and image.GetOrigin()[1] == -40.25
    assert np.array_equal(sitk.GetArrayViewFromImage(image), _array(node))
    assert image.GetPixelID() == sitk.sitkInt16
    # an index maps to the same physical point both ways
    index = (3, 5, 2)
    ras = ijk_to_ras @ np.array([*index, 1.0])
    assert np.allclose(FLIP @ ras[:3], image.TransformIndexToPhysicalPoint(index), atol=1e-9)


def test_node_image_node_round_trip_is_exact(scene):
    node = _oblique_node(scene)
    back = mrml_bridge.add_volume_node_from_image(scene, mrml_bridge.image_from_volume_node(node), "back")
    assert np.array_equal(mrml_bridge.ijk_to_ras(back), mrml_bridge.ijk_to_ras(node))
    assert np.array_equal(_array(back), _array(node))
    assert _array(back).dtype == np.int16
    assert back.GetDisplayNode() is not None


def test_image_node_image_round_trip_is_exact(scene):
    image = _oblique_image()
    node = mrml_bridge.add_volume_node_from_image(scene, image, "from image")
    again = mrml_bridge.image_from_volume_node(node)
    assert again.GetSpacing() == image.GetSpacing()
    assert again.GetOrigin() == image.GetOrigin()
    assert again.GetDirection() == image.GetDirection()
    assert again.GetPixelID() == image.GetPixelID()
    assert np.array_equal(sitk.GetArrayViewFromImage(again), sitk.GetArrayViewFromImage(image))


def test_image_to_node_rejects_vector_images(scene):
    vector = sitk.Image((4, 4, 4), sitk.sitkVectorFloat32, 3)
    before = scene.GetNumberOfNodes()
    with pytest.raises(VolumeNodeError):
        mrml_bridge.add_volume_node_from_image(scene, vector, "rgb")
    assert scene.GetNumberOfNodes() == before


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_slicer_written_file_reads_the_same_in_simpleitk(scene, tmp_path, suffix):
    node = _oblique_node(scene)
    path = str(tmp_path / f"volume{suffix}")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(path)
    assert storage.WriteData(node)

    from_file = sitk.ReadImage(path)
    ours = mrml_bridge.image_from_volume_node(node)
    assert np.allclose(from_file.GetOrigin(), ours.GetOrigin(), atol=1e-4)
    assert np.allclose(from_file.GetSpacing(), ours.GetSpacing(), atol=1e-5)
    assert np.allclose(from_file.GetDirection(), ours.GetDirection(), atol=1e-5)
    assert np.array_equal(sitk.GetArrayViewFromImage(from_file), sitk.GetArrayViewFromImage(ours))


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_simpleitk_written_file_reads_the_same_in_slicer(scene, tmp_path, suffix):
    image = _oblique_image(sitk.sitkInt16)
    path = str(tmp_path / f"image{suffix}")
    sitk.WriteImage(image, path)
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "read")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(path)
    assert storage.ReadData(node)

    ours = mrml_bridge.add_volume_node_from_image(scene, image, "ours")
    assert np.allclose(mrml_bridge.ijk_to_ras(node), mrml_bridge.ijk_to_ras(ours), atol=1e-4)
    assert np.array_equal(_array(node), _array(ours))


def test_linear_parent_transform_is_folded_into_a_copy(scene):
    node = _oblique_node(scene)
    before_matrix, before_voxels = mrml_bridge.ijk_to_ras(node), _array(node)
    parent = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "parent")
    to_parent = np.eye(4)
    to_parent[:3, :3] = _rotation((5.0, 10.0, -20.0))
    to_parent[:3, 3] = (3.0, -7.0, 11.0)
    slicer.util.updateTransformMatrixFromArray(parent, to_parent)
    node.SetAndObserveTransformNodeID(parent.GetID())

    image = mrml_bridge.image_from_volume_node(node)
    world = to_parent @ before_matrix
    index = (2, 4, 6)
    expected_ras = world @ np.array([*index, 1.0])
    assert np.allclose(image.TransformIndexToPhysicalPoint(index), FLIP @ expected_ras[:3], atol=1e-9)
    # the node itself is untouched: same local geometry, voxels and parent
    assert np.array_equal(mrml_bridge.ijk_to_ras(node), before_matrix)
    assert np.array_equal(_array(node), before_voxels)
    assert node.GetParentTransformNode() is parent


def test_shearing_parent_transform_is_refused_with_advice(scene):
    node = _oblique_node(scene)
    parent = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "shear")
    shear = np.eye(4)
    shear[0, 1] = 0.3
    slicer.util.updateTransformMatrixFromArray(parent, shear)
    node.SetAndObserveTransformNodeID(parent.GetID())
    with pytest.raises(VolumeNodeError, match="Harden transform"):
        mrml_bridge.image_from_volume_node(node)


# ---------------------------------------------------------------------------------------------
# Transforms


def _some_transforms():
    affine = sitk.AffineTransform(3)
    affine.SetCenter((10.0, -20.0, 30.0))
    affine.SetMatrix((1.05, 0.04, -0.02, -0.03, 0.97, 0.05, 0.01, -0.06, 1.1))
    affine.SetTranslation((4.0, -9.0, 2.5))
    euler = sitk.Euler3DTransform((5.0, 6.0, 7.0), 0.1, -0.2, 0.3, (1.0, 2.0, 3.0))
    composite = sitk.CompositeTransform([affine, euler])
    return [affine, euler, composite]


@pytest.mark.parametrize("transform", _some_transforms(), ids=["affine", "euler", "composite"])
def test_transform_node_maps_fixed_ras_points_like_itk(scene, transform):
    node = mrml_bridge.add_transform_node(scene, transform, "T")
    from_parent = node.GetTransformFromParent()
    rng = np.random.default_rng(4)
    for ras in rng.uniform(-200, 200, size=(20, 3)):
        expected_lps = transform.TransformPoint((FLIP @ ras).tolist())
        assert np.allclose(from_parent.TransformPoint(ras.tolist()), FLIP @ expected_lps, atol=1e-6)


def test_moving_volume_under_the_transform_node_lines_up_with_fixed_points(scene):
    """The reason for "from parent": a moving voxel shows at the fixed point the ITK transform sends to it."""
    transform = _some_transforms()[0]
    moving = _oblique_node(scene, "moving")
    node = mrml_bridge.add_transform_node(scene, transform, "T")
    moving_lps_image = mrml_bridge.image_from_volume_node(moving)
    moving.SetAndObserveTransformNodeID(node.GetID())

    to_world = vtk.vtkMatrix4x4()
    node.GetMatrixTransformToWorld(to_world)
    index = (4, 2, 5)
    shown_at_ras = mrml_bridge._numpy_matrix(to_world) @ mrml_bridge.ijk_to_ras(moving) @ [*index, 1.0]
    moving_lps = np.array(moving_lps_image.TransformIndexToPhysicalPoint(index))
    fixed_lps = FLIP @ shown_at_ras[:3]
    assert np.allclose(transform.TransformPoint(fixed_lps.tolist()), moving_lps, atol=1e-6)


def test_nonlinear_transform_is_refused(scene):
    bspline = sitk.BSplineTransform(3)
    with pytest.raises(ValueError, match="not linear"):
        mrml_bridge.lps_matrix_from_transform(bspline)


# ---------------------------------------------------------------------------------------------
# Registration of nodes


@pytest.fixture(scope="module")
def pair():
    return synthetic.make_pair(
        seed=3, fixed_size=(64, 64, 48), fixed_spacing=(4.0, 4.0, 5.0), moving_spacing=(4.6, 4.6, 5.75)
    )


def _snapshot(node) -> tuple:
    return (
        node.GetName(),
        mrml_bridge.ijk_to_ras(node).tobytes(),
        _array(node).tobytes(),
        node.GetParentTransformNode(),
        node.GetMTime(),
    )


def _constant_node(scene, name):
    image = sitk.Image((40, 40, 30), sitk.sitkInt16) - 1000
    image.SetSpacing((4.0, 4.0, 5.0))
    return mrml_bridge.add_volume_node_from_image(scene, image, name)


def _single_slice_node(scene, name, pair):
    return mrml_bridge.add_volume_node_from_image(scene, pair.moving[:, :, 20:21], name)


def test_register_volume_nodes_end_to_end(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "CT A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "CT B")
    constant = _constant_node(scene, "blank")
    flat = _single_slice_node(scene, "one slice", pair)
    inputs = [fixed, moving, constant, flat]
    before = [_snapshot(node) for node in inputs]
    node_count = scene.GetNumberOfNodes()
    events = []

    results = mrml_bridge.register_volume_nodes(
        fixed, [constant, moving, flat], progress=events.append, create_mask=True
    )

    assert [result.status for result in results] == ["failed", "ok", "failed"]
    for failed in (results[0], results[2]):
        assert failed.report["error"]
        assert failed.volume_node is None and failed.transform_node is None and failed.mask_node is None
    good = results[1]
    assert good.moving_node_id == moving.GetID()
    # exactly three new nodes with one display node each; nothing left over from the failures
    assert scene.GetNumberOfNodes() == node_count + 6
    assert [_snapshot(node) for node in inputs] == before
    assert events and events[-1].iteration > 0

    volume = good.volume_node
    assert volume.GetName() == "CT B registered"
    assert volume.GetScene() is scene and volume.GetDisplayNode() is not None
    assert np.array_equal(mrml_bridge.ijk_to_ras(volume), mrml_bridge.ijk_to_ras(fixed))
    assert _array(volume).shape == _array(fixed).shape and _array(volume).dtype == np.int16
    # the -3024 padding is gone from the output: no voxel below real air
    assert _array(volume).min() > -1100
    assert good.report["moving"]["padding_value"] == -3024

    mask = good.mask_node
    assert mask.IsA("vtkMRMLLabelMapVolumeNode")
    assert np.array_equal(mrml_bridge.ijk_to_ras(mask), mrml_bridge.ijk_to_ras(fixed))
    assert set(np.unique(_array(mask))) <= {0, 1} and _array(mask).max() == 1

    transform = good.transform_node
    assert transform.IsA("vtkMRMLLinearTransformNode")
    fixed_role = slicer.vtkMRMLTransformNode.GetFixedNodeReferenceRole()
    moving_role = slicer.vtkMRMLTransformNode.GetMovingNodeReferenceRole()
    assert transform.GetNodeReference(fixed_role) is fixed
    assert transform.GetNodeReference(moving_role) is moving
    assert transform.GetAttribute(mrml_bridge.REPORT_ATTRIBUTE)
    # the transform node sends fixed RAS points exactly where the registration's LPS transform sends
    # them (flipped), and so within a fraction of the 4 mm voxel of where the true transform does
    registered = good.report["registration"]
    found = sitk.AffineTransform(3)
    found.SetCenter(registered["center_mm"])
    found.SetMatrix(registered["matrix"])
    found.SetTranslation(registered["translation_mm"])
    from_parent = transform.GetTransformFromParent()
    errors, exact = [], []
    for lps in pair.body_points[:300]:
        mapped = np.array(from_parent.TransformPoint((FLIP @ lps).tolist()))
        exact.append(np.linalg.norm(mapped - FLIP @ np.array(found.TransformPoint(lps.tolist()))))
        truth = FLIP @ np.array(pair.true_transform.TransformPoint(lps.tolist()))
        errors.append(np.linalg.norm(mapped - truth))
    assert max(exact) < 1e-3
    assert np.mean(errors) < 1.0 and max(errors) < 2.0  # measured 0.35 and 0.73 mm
    # the mask node marks exactly the voxels with real moving data; the others hold the moving air
    expected = expected_data_mask(pair.fixed, pair.moving_valid_mask, found)
    assert np.count_nonzero((_array(mask) > 0) != expected) <= 1e-5 * expected.size
    assert good.report["fill"] == good.report["moving"]["air_value"]
    assert np.all(_array(volume)[_array(mask) == 0] == good.report["fill"]) and not expected.all()


def test_node_creation_failure_leaves_no_half_made_nodes(scene, pair, monkeypatch):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    node_count = scene.GetNumberOfNodes()

    def broken(*args, **kwargs):
        raise RuntimeError("transform node could not be made")

    monkeypatch.setattr(mrml_bridge, "add_transform_node", broken)
    (result,) = mrml_bridge.register_volume_nodes(fixed, [moving], transform="rigid")
    assert result.status == "failed" and "could not be made" in result.report["error"]
    assert scene.GetNumberOfNodes() == node_count


def test_cancel_before_start_makes_nothing(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    node_count = scene.GetNumberOfNodes()
    cancel = threading.Event()
    cancel.set()
    results = mrml_bridge.register_volume_nodes(fixed, [moving, moving], cancel=cancel)
    assert [result.status for result in results] == ["cancelled", "cancelled"]
    assert scene.GetNumberOfNodes() == node_count


def test_cancel_during_registration_stops_the_rest(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    node_count = scene.GetNumberOfNodes()
    cancel = threading.Event()
    results = mrml_bridge.register_volume_nodes(
        fixed, [moving, moving], progress=lambda event: cancel.set(), cancel=cancel
    )
    assert [result.status for result in results] == ["cancelled", "cancelled"]
    assert scene.GetNumberOfNodes() == node_count


def test_unusable_fixed_volume_raises_before_anything_is_made(scene):
    fixed = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    with pytest.raises(VolumeNodeError, match="no voxels"):
        mrml_bridge.register_volume_nodes(fixed, [])


def test_detected_line_names_the_padding_that_gets_replaced(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    fixed_findings = mrml_bridge.analyze_volume_node(fixed)
    moving_findings = mrml_bridge.analyze_volume_node(moving)
    assert fixed_findings["kind"] == "air-background"
    assert moving_findings["padding_value"] == -3024

    line = volume_findings.detected_line(("A", fixed_findings), [("B", moving_findings)])
    air = fixed_findings["air_value"]
    assert line == f"fixed: air {air:g}; moving: FOV padding -3024 → replaced"
    several = volume_findings.detected_line(None, [("B", moving_findings), ("A", fixed_findings)])
    assert several == f"B: FOV padding -3024 → replaced; A: air {air:g}"


# ---------------------------------------------------------------------------------------------
# The panel's threaded run (polled here the way the module's Qt timer polls it)


def _poll_until_done(run) -> None:
    while not run.poll():
        threading.Event().wait(0.01)


def test_threaded_run_makes_nodes_on_the_polling_thread(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    blank = _constant_node(scene, "blank")
    node_count = scene.GetNumberOfNodes()
    seen = {"progress": [], "cases": [], "finished": []}
    main_thread = threading.current_thread()

    def on_case_done(index, count, result):
        assert threading.current_thread() is main_thread
        seen["cases"].append((index, count, result.status))

    run = mrml_bridge.ThreadedRegistration(
        fixed,
        [moving, blank],
        on_progress=lambda index, count, name, event: seen["progress"].append((index, name)),
        on_case_done=on_case_done,
        on_finished=lambda results, error: seen["finished"].append((results, error)),
    )
    run.start()
    _poll_until_done(run)

    assert seen["cases"] == [(0, 2, "ok"), (1, 2, "failed")]
    assert seen["progress"] and seen["progress"][0] == (0, "B")
    ((results, error),) = seen["finished"]
    assert error is None
    assert results[0].volume_node.GetName() == "B registered"
    assert np.array_equal(mrml_bridge.ijk_to_ras(results[0].volume_node), mrml_bridge.ijk_to_ras(fixed))
    assert results[1].volume_node is None and "constant" in results[1].report["error"]
    assert scene.GetNumberOfNodes() == node_count + 4  # volume, transform and their display nodes
    assert run.poll() is True  # polling after the end changes nothing
    assert len(seen["finished"]) == 1


def test_threaded_run_cancel_keeps_finished_cases_only(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    node_count = scene.GetNumberOfNodes()
    runs = []  # cancel at the first progress report
    run = mrml_bridge.ThreadedRegistration(
        fixed, [moving, moving], on_progress=lambda *args: runs[0].cancel()
    )
    runs.append(run)
    run.start()
    _poll_until_done(run)
    assert [result.status for result in run.results] == ["cancelled", "cancelled"]
    assert scene.GetNumberOfNodes() == node_count


def test_threaded_run_reports_moving_volumes_deleted_meanwhile(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    later = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "C")
    removed = []

    def remove_both_at_first_progress(*args):  # the user deletes them while B is being registered
        if not removed:
            removed.append(True)
            mrml_bridge.remove_nodes(scene, [moving, later])

    run = mrml_bridge.ThreadedRegistration(
        fixed, [moving, later], transform="rigid", on_progress=remove_both_at_first_progress
    )
    node_count = scene.GetNumberOfNodes()
    run.start()
    _poll_until_done(run)
    first, second = run.results
    assert first.status == "failed" and "deleted while it was being registered" in first.report["error"]
    assert second.status == "failed" and "'C' is no longer in the scene" in second.report["error"]
    assert scene.GetNumberOfNodes() == node_count - 4  # the two inputs and their display nodes; nothing new


def test_threaded_run_copies_each_moving_volume_once_just_before_it_is_registered(scene, pair, monkeypatch):
    """Apply must not hold a copy of every checked volume: one moving copy exists at a time."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    movings = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BC"]
    moving_ids = {node.GetID() for node in movings}
    copies, alive_at_each_copy, threads = [], [], []
    original = mrml_bridge.image_from_volume_node

    def counting_copy(node):
        image = original(node)
        if node.GetID() in moving_ids:
            alive_at_each_copy.append(sum(1 for copy in copies if copy() is not None))
            copies.append(weakref.ref(image))
            threads.append(threading.current_thread())
        return image

    monkeypatch.setattr(mrml_bridge, "image_from_volume_node", counting_copy)
    run = mrml_bridge.ThreadedRegistration(fixed, movings, transform="rigid")
    assert copies == []  # nothing copied up front
    run.start()
    _poll_until_done(run)
    assert [result.status for result in run.results] == ["ok", "ok"]
    assert len(copies) == 2  # one copy per case
    assert alive_at_each_copy == [0, 0]  # the previous copy was gone before the next was made
    assert all(copy() is None for copy in copies)
    assert set(threads) == {threading.current_thread()}  # made by poll(), on the polling thread


def test_volume_node_is_copied_once(scene):
    """GetImageFromArray copies the node's voxels; no numpy copy is made on top of it."""
    node = mrml_bridge.add_volume_node_from_image(
        scene, sitk.Image((128, 128, 64), sitk.sitkInt16) - 1000, "two megabytes"
    )
    tracemalloc.start()
    try:
        image = mrml_bridge.image_from_volume_node(node)
        _, numpy_peak = tracemalloc.get_traced_memory()  # numpy allocations are traced, ITK buffers not
    finally:
        tracemalloc.stop()
    assert numpy_peak < 0.05 * 128 * 128 * 64 * 2
    assert sitk.GetArrayViewFromImage(image).min() == -1000


def test_threaded_run_refuses_an_unusable_fixed_volume_at_once(scene, pair):
    empty = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "empty")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    with pytest.raises(VolumeNodeError):
        mrml_bridge.ThreadedRegistration(empty, [moving])
    with pytest.raises(VolumeNodeError, match="at least one moving"):
        mrml_bridge.ThreadedRegistration(moving, [])


def test_console_entry_is_exported_by_the_package():
    from CTAffineRegisterLib import register_volume_nodes

    assert register_volume_nodes is mrml_bridge.register_volume_nodes


def test_register_volume_nodes_in_a_thread_leaves_the_global_thread_count_alone(scene, pair):
    """In Slicer, ITK's global default is shared with every module: a run must never change it."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(3)
    seen, results = set(), []
    try:
        worker = threading.Thread(
            target=lambda: results.extend(mrml_bridge.register_volume_nodes(fixed, [moving]))
        )
        worker.start()
        while worker.is_alive():
            seen.add(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
            worker.join(0.002)
        seen.add(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(previous)
    assert [result.status for result in results] == ["ok"]
    assert seen == {3}


def _live_images() -> int:
    gc.collect()
    return sum(1 for thing in gc.get_objects() if isinstance(thing, sitk.Image))


def test_finished_runs_leave_no_images_behind(scene, pair):
    """Memory during a session stays flat: nothing of a finished run survives but its result nodes.

    Issue 21 item 17: whoever still holds a finished threaded run (the panel's logic did) must not hold
    a full copy of the fixed CT through it either.
    """
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    mrml_bridge.register_volume_nodes(fixed, [moving], transform="rigid")  # first-use allocations
    before = _live_images()
    mrml_bridge.register_volume_nodes(fixed, [moving], transform="rigid")
    assert _live_images() == before  # the plain call
    run = mrml_bridge.ThreadedRegistration(fixed, [moving], transform="rigid")
    run.start()
    assert _poll_with_safety_net(run)
    assert [result.status for result in run.results] == ["ok"]
    assert _live_images() == before  # the run is still held here
    del run
    assert _live_images() == before


def test_image_to_node_copies_the_voxels_once(scene):
    """Issue 21 item 19: a result goes into its node with one copy (into VTK memory), not a numpy copy
    first and then the VTK one: on the GUI thread, for a 512×512×300 result, that is 150 MB less."""
    image = sitk.Image((128, 128, 64), sitk.sitkInt16) - 1000
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "two megabytes")
    tracemalloc.start()
    try:
        mrml_bridge.update_volume_node_from_image(node, image)
        _, numpy_peak = tracemalloc.get_traced_memory()  # numpy allocations are traced, VTK buffers not
    finally:
        tracemalloc.stop()
    assert numpy_peak < 0.05 * 128 * 128 * 64 * 2
    assert _array(node).shape == (64, 128, 128) and np.all(_array(node) == -1000)


def _poll_with_safety_net(run, seconds: float = 300.0) -> bool:
    """Poll until the run ends; False if it never does (a safety net against a hang, not timing)."""
    deadline = threading.Event()
    timer = threading.Timer(seconds, deadline.set)
    timer.start()
    try:
        while not run.poll():
            if deadline.wait(0.01):
                run.cancel()
                return False
        return True
    finally:
        timer.cancel()


def test_threaded_run_fails_a_case_whose_copy_raises_anything(scene, pair, monkeypatch):
    """Issue 21 item 18: a MemoryError (or any exception) while copying a moving volume fails that case
    with its reason; it must not escape the poll before the hand-off and leave the worker waiting."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    too_big = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "too big")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    original = mrml_bridge.image_from_volume_node

    def copy(node):
        if node.GetName() == "too big":
            raise MemoryError("cannot allocate 150 MB")
        return original(node)

    monkeypatch.setattr(mrml_bridge, "image_from_volume_node", copy)
    finished = []
    run = mrml_bridge.ThreadedRegistration(
        fixed, [too_big, moving], transform="rigid", on_finished=lambda results, error: finished.append(error)
    )
    run.start()
    raised = None
    try:
        ended = _poll_with_safety_net(run)
    except MemoryError as error:  # the defect: the poll itself raised
        run.cancel()
        raised = error
        ended = False
    assert raised is None and ended, "the copy's exception escaped the poll and the run hung"
    failed, good = run.results
    assert failed.status == "failed" and "cannot allocate 150 MB" in failed.report["error"]
    assert "MemoryError" in failed.report.get("traceback", "")
    assert good.status == "ok" and finished == [None]


def test_threaded_run_survives_a_case_callback_that_raises(scene, pair):
    """A failing on_case_done (the panel's progress bar, say) must not lose the next case's hand-off."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    movings = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BC"]
    calls = []

    def on_case_done(index, count, result):
        calls.append(index)
        raise MemoryError("the callback ran out of memory")

    run = mrml_bridge.ThreadedRegistration(fixed, movings, transform="rigid", on_case_done=on_case_done)
    run.start()
    errors = []
    deadline = threading.Event()
    timer = threading.Timer(300.0, deadline.set)
    timer.start()
    try:
        while not deadline.is_set():
            try:
                if run.poll():
                    break
            except MemoryError as error:
                errors.append(error)
            threading.Event().wait(0.01)
    finally:
        timer.cancel()
        run.cancel()
    assert run.finished, "the run hung after a callback raised"
    assert [result.status for result in run.results] == ["ok", "ok"] and calls == [0, 1]


def test_threaded_run_fails_only_the_case_whose_start_raises(scene, pair, monkeypatch):
    """Issue 21 item 18: an exception while the worker starts a case (outside the pipeline's own
    guard) fails that case with its reason; the next case still runs (it is not "cancelled")."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    movings = [mrml_bridge.add_volume_node_from_image(scene, pair.moving, name) for name in "BC"]
    original = mrml_bridge.compute_case
    calls = []

    def compute_case(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError("no memory for the pyramid")
        return original(*args, **kwargs)

    monkeypatch.setattr(mrml_bridge, "compute_case", compute_case)
    finished = []
    run = mrml_bridge.ThreadedRegistration(
        fixed, movings, transform="rigid", on_finished=lambda results, error: finished.append(error)
    )
    run.start()
    assert _poll_with_safety_net(run)
    first, second = run.results
    assert first.status == "failed" and "no memory for the pyramid" in first.report["error"]
    assert second.status == "ok" and finished == [None]
