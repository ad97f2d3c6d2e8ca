"""The one place that knows MRML and RAS: volume nodes ↔ SimpleITK images, ITK transforms → transform nodes.

Slicer stores geometry in RAS (right, anterior, superior), ITK and every file format in LPS; the two
differ by flipping the first two axes, ``F = diag(-1, -1, 1)``, so RAS = F · LPS · F for any 4×4 map.
ITK registration transforms map FIXED points to MOVING points (a resampling transform). In Slicer that
is a transform "from parent": placing the moving volume under the node aligns it to the fixed volume.

``register_volume_nodes`` is the console entry; the module widget calls the same building blocks
(``image_from_volume_node`` on the GUI thread, ``compute_case`` in a worker thread, ``add_case_nodes``
back on the GUI thread). Imports ``slicer`` and ``vtk``, never ``qt``: it runs in the Slicer console,
in ``--no-main-window`` batch mode and on the headless ``slicer-core`` MRML library.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import SimpleITK as sitk
import slicer
import vtk

from ..errors import InputError, RegistrationCancelled, RegistrationError, VolumeNodeError
from ..padding.analysis import analyze_background
from ..pair import register as pair_register
from . import segmentations

# RAS = F · LPS · F, with F its own inverse.
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])
# Direction columns this close to orthogonal (cosine) still make a valid ITK image geometry.
_ORTHOGONALITY_TOLERANCE = 1e-4
# Node attribute holding the JSON report on each transform node the registration creates.
REPORT_ATTRIBUTE = "CTAffineRegister.report"


# Failures the pipeline explains in its message; anything else also gets a traceback in the report.
_EXPLAINED_ERRORS = (VolumeNodeError, ValueError, RegistrationError, InputError)


@dataclass
class NodeResult:
    """What one moving volume produced in the scene. Nodes are None when its registration failed."""

    moving_node_id: str
    volume_node: Any = None  # vtkMRMLScalarVolumeNode on the fixed grid, "<moving name> registered"
    transform_node: Any = None  # vtkMRMLLinearTransformNode, fixed RAS -> moving RAS as "from parent"
    mask_node: Any = None  # vtkMRMLLabelMapVolumeNode, 1 = real moving data, when asked for
    report: dict = field(default_factory=dict)
    # vtkMRMLSegmentationNode copies "<name> registered" in the fixed space, with carry_segmentations
    segmentation_nodes: list = field(default_factory=list)

    @property
    def status(self) -> str:
        """The case's status from its report: "ok", "failed" or "cancelled".

        Returns:
            The status ("failed" when the report has none).
        """
        return self.report.get("status", "failed")


# ---------------------------------------------------------------------------------------------
# Geometry


def _vtk_matrix(array: np.ndarray) -> vtk.vtkMatrix4x4:
    matrix = vtk.vtkMatrix4x4()
    for row in range(4):
        for column in range(4):
            matrix.SetElement(row, column, float(array[row, column]))
    return matrix


def _numpy_matrix(matrix: vtk.vtkMatrix4x4) -> np.ndarray:
    return np.array([[matrix.GetElement(row, column) for column in range(4)] for row in range(4)])


def ras_from_lps(matrix: np.ndarray) -> np.ndarray:
    """A 4×4 map between LPS spaces expressed between the matching RAS spaces (and back: it is symmetric).

    Args:
        matrix: a 4×4 homogeneous map between LPS spaces.

    Returns:
        The same map between RAS spaces.
    """
    return _FLIP @ np.asarray(matrix, dtype=float) @ _FLIP


def _geometry_from_node(volume_node) -> tuple[tuple, tuple, tuple]:
    """Spacing, LPS origin and LPS direction (row-major) of a node, in world coordinates."""
    spacing = np.array(volume_node.GetSpacing(), dtype=float)
    origin_ras = np.array(volume_node.GetOrigin(), dtype=float)
    directions = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASDirectionMatrix(directions)
    direction_ras = _numpy_matrix(directions)[:3, :3]

    parent = volume_node.GetParentTransformNode()
    if parent is not None:
        to_world = _parent_matrix(volume_node, parent)
        ijk_to_ras = np.eye(4)
        ijk_to_ras[:3, :3] = direction_ras * spacing
        ijk_to_ras[:3, 3] = origin_ras
        ijk_to_ras = to_world @ ijk_to_ras
        spacing = np.linalg.norm(ijk_to_ras[:3, :3], axis=0)
        direction_ras = ijk_to_ras[:3, :3] / spacing
        origin_ras = ijk_to_ras[:3, 3]
        cosines = direction_ras.T @ direction_ras - np.eye(3)
        if np.abs(cosines).max() > _ORTHOGONALITY_TOLERANCE:
            raise VolumeNodeError(
                f"volume '{volume_node.GetName()}' is under transform '{parent.GetName()}', which shears it; "
                "harden the transform (Data module: right-click, Harden transform) or remove it first"
            )

    flip = _FLIP[:3, :3]
    origin_lps = flip @ origin_ras
    direction_lps = flip @ direction_ras
    return (
        tuple(float(v) for v in spacing),
        tuple(float(v) for v in origin_lps),
        tuple(float(v) for v in direction_lps.ravel()),
    )


def _parent_matrix(volume_node, parent) -> np.ndarray:
    """The volume's local-to-world matrix; a non-linear parent cannot be folded into a grid."""
    if not parent.IsTransformToWorldLinear():
        raise VolumeNodeError(
            f"volume '{volume_node.GetName()}' is under the non-linear transform '{parent.GetName()}'; "
            "harden the transform (Data module: right-click, Harden transform) or remove it first"
        )
    to_world = vtk.vtkMatrix4x4()
    parent.GetMatrixTransformToWorld(to_world)
    return _numpy_matrix(to_world)


def image_from_volume_node(volume_node) -> sitk.Image:
    """A copy of a scalar volume as a SimpleITK image in LPS, in world coordinates.

    A volume under a linear (rigid or scaling) parent transform comes out as if that transform had
    been hardened; the node itself is never changed. Sheared or non-linear parents are refused.

    Args:
        volume_node: a ``vtkMRMLScalarVolumeNode`` with voxels.

    Returns:
        The image (LPS, world coordinates).

    Raises:
        VolumeNodeError: no node, not a scalar volume, no voxels, several components, or under a
            shearing or non-linear parent transform.
    """
    if volume_node is None:
        raise VolumeNodeError("no volume node given")
    if not volume_node.IsA("vtkMRMLScalarVolumeNode"):
        raise VolumeNodeError(
            f"'{volume_node.GetName()}' is a {volume_node.GetClassName()}, not a scalar volume"
        )
    image_data = volume_node.GetImageData()
    if image_data is None or image_data.GetNumberOfPoints() == 0:
        raise VolumeNodeError(f"volume '{volume_node.GetName()}' has no voxels")
    if image_data.GetNumberOfScalarComponents() != 1:
        raise VolumeNodeError(
            f"volume '{volume_node.GetName()}' has {image_data.GetNumberOfScalarComponents()} components "
            "per voxel; a CT scan has one"
        )
    spacing, origin, direction = _geometry_from_node(volume_node)
    # arrayFromVolume is a view into VTK memory; GetImageFromArray copies it into the image's own
    # buffer (the one copy made), so nothing done to the image reaches the node.
    image = sitk.GetImageFromArray(slicer.util.arrayFromVolume(volume_node))
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


def update_volume_node_from_image(volume_node, image: sitk.Image) -> None:
    """Voxels and geometry of a SimpleITK (LPS) image into an existing volume node (RAS).

    Args:
        volume_node: the node to update.
        image: a 3D single-component image (LPS).

    Raises:
        VolumeNodeError: the image is not 3D single-component.
    """
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeNodeError("only 3-D single-component images can become volume nodes")
    flip = _FLIP[:3, :3]
    direction_ras = flip @ np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    directions = np.eye(4)
    directions[:3, :3] = direction_ras
    volume_node.SetSpacing(*image.GetSpacing())
    volume_node.SetOrigin(*(flip @ np.array(image.GetOrigin(), dtype=float)))
    volume_node.SetIJKToRASDirectionMatrix(_vtk_matrix(directions))
    # A read-only view of the image's buffer: updateVolumeFromArray copies it into VTK memory, the one
    # copy made (GetArrayFromImage would add a second, full-size numpy copy on the GUI thread).
    slicer.util.updateVolumeFromArray(volume_node, sitk.GetArrayViewFromImage(image))


def add_volume_node_from_image(
    scene, image: sitk.Image, name: str, class_name: str = "vtkMRMLScalarVolumeNode"
) -> Any:
    """A new volume node holding ``image``, with display nodes; nothing is left behind if it fails.

    Args:
        scene: the MRML scene.
        image: a 3D single-component image (LPS).
        name: the node's name.
        class_name: the volume node class.

    Returns:
        The new node.
    """
    volume_node = scene.AddNewNodeByClass(class_name, name)
    try:
        update_volume_node_from_image(volume_node, image)
        volume_node.CreateDefaultDisplayNodes()
    except Exception:
        remove_nodes(scene, [volume_node])
        raise
    return volume_node


def ijk_to_ras(volume_node) -> np.ndarray:
    """The node's IJK-to-RAS matrix as a numpy array (local coordinates, parent transforms ignored).

    Args:
        volume_node: a volume node.

    Returns:
        The 4×4 matrix.
    """
    matrix = vtk.vtkMatrix4x4()
    volume_node.GetIJKToRASMatrix(matrix)
    return _numpy_matrix(matrix)


# ---------------------------------------------------------------------------------------------
# Transforms


def lps_matrix_from_transform(transform: sitk.Transform) -> np.ndarray:
    """The 4×4 homogeneous matrix of a linear ITK transform (any type, composites included), in LPS.

    Args:
        transform: a 3D linear ITK transform.

    Returns:
        The 4×4 matrix.

    Raises:
        ValueError: the transform is not 3D, or not linear.
    """
    if transform.GetDimension() != 3:
        raise ValueError("only 3-D transforms can be shown in Slicer")
    if not transform.IsLinear():
        raise ValueError(f"{transform.GetName()} is not linear; a linear transform node cannot hold it")
    # Read the map from how it moves the origin and the unit axes: exact for every linear type.
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    matrix = np.eye(4)
    for axis in range(3):
        unit = [0.0, 0.0, 0.0]
        unit[axis] = 1.0
        matrix[:3, axis] = np.array(transform.TransformPoint(unit)) - origin
    matrix[:3, 3] = origin
    return matrix


def ras_matrix_from_transform(transform: sitk.Transform) -> np.ndarray:
    """The ITK fixed→moving transform as a 4×4 map from fixed RAS points to moving RAS points.

    Args:
        transform: a 3D linear ITK transform (fixed → moving, LPS).

    Returns:
        The 4×4 matrix (fixed RAS → moving RAS).

    Raises:
        ValueError: the transform is not 3D, or not linear.
    """
    return ras_from_lps(lps_matrix_from_transform(transform))


def update_transform_node(transform_node, transform: sitk.Transform) -> None:
    """Set an ITK fixed→moving transform as the node's transform FROM parent (Slicer's resampling sense).

    Args:
        transform_node: a linear transform node.
        transform: the ITK fixed→moving transform.

    Raises:
        ValueError: the transform is not 3D, or not linear.
    """
    transform_node.SetMatrixTransformFromParent(_vtk_matrix(ras_matrix_from_transform(transform)))


def add_transform_node(scene, transform: sitk.Transform, name: str, fixed_node=None, moving_node=None) -> Any:
    """A new linear transform node for ``transform``, tagged with the registration's fixed/moving volumes.

    The references use the roles every Slicer registration module writes
    (``vtkMRMLTransformNode.GetFixedNodeReferenceRole()`` / ``GetMovingNodeReferenceRole()``).

    Args:
        scene: the MRML scene.
        transform: the ITK fixed→moving transform.
        name: the node's name.
        fixed_node: the fixed volume, referenced by the node, or None.
        moving_node: the moving volume, likewise.

    Returns:
        The new ``vtkMRMLLinearTransformNode``.

    Raises:
        ValueError: the transform is not 3D, or not linear.
    """
    transform_node = scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", name)
    try:
        update_transform_node(transform_node, transform)
        if moving_node is not None:
            transform_node.AddNodeReferenceID(
                slicer.vtkMRMLTransformNode.GetMovingNodeReferenceRole(), moving_node.GetID()
            )
        if fixed_node is not None:
            transform_node.AddNodeReferenceID(
                slicer.vtkMRMLTransformNode.GetFixedNodeReferenceRole(), fixed_node.GetID()
            )
        transform_node.CreateDefaultDisplayNodes()
    except Exception:
        remove_nodes(scene, [transform_node])
        raise
    return transform_node


def remove_nodes(scene, nodes: Sequence) -> None:
    """Remove nodes and the display/storage nodes they own (removing a node alone leaves those behind).

    Args:
        scene: the MRML scene.
        nodes: the nodes (None entries are skipped).
    """
    for node in nodes:
        if node is None or node.GetScene() is None:
            continue
        owned = []
        for getter, count in (
            ("GetNthDisplayNode", "GetNumberOfDisplayNodes"),
            ("GetNthStorageNode", "GetNumberOfStorageNodes"),
        ):
            if hasattr(node, count):
                owned += [getattr(node, getter)(index) for index in range(getattr(node, count)())]
        scene.RemoveNode(node)
        for child in owned:
            if child is not None and child.GetScene() is not None:
                scene.RemoveNode(child)


# ---------------------------------------------------------------------------------------------
# Background findings of a node


def analyze_volume_node(volume_node) -> dict:
    """Background findings of a volume (``pair.register.analyze``): kind, summary, padding_value, air_value.
    Runs here and now; the panel uses ``volume_findings`` to keep it off the GUI thread.

    Args:
        volume_node: a scalar volume node.

    Returns:
        The findings, as plain data.

    Raises:
        VolumeNodeError: the node cannot be read as a scalar volume.
    """
    return pair_register.analyze(image_from_volume_node(volume_node))


# ---------------------------------------------------------------------------------------------
# Registration of nodes


def compute_case(
    fixed_image: sitk.Image,
    moving_image: sitk.Image,
    *,
    fixed_analysis=None,
    transform: str = "affine",
    fill: Optional[float] = None,
    progress: Optional[Callable] = None,
    cancel=None,
) -> tuple[Optional[pair_register.CaseResult], dict]:
    """Run the pure pipeline for one pair: (result, report) or (None, failure report).

    Touches no MRML node, so the widget runs it in a worker thread. ``RegistrationCancelled``
    propagates: stopping is the caller's decision, not a failure of this case.

    Args:
        fixed_image: the fixed scan.
        moving_image: the moving scan.
        fixed_analysis: the fixed scan's ``BackgroundAnalysis``, to analyse it once.
        transform: "rigid", "similarity" or "affine".
        fill: the value where there is no real moving data; None: the moving air level.
        progress: called with a ``ProgressEvent`` per optimizer iteration.
        cancel: a ``threading.Event`` or a callable returning True to stop.

    Returns:
        (``CaseResult``, its report), or (None, the failure report).

    Raises:
        RegistrationCancelled: ``cancel`` asked to stop.
    """
    started = time.perf_counter()
    try:
        result = pair_register.register_pair(
            fixed_image,
            moving_image,
            transform=transform,
            fill=fill,
            fixed_analysis=fixed_analysis,
            progress=progress,
            cancel=cancel,
        )
    except RegistrationCancelled:
        raise
    except Exception as error:  # one bad case must not stop the others: its report says why
        return None, failure_report(error, time.perf_counter() - started)
    return result, result.report


def failure_report(error: BaseException, seconds: float = 0.0, status: str = "failed") -> dict:
    """The report of a case that produced nothing.

    Args:
        error: what went wrong.
        seconds: how long the case ran.
        status: "failed" or "cancelled".

    Returns:
        The JSON-able report.
    """
    message = str(error) or type(error).__name__
    report = {"status": status, "error": message, "seconds": round(seconds, 3)}
    if status == "failed" and not isinstance(error, _EXPLAINED_ERRORS):
        report["traceback"] = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return report


def add_case_nodes(
    scene,
    fixed_node,
    moving_node,
    result: pair_register.CaseResult,
    create_mask: bool = False,
    carry_segmentations: bool = False,
):
    """Put one registration result into the scene: all of its nodes, or (on error) none of them.

    With ``carry_segmentations``, every segmentation whose reference geometry is the moving volume
    gets a hardened copy in the fixed space (``mrml.segmentations``); the report lists them.

    Args:
        scene: the MRML scene.
        fixed_node: the fixed volume node.
        moving_node: the moving volume node.
        result: what ``compute_case`` returned.
        create_mask: also add the validity mask as a volume.
        carry_segmentations: carry the moving volume's segmentations along.

    Returns:
        The ``NodeResult`` with the new nodes.
    """
    name = moving_node.GetName()
    report = dict(result.report)
    created = []
    try:
        volume_node = add_volume_node_from_image(scene, result.registered, f"{name} registered")
        created.append(volume_node)
        transform_node = add_transform_node(
            scene, result.transform, f"{name} to {fixed_node.GetName()}", fixed_node, moving_node
        )
        created.append(transform_node)
        mask_node = None
        if create_mask:
            mask_node = add_volume_node_from_image(
                scene, result.valid_mask, f"{name} valid mask", "vtkMRMLLabelMapVolumeNode"
            )
            created.append(mask_node)
        segmentation_nodes = []
        if carry_segmentations:
            originals = segmentations.segmentations_of(moving_node)
            segmentation_nodes = segmentations.carry_segmentations(originals, transform_node, fixed_node)
            created += segmentation_nodes
            report["segmentations"] = segmentations.describe(originals, segmentation_nodes)
        transform_node.SetAttribute(REPORT_ATTRIBUTE, json.dumps(report, default=str))
    except Exception:
        remove_nodes(scene, created)
        raise
    return NodeResult(moving_node.GetID(), volume_node, transform_node, mask_node, report, segmentation_nodes)


def register_volume_nodes(
    fixed_node,
    moving_nodes: Sequence,
    transform: str = "affine",
    fill: Optional[float] = None,
    progress: Optional[Callable] = None,
    cancel=None,
    create_mask: bool = False,
    carry_segmentations: bool = False,
) -> list[NodeResult]:
    """Register each moving volume onto the fixed one, in the fixed volume's scene. One result per moving.

    From the Python console::

        from CTAffineRegisterLib import register_volume_nodes
        results = register_volume_nodes(getNode("CT A"), [getNode("CT B")])
        results[0].report["status"], results[0].volume_node

    Each result has ``volume_node`` ("<moving name> registered", on the fixed grid, padding
    replaced), ``transform_node`` (put the moving volume under it to align it to the fixed one),
    ``mask_node`` (with ``create_mask``), ``segmentation_nodes`` (with ``carry_segmentations``: a
    hardened copy "<name> registered", in the fixed space, of every segmentation whose reference
    geometry is the moving volume; listed in ``report["segmentations"]``) and ``report``. A moving
    volume that fails gets a report with status "failed" and its error, and no nodes; the others
    still run. After a cancel (``cancel.set()``), the current and the remaining volumes are reported
    "cancelled". Input nodes are never changed. Raises ``VolumeNodeError`` when the fixed volume is unusable.

    Args:
        fixed_node: the fixed scalar volume node.
        moving_nodes: the moving scalar volume nodes.
        transform: "rigid", "similarity" or "affine".
        fill: the value where a result has no real moving data; None: each moving volume's air level.
        progress: called with a ``ProgressEvent`` per optimizer iteration.
        cancel: a ``threading.Event``; set it to stop.
        create_mask: also add each validity mask as a volume node.
        carry_segmentations: carry each moving volume's segmentations along.

    Returns:
        One ``NodeResult`` per moving volume, in order.

    Raises:
        VolumeNodeError: the fixed volume cannot be used (no voxels, not scalar, ...).
    """
    scene = fixed_node.GetScene() if fixed_node is not None else None
    if scene is None:
        raise VolumeNodeError("the fixed volume is not in a scene")
    fixed_image = image_from_volume_node(fixed_node)
    fixed_analysis = analyze_background(fixed_image)

    results = []
    cancelled = False
    for moving_node in moving_nodes:
        moving_id = moving_node.GetID() if moving_node is not None else ""
        if cancelled or _is_set(cancel):
            cancelled = True
            results.append(NodeResult(moving_id, report=cancelled_report()))
            continue
        started = time.perf_counter()
        try:
            moving_image = image_from_volume_node(moving_node)
            if moving_node.GetScene() is not scene:
                raise VolumeNodeError(f"'{moving_node.GetName()}' is not in the fixed volume's scene")
            result, report = compute_case(
                fixed_image,
                moving_image,
                fixed_analysis=fixed_analysis,
                transform=transform,
                fill=fill,
                progress=progress,
                cancel=cancel,
            )
            if result is None:
                results.append(NodeResult(moving_id, report=report))
                continue
            results.append(
                add_case_nodes(scene, fixed_node, moving_node, result, create_mask, carry_segmentations)
            )
        except RegistrationCancelled:
            cancelled = True
            results.append(NodeResult(moving_id, report=cancelled_report()))
        except Exception as error:  # unusable node or node creation failed: this case only
            results.append(NodeResult(moving_id, report=failure_report(error, time.perf_counter() - started)))
    return results


def cancelled_report() -> dict:
    """The report of a case the user stopped (or that never started because of the stop).

    Returns:
        The JSON-able report.
    """
    return {"status": "cancelled", "error": "cancelled by the user", "seconds": 0.0}


def _is_set(cancel) -> bool:
    if cancel is None:
        return False
    if hasattr(cancel, "is_set"):
        return bool(cancel.is_set())
    return bool(cancel())


# ---------------------------------------------------------------------------------------------
# Registration in a worker thread (the module panel's way)


class ThreadedRegistration:
    """Registers in a worker thread; result nodes are made by ``poll`` on the caller's (GUI) thread.

    MRML is not thread-safe, so the split is strict: the worker runs only the pure pipeline and
    queues events; ``poll`` reads volume nodes, creates nodes and calls the callbacks. The fixed
    volume is copied in ``__init__`` and released when the run finishes; each moving volume is copied
    by ``poll`` only when the worker asks for it, just before its registration, and released after
    it: however many volumes are checked, one moving copy exists at a time and the panel never
    freezes for all the copies. Any exception copying or starting a case fails that case only.
    Segmentations carried along (``carry_segmentations``) are MRML too: ``poll`` copies them with
    the result nodes. The caller calls ``poll`` repeatedly (the module uses a Qt timer) until it
    returns True. Callbacks, all on the polling thread: ``on_progress(index, count, name, event)``,
    ``on_case_done(index, count, node_result)`` and ``on_finished(results, error)``, where error is
    None unless the run itself broke down.
    """

    # How often a worker waiting for its next moving volume looks at the cancel flag (seconds).
    _WAIT_SECONDS = 0.05

    def __init__(
        self,
        fixed_node,
        moving_nodes: Sequence,
        transform: str = "affine",
        fill: Optional[float] = None,
        create_mask: bool = False,
        on_progress: Optional[Callable] = None,
        on_case_done: Optional[Callable] = None,
        on_finished: Optional[Callable] = None,
        carry_segmentations: bool = False,
    ):
        if fixed_node is None:
            raise VolumeNodeError("select a fixed volume")
        if not moving_nodes:
            raise VolumeNodeError("select at least one moving volume")
        self.scene = fixed_node.GetScene()
        if self.scene is None:
            raise VolumeNodeError("the fixed volume is not in a scene")
        self._fixed_image = image_from_volume_node(fixed_node)
        self._fixed_id = fixed_node.GetID()
        # a node of another scene gets no ID here: its ID could name some other node of this scene
        self._moving_ids = [
            node.GetID() if node is not None and node.GetScene() is self.scene else ""
            for node in moving_nodes
        ]
        self.names = [node.GetName() if node is not None else "" for node in moving_nodes]
        self._options = {"transform": transform, "fill": fill}
        self._create_mask = create_mask
        self._carry_segmentations = carry_segmentations
        self._callbacks = (on_progress, on_case_done, on_finished)
        self._events: queue.Queue = queue.Queue()
        self._handoff: queue.Queue = queue.Queue()  # polling thread -> worker: (image, failure) per case
        self._cancel = threading.Event()
        self._results: list = [None] * len(moving_nodes)
        self._error: Optional[str] = None
        self._thread: Optional[threading.Thread] = None
        self.finished = False

    def start(self) -> None:
        """Start the worker thread; results arrive through ``poll``."""
        self._thread = threading.Thread(target=self._work, name="CTAffineRegister", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        """Stop at the optimizer's next iteration; the volumes already finished keep their nodes."""
        self._cancel.set()

    def wait(self) -> None:
        """Block until the worker thread has stopped; call ``cancel`` first unless it has finished
        (a worker waiting for its next moving volume only gets it from ``poll``)."""
        if self._thread is not None:
            self._thread.join()

    def _work(self) -> None:
        """Worker thread: SimpleITK and numpy only; no MRML node is touched here."""
        events = self._events
        try:
            fixed_analysis = analyze_background(self._fixed_image)
            for index in range(len(self._results)):
                started = time.perf_counter()
                try:
                    result, report = self._run_case(index, fixed_analysis)
                except Exception as error:  # e.g. MemoryError starting the case: this case fails, says why
                    result, report = None, failure_report(error, time.perf_counter() - started)
                events.put(("case", index, result, report))
        except Exception as error:  # the run itself broke down (e.g. the fixed analysis failed)
            events.put(("error", f"{error}\n{traceback.format_exc()}"))
        finally:
            events.put(("finished",))

    def _run_case(self, index: int, fixed_analysis) -> tuple[Optional[pair_register.CaseResult], dict]:
        """Worker thread: one case, from asking for its moving copy to its result (or report)."""
        moving_image, failure = self._next_moving_image(index)
        if self._cancel.is_set():
            return None, cancelled_report()
        if failure is not None:
            return None, failure
        try:
            return compute_case(
                self._fixed_image,
                moving_image,
                fixed_analysis=fixed_analysis,
                progress=lambda event: self._events.put(("progress", index, event)),
                cancel=self._cancel,
                **self._options,
            )
        except RegistrationCancelled:
            return None, cancelled_report()
        finally:
            del moving_image  # the copy goes before the next one is made

    def _next_moving_image(self, index: int) -> tuple[Optional[sitk.Image], Optional[dict]]:
        """Worker thread: ask the polling thread for a copy of moving volume ``index`` and wait for it.
        (None, None) when cancelled meanwhile."""
        if self._cancel.is_set():
            return None, None
        self._events.put(("need", index))
        while not self._cancel.is_set():
            try:
                return self._handoff.get(timeout=self._WAIT_SECONDS)
            except queue.Empty:
                continue
        return None, None

    def _copy_moving(self, index: int) -> tuple[Optional[sitk.Image], Optional[dict]]:
        """Polling thread: the SimpleITK copy of moving volume ``index``, or the report of why not."""
        try:
            if not self._moving_ids[index]:
                raise VolumeNodeError("a moving volume is not in the fixed volume's scene")
            node = self.scene.GetNodeByID(self._moving_ids[index])
            if node is None:
                raise VolumeNodeError(f"moving volume '{self.names[index]}' is no longer in the scene")
            return image_from_volume_node(node), None
        except Exception as error:  # MemoryError too: the worker waits for an answer, whatever happened
            return None, failure_report(error)

    def poll(self) -> bool:
        """Caller's thread: make nodes for finished cases, call the callbacks; True once all is done."""
        if self.finished:
            return True
        on_progress, on_case_done, on_finished = self._callbacks
        count = len(self._results)
        last_progress, done = None, False
        while True:
            try:
                item = self._events.get_nowait()
            except queue.Empty:
                break
            if item[0] == "progress":
                last_progress = item  # only the newest matters for a progress bar
            elif item[0] == "need":
                self._handoff.put(self._copy_moving(item[1]))
            elif item[0] == "case":
                _, index, result, report = item
                self._results[index] = self._case_nodes(index, result, report)
                if on_case_done:
                    on_case_done(index, count, self._results[index])
            elif item[0] == "error":
                self._error = item[1]
            elif item[0] == "finished":
                done = True
        if not done:
            if last_progress is not None and on_progress:
                _, index, event = last_progress
                on_progress(index, count, self.names[index], event)
            return False
        self.wait()
        self.finished = True
        self._fixed_image = None  # a finished run holds no copy of the fixed CT, whoever keeps the run
        while not self._handoff.empty():  # a copy made just before a cancel is not kept
            self._handoff.get_nowait()
        if on_finished:
            on_finished(self.results, self._error.splitlines()[0] if self._error else None)
        return True

    @property
    def results(self) -> list[NodeResult]:
        """One result per moving volume; those the run never reached count as cancelled."""
        return [
            result or NodeResult(self._moving_ids[index], report=cancelled_report())
            for index, result in enumerate(self._results)
        ]

    @property
    def error_details(self) -> Optional[str]:
        """The traceback of an unexpected error in the worker, or None.

        Returns:
            The text, or None.
        """
        return self._error

    def _case_nodes(self, index: int, result, report: dict) -> NodeResult:
        moving_id = self._moving_ids[index]
        if result is None:
            return NodeResult(moving_id, report=report)
        try:  # any exception (MemoryError making the nodes, say) fails this case with its reason
            fixed_node = self.scene.GetNodeByID(self._fixed_id)
            moving_node = self.scene.GetNodeByID(moving_id)
            if fixed_node is None or moving_node is None:
                raise VolumeNodeError("an input volume was deleted while it was being registered")
            with _render_blocker():
                return add_case_nodes(
                    self.scene, fixed_node, moving_node, result, self._create_mask, self._carry_segmentations
                )
        except Exception as error:
            return NodeResult(moving_id, report=failure_report(error))


def _render_blocker():
    """Pause view rendering while result nodes are filled in; the headless MRML library has no views."""
    if getattr(slicer, "app", None) is None:
        return contextlib.nullcontext()
    return slicer.util.RenderBlocker()
