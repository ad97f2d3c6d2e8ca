"""Segmentations carried with a registration, on the real MRML library (PyPI ``slicer-core``).

The segmentation nodes whose reference geometry is a registered moving volume get a hardened copy in
the fixed space; checked against the fixed scan's own anatomy (the carried bone lies on the fixed
bone), against the transform node's own matrices, and for what must not change (the originals, the
segmentations of other volumes, the scene when carrying fails).
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import SimpleITK as sitk

try:
    import slicer
    import vtk
    from vtk.util import numpy_support
except ImportError as error:  # slicer-core has wheels for CPython 3.10-3.13 only
    pytest.skip(
        f"the MRML library (PyPI package slicer-core) cannot be imported here: {error}",
        allow_module_level=True,
    )

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.mrml import segmentations as mrml_segmentations
from CTAffineRegisterLib.mrml import volume_nodes as mrml_bridge
from CTAffineRegisterLib.panel.result_lines import summary_lines

BONE_HU, BODY_HU = 300, -300
ROLE = "referenceImageGeometryRef"  # Slicer's name, read in vtkMRMLSegmentationNode.h at v5.8.0 and v5.10.0


@pytest.fixture(scope="module", autouse=True)
def converter_rules():
    """The labelmap <-> closed surface rules, registered as Slicer's Segmentations module does at
    start-up (and as Slicer's own MRML tests do): without them no segment can hold a labelmap."""
    factory = slicer.vtkSegmentationConverterFactory.GetInstance()
    for rule in (
        slicer.vtkBinaryLabelmapToClosedSurfaceConversionRule,
        slicer.vtkClosedSurfaceToBinaryLabelmapConversionRule,
    ):
        if not any(existing.IsA(rule.__name__) for existing in factory.GetConverterRules()):
            factory.RegisterConverterRule(rule())


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


def _matrix(node_or_image, getter="GetIJKToRASMatrix") -> np.ndarray:
    matrix = vtk.vtkMatrix4x4()
    getattr(node_or_image, getter)(matrix)
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def _labelmap(volume_node, mask: np.ndarray) -> slicer.vtkOrientedImageData:
    """A binary labelmap (k, j, i numpy mask) on the volume's grid, in its RAS space."""
    image = slicer.vtkOrientedImageData()
    image.SetDimensions(mask.shape[2], mask.shape[1], mask.shape[0])
    image.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    image.GetPointData().GetScalars().DeepCopy(numpy_support.numpy_to_vtk(mask.astype(np.uint8).ravel()))
    ijk_to_ras = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(ijk_to_ras)
    image.SetGeometryFromImageToWorldMatrix(ijk_to_ras)
    return image


def _segment_labelmap(segmentation_node, segment_id: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(voxels k, j, i; image-to-world matrix; extent) of one segment's binary labelmap."""
    image = slicer.vtkOrientedImageData()
    assert segmentation_node.GetBinaryLabelmapRepresentation(segment_id, image)
    extent = image.GetExtent()
    shape = (extent[5] - extent[4] + 1, extent[3] - extent[2] + 1, extent[1] - extent[0] + 1)
    voxels = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(shape).copy()
    return voxels, _matrix(image, "GetImageToWorldMatrix"), extent


def _sample_on(volume_node, voxels, image_to_world, extent) -> np.ndarray:
    """A segment's labelmap sampled (nearest voxel) at the volume's voxel centres: a mask on its grid."""
    shape = slicer.util.arrayFromVolume(volume_node).shape
    k, j, i = np.indices(shape).reshape(3, -1)
    ras = _matrix(volume_node) @ np.vstack([i, j, k, np.ones_like(i)])
    index = np.rint(np.linalg.solve(image_to_world, ras)[:3]).astype(int)
    index -= np.array(extent[::2])[:, None]
    inside = np.all((index >= 0) & (index < np.array(voxels.shape[::-1])[:, None]), axis=0)
    sampled = np.zeros(index.shape[1], bool)
    sampled[inside] = voxels[index[2, inside], index[1, inside], index[0, inside]] > 0
    return sampled.reshape(shape)


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def _surface_points(segmentation_node, segment_id: str) -> np.ndarray:
    surface = vtk.vtkPolyData()
    assert segmentation_node.GetClosedSurfaceRepresentation(segment_id, surface)
    return numpy_support.vtk_to_numpy(surface.GetPoints().GetData()).copy()


def _state(segmentation_node) -> dict:
    """What must not change on an original segmentation."""
    segmentation = segmentation_node.GetSegmentation()
    state = {
        "name": segmentation_node.GetName(),
        "parent": segmentation_node.GetTransformNodeID(),
        "reference": segmentation_node.GetNodeReferenceID(ROLE),
        "geometry": segmentation.GetConversionParameter("Reference image geometry"),
        "source": segmentation.GetSourceRepresentationName(),
        "segments": [
            segmentation.GetNthSegmentID(index) for index in range(segmentation.GetNumberOfSegments())
        ],
    }
    for segment_id in state["segments"]:
        if state["source"] == "Closed surface":
            state[segment_id] = _surface_points(segmentation_node, segment_id).tobytes()
        else:
            voxels, matrix, extent = _segment_labelmap(segmentation_node, segment_id)
            state[segment_id] = (voxels.tobytes(), matrix.tobytes(), extent)
    return state


def _scene_with_segmentations(scene, pair):
    """Fixed and moving volumes, and four segmentations: two of the moving volume (a labelmap one,
    and a closed-surface one under a transform of its own), one of the fixed volume, one of none."""
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "CT A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "CT B")
    values = slicer.util.arrayFromVolume(moving)

    organs = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Organs B")
    organs.CreateDefaultDisplayNodes()
    organs.SetReferenceImageGeometryParameterFromVolumeNode(moving)
    bone = organs.AddSegmentFromBinaryLabelmapRepresentation(_labelmap(moving, values > BONE_HU), "bone")
    body = organs.AddSegmentFromBinaryLabelmapRepresentation(_labelmap(moving, values > BODY_HU), "body")
    organs.GetDisplayNode().SetSegmentOpacity3D(bone, 0.25)
    organs.GetDisplayNode().SetSegmentVisibility(body, False)

    shift = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "contour shift")
    shift_matrix = np.eye(4)
    shift_matrix[:3, 3] = (3.0, -2.0, 5.0)
    shift.SetMatrixTransformToParent(mrml_bridge._vtk_matrix(shift_matrix))
    contours = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "Contours B")
    contours.CreateDefaultDisplayNodes()
    contours.SetReferenceImageGeometryParameterFromVolumeNode(moving)
    contours.SetSourceRepresentationToClosedSurface()
    sphere = vtk.vtkSphereSource()
    sphere.SetCenter(*(mrml_bridge._FLIP[:3, :3] @ pair.body_points[0]))
    sphere.SetRadius(12.0)
    sphere.Update()
    ball = contours.AddSegmentFromClosedSurfaceRepresentation(sphere.GetOutput(), "tumour")
    contours.SetAndObserveTransformNodeID(shift.GetID())

    others = []
    for name, reference in (("Organs A", fixed), ("Loose", None)):
        other = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
        if reference is not None:
            other.SetReferenceImageGeometryParameterFromVolumeNode(reference)
        other.AddSegmentFromBinaryLabelmapRepresentation(_labelmap(moving, values > BONE_HU), "bone")
        others.append(other)
    return {
        "fixed": fixed, "moving": moving, "organs": organs, "contours": contours, "others": others,
        "shift": shift_matrix, "segments": {"bone": bone, "body": body, "tumour": ball},
    }  # fmt: skip


@pytest.fixture(scope="module")
def carried(pair):
    """One registration with carry_segmentations on, in a scene of its own."""
    scene = slicer.vtkMRMLScene()
    nodes = _scene_with_segmentations(scene, pair)
    originals = [nodes["organs"], nodes["contours"], *nodes["others"]]
    before = [_state(node) for node in originals]
    node_count = scene.GetNumberOfNodes()
    (result,) = mrml_bridge.register_volume_nodes(nodes["fixed"], [nodes["moving"]], carry_segmentations=True)
    yield {**nodes, "scene": scene, "result": result, "before": before, "originals": originals,
           "node_count": node_count}  # fmt: skip
    scene.Clear(1)


def test_only_the_moving_volumes_segmentations_are_found(carried):
    found = mrml_segmentations.segmentations_of(carried["moving"])
    assert found == [carried["organs"], carried["contours"]]
    copies = carried["result"].segmentation_nodes  # the copies take the fixed volume as reference
    assert mrml_segmentations.segmentations_of(carried["fixed"]) == [carried["others"][0], *copies]
    assert mrml_segmentations.segmentations_of(None) == []
    assert slicer.vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole() == ROLE


def test_each_segmentation_gets_a_copy_named_registered_in_the_report(carried):
    result = carried["result"]
    assert result.status == "ok", result.report.get("error")
    names = [node.GetName() for node in result.segmentation_nodes]
    assert names == ["Organs B registered", "Contours B registered"]
    expected = [
        {"name": "Organs B", "carried": "Organs B registered", "segments": 2},
        {"name": "Contours B", "carried": "Contours B registered", "segments": 1},
    ]
    assert result.report["segmentations"] == expected
    attribute = json.loads(result.transform_node.GetAttribute(mrml_bridge.REPORT_ATTRIBUTE))
    assert attribute["segmentations"] == expected
    # volume, transform, two segmentations; each with its display node
    assert carried["scene"].GetNumberOfNodes() == carried["node_count"] + 8
    for node in result.segmentation_nodes:
        assert node.GetScene() is carried["scene"] and node.GetDisplayNode() is not None
        assert node.GetParentTransformNode() is None  # hardened
        assert node.GetNodeReference(ROLE) is carried["fixed"]


def test_originals_and_other_segmentations_are_untouched(carried):
    assert [_state(node) for node in carried["originals"]] == carried["before"]
    assert carried["contours"].GetTransformNodeID() is not None


def test_carried_bone_lies_where_the_true_transform_puts_it(carried, pair):
    """The labelmap copy, read at the fixed volume's voxels, matches the moving bone resampled by
    SimpleITK with the pair's known transform; the original (not carried) does not."""
    truth = sitk.Resample(
        sitk.Cast(pair.moving > BONE_HU, sitk.sitkUInt8),
        pair.fixed,
        pair.true_transform,
        sitk.sitkNearestNeighbor,
    )
    true_bone = sitk.GetArrayViewFromImage(truth) > 0
    (copy, _) = carried["result"].segmentation_nodes
    bone = carried["segments"]["bone"]
    carried_bone = _sample_on(carried["fixed"], *_segment_labelmap(copy, bone))
    original_bone = _sample_on(carried["fixed"], *_segment_labelmap(carried["organs"], bone))
    assert _dice(carried_bone, true_bone) > 0.85
    assert _dice(original_bone, true_bone) < 0.2


def test_labelmap_keeps_its_voxels_and_moves_by_the_transform_nodes_to_parent(carried):
    (copy, _) = carried["result"].segmentation_nodes
    to_parent = _matrix(carried["result"].transform_node, "GetMatrixTransformToParent")
    from_parent = _matrix(carried["result"].transform_node, "GetMatrixTransformFromParent")
    assert np.allclose(to_parent @ from_parent, np.eye(4))
    for name in ("bone", "body"):
        voxels, matrix, extent = _segment_labelmap(copy, carried["segments"][name])
        original_voxels, original_matrix, original_extent = _segment_labelmap(
            carried["organs"], carried["segments"][name]
        )
        assert np.array_equal(voxels, original_voxels) and extent == original_extent  # no resampling
        assert np.allclose(matrix, to_parent @ original_matrix, atol=1e-9)


def test_closed_surface_is_taken_through_its_own_transform_then_the_registration(carried):
    (_, copy) = carried["result"].segmentation_nodes
    tumour = carried["segments"]["tumour"]
    assert copy.GetSegmentation().GetSourceRepresentationName() == "Closed surface"
    original = _surface_points(carried["contours"], tumour)
    moved = _surface_points(copy, tumour)
    to_parent = _matrix(carried["result"].transform_node, "GetMatrixTransformToParent")
    expected = (to_parent @ carried["shift"] @ np.c_[original, np.ones(len(original))].T)[:3].T
    assert np.allclose(moved, expected, atol=1e-3)  # float32 points
    assert not np.allclose(moved, original, atol=1.0)


def test_copy_shows_like_the_original_and_takes_the_fixed_geometry(carried, scene):
    (copy, _) = carried["result"].segmentation_nodes
    display = copy.GetDisplayNode()
    assert display is not carried["organs"].GetDisplayNode()
    assert display.GetSegmentOpacity3D(carried["segments"]["bone"]) == pytest.approx(0.25)
    assert display.GetSegmentVisibility(carried["segments"]["body"]) is False
    assert display.GetSegmentVisibility(carried["segments"]["bone"]) is True
    probe = carried["scene"].AddNewNodeByClass("vtkMRMLSegmentationNode", "probe")
    probe.SetReferenceImageGeometryParameterFromVolumeNode(carried["fixed"])
    geometry = "Reference image geometry"
    fixed_geometry = probe.GetSegmentation().GetConversionParameter(geometry)
    carried["scene"].RemoveNode(probe)
    assert copy.GetSegmentation().GetConversionParameter(geometry) == fixed_geometry
    assert carried["organs"].GetSegmentation().GetConversionParameter(geometry) != fixed_geometry


def test_nothing_is_carried_unless_asked(scene, pair):
    nodes = _scene_with_segmentations(scene, pair)
    count = scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode")
    (result,) = mrml_bridge.register_volume_nodes(nodes["fixed"], [nodes["moving"]], transform="rigid")
    assert result.status == "ok" and result.segmentation_nodes == []
    assert "segmentations" not in result.report
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == count


def test_a_volume_without_segmentations_reports_none(scene, pair):
    fixed = mrml_bridge.add_volume_node_from_image(scene, pair.fixed, "A")
    moving = mrml_bridge.add_volume_node_from_image(scene, pair.moving, "B")
    (result,) = mrml_bridge.register_volume_nodes(
        fixed, [moving], transform="rigid", carry_segmentations=True
    )
    assert result.status == "ok" and result.segmentation_nodes == [] and result.report["segmentations"] == []


def test_a_copy_that_fails_leaves_none_of_the_cases_nodes(scene, pair, monkeypatch):
    nodes = _scene_with_segmentations(scene, pair)
    node_count = scene.GetNumberOfNodes()
    calls = []
    real = mrml_segmentations.carry_segmentation

    def second_fails(segmentation_node, transform_node, fixed_node):
        calls.append(segmentation_node.GetName())
        if len(calls) == 2:
            raise RuntimeError("copy could not be made")
        return real(segmentation_node, transform_node, fixed_node)

    monkeypatch.setattr(mrml_segmentations, "carry_segmentation", second_fails)
    (result,) = mrml_bridge.register_volume_nodes(
        nodes["fixed"], [nodes["moving"]], transform="rigid", carry_segmentations=True
    )
    assert calls == ["Organs B", "Contours B"]  # the first copy was made, then removed
    assert result.status == "failed" and "copy could not be made" in result.report["error"]
    assert result.segmentation_nodes == [] and result.volume_node is None
    assert scene.GetNumberOfNodes() == node_count


def test_threaded_run_carries_segmentations_on_the_polling_thread(scene, pair):
    nodes = _scene_with_segmentations(scene, pair)
    main_thread = threading.current_thread()
    made_on = []
    scene.AddObserver(
        scene.NodeAddedEvent, lambda caller, event: made_on.append(threading.current_thread() is main_thread)
    )
    finished = []
    run = mrml_bridge.ThreadedRegistration(
        nodes["fixed"],
        [nodes["moving"]],
        transform="rigid",
        carry_segmentations=True,
        on_finished=lambda results, error: finished.append((results, error)),
    )
    run.start()
    while not run.poll():
        threading.Event().wait(0.01)
    ((results, error),) = finished
    assert error is None and results[0].status == "ok"
    names = [node.GetName() for node in results[0].segmentation_nodes]
    assert names == ["Organs B registered", "Contours B registered"]
    assert made_on and all(made_on)  # every node, segmentation copies included, made on this thread


def test_status_area_names_the_carried_segmentations(carried):
    report = carried["result"].report
    lines = summary_lines([("CT B", report), ("CT C", {**report, "segmentations": []})])
    assert lines[2] == "CT B: segmentations carried: 'Organs B registered', 'Contours B registered'"
    assert lines[4] == "CT C: no segmentation has it as reference geometry; none carried"
    without = {key: value for key, value in report.items() if key != "segmentations"}
    assert len(summary_lines([("CT B", without)])) == 2  # not asked: not mentioned
