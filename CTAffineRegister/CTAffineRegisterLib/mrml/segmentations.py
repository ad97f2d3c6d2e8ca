"""Segmentations carried with a registration in Slicer: a copy of each, hardened into the fixed space.

A segmentation node belongs to a volume through its reference geometry (the node reference role
``vtkMRMLSegmentationNode.GetReferenceImageGeometryReferenceRole()``, "referenceImageGeometryRef",
which the Segment Editor sets to its source volume). For a registered moving volume, each of its
segmentations is copied, the copy is put under the registration's transform node and the transform
is hardened (``vtkMRMLTransformableNode.HardenTransform``, the same call as *Harden transform* in the
Data module): a binary labelmap keeps its voxels and only its geometry moves, a closed surface has
its points moved. The copy is named "<name> registered" and takes the fixed volume as its reference
geometry; the original is not changed.

Works only through methods of the MRML nodes it is given (checked in Slicer's source at v5.8.0 and
v5.10.0): it imports neither ``slicer`` nor ``vtk`` and runs wherever ``mrml.volume_nodes`` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SEGMENTATION_CLASS = "vtkMRMLSegmentationNode"
REGISTERED_SUFFIX = " registered"


def segmentations_of(volume_node) -> list:
    """The segmentation nodes of the volume's scene whose reference geometry is this volume (scene order).

    Args:
        volume_node: a volume node, or None.

    Returns:
        The segmentation nodes.
    """
    scene = volume_node.GetScene() if volume_node is not None else None
    if scene is None:
        return []
    found = []
    for index in range(scene.GetNumberOfNodesByClass(SEGMENTATION_CLASS)):
        node = scene.GetNthNodeByClass(index, SEGMENTATION_CLASS)
        role = node.GetReferenceImageGeometryReferenceRole()
        if node.GetNodeReferenceID(role) == volume_node.GetID():
            found.append(node)
    return found


def carry_segmentation(segmentation_node, transform_node, fixed_node) -> Any:
    """A hardened copy of ``segmentation_node`` in the fixed volume's space (see the module docstring).

    ``transform_node`` is the registration's (fixed RAS → moving RAS "from parent", so its "to parent"
    takes moving points to fixed points). A segmentation under a parent transform of its own is first
    taken to world coordinates, as it is shown. The copy's display (segment colours, visibility,
    opacity) is the original's. Nothing is left in the scene if this fails.

    Args:
        segmentation_node: the moving volume's segmentation.
        transform_node: the registration's transform node.
        fixed_node: the fixed volume node.

    Returns:
        The hardened copy.

    Raises:
        RuntimeError: a transform could not be hardened (the copy is removed).
    """
    scene = segmentation_node.GetScene()
    copy = scene.AddNewNodeByClass(SEGMENTATION_CLASS, segmentation_node.GetName() + REGISTERED_SUFFIX)
    try:
        copy.CreateDefaultDisplayNodes()  # before the content, as Slicer's own clone does
        if segmentation_node.GetDisplayNode() is not None:
            copy.GetDisplayNode().CopyContent(segmentation_node.GetDisplayNode())
        copy.CopyContent(segmentation_node, True)  # segments and representations; not name or references
        own_parent = segmentation_node.GetParentTransformNode()
        for parent in (own_parent, transform_node):
            if parent is None:
                continue
            copy.SetAndObserveTransformNodeID(parent.GetID())
            if not copy.HardenTransform():
                raise RuntimeError(
                    f"transform '{parent.GetName()}' could not be hardened on '{copy.GetName()}'"
                )
        copy.SetReferenceImageGeometryParameterFromVolumeNode(fixed_node)
    except Exception:
        _remove(scene, copy)
        raise
    return copy


def carry_segmentations(segmentation_nodes: Sequence, transform_node, fixed_node) -> list:
    """Hardened copies of ``segmentation_nodes`` (``segmentations_of`` the moving volume); all or none.

    Args:
        segmentation_nodes: the moving volume's segmentations.
        transform_node: the registration's transform node.
        fixed_node: the fixed volume node.

    Returns:
        The copies, in order.

    Raises:
        RuntimeError: one could not be carried (the copies made are removed).
    """
    carried: list = []
    try:
        for segmentation_node in segmentation_nodes:
            carried.append(carry_segmentation(segmentation_node, transform_node, fixed_node))
    except Exception:
        for node in carried:
            _remove(node.GetScene(), node)
        raise
    return carried


def describe(originals: Sequence, copies: Sequence) -> list[dict]:
    """For the report: each carried segmentation's name, its copy's name and its number of segments.

    Args:
        originals: the carried segmentations.
        copies: their copies, in the same order.

    Returns:
        One dict per segmentation.
    """
    return [
        {
            "name": original.GetName(),
            "carried": copy.GetName(),
            "segments": copy.GetSegmentation().GetNumberOfSegments() if copy.GetSegmentation() else 0,
        }
        for original, copy in zip(originals, copies)
    ]


def _remove(scene, node) -> None:
    display = node.GetDisplayNode()
    scene.RemoveNode(node)
    if display is not None and display.GetScene() is not None:
        scene.RemoveNode(display)
