"""Label maps carried onto the fixed grid: the same values, the same pixel type, thin structures kept.

Nearest-neighbour resampling copies the label of whichever moving voxel lies closest: boundaries
become staircases and shift by up to half a voxel, which costs thin structures (spinal cord,
esophagus, vessels) a large share of their Dice. Here each structure's 0/1 mask is resampled with
linear interpolation, giving at every output point the structure's share among the moving voxels
around it. Cutting every share at one half (the plain arg-max against background) erodes structures
about two voxels thin: between their samples no share reaches one half. So each structure is cut at
the level that keeps its volume (the shares summed over the fixed grid are its volume in fixed
voxels, exactly so for linear interpolation): one half for a large smooth organ, lower for a thin
tube. Where two structures qualify, the larger share wins. A Gaussian on the masks or a B-spline
was tried as well; both do worse on large organs, and the Gaussian erases thin tubes.

Each structure is resampled only over the part of the fixed grid its moving bounding box maps to,
so the cost follows the structures' size, not the number of structures times the scan's size.
Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..core.affine import affine_parts
from ..errors import InputError, LabelError
from ..io.arguments import check_image, check_image_type, check_transform_argument
from ..io.file_integrity import special_file_reason
from .label_regions import MappedBlocks

BACKGROUND = 0
# A carried label map is written as <stem><LABELS_SUFFIX> (register and apply).
LABELS_SUFFIX = "_labels.nii.gz"
# More distinct values than this is a scan, not a label map (TotalSegmentator has 117 classes,
# FreeSurfer's aseg about 45; a CT has thousands of values).
MAX_LABEL_COUNT = 1000
# Air in HU: a small CT can have fewer than MAX_LABEL_COUNT values, but no label map reaches -1000.
LOWEST_HU_LIKE_VALUE = -1000
# At least this share of the labelled voxels must lie inside their scan: less is another space.
MIN_SHARE_INSIDE_SCAN = 0.5
METHODS = ("linear", "nearest")

_LABEL_PIXEL_TYPES = frozenset(
    (
        sitk.sitkUInt8,
        sitk.sitkInt8,
        sitk.sitkUInt16,
        sitk.sitkInt16,
        sitk.sitkUInt32,
        sitk.sitkInt32,
        sitk.sitkUInt64,
        sitk.sitkInt64,
    )
)
# Voxels looked at by the overlap check (every n-th along each axis): cheap on 512² label maps.
_OVERLAP_SAMPLE = 2_000_000
_OVERLAP_POINTS = 20_000  # labelled voxels among those whose place is checked


@dataclass
class _Structure:
    value: int
    lower: tuple[int, int, int]  # first voxel of the bounding box, numpy (z, y, x) order
    upper: tuple[int, int, int]  # one past the last voxel


def check_label_image(labels: sitk.Image) -> list[int]:
    """The label values present (background 0 left out), or ``LabelError`` if this is no label map.

    A label map is a 3D image of one integer component with few distinct values: float images are
    refused (their values need not be whole), as are images with more than ``MAX_LABEL_COUNT`` values
    or with values as low as air in HU.

    Args:
        labels: the image to check.

    Returns:
        The label values present.

    Raises:
        TypeError: ``labels`` is no SimpleITK image.
        LabelError: it is no label map.
    """
    check_image_type(labels, "labels")
    return [structure.value for structure in _checked_structures(labels)]


def _check_label_type(labels: sitk.Image) -> None:
    """What the header already tells: one integer component, three dimensions."""
    components = labels.GetNumberOfComponentsPerPixel()
    if components != 1:
        raise LabelError(f"has {components} components per voxel; a label map has one")
    if labels.GetDimension() != 3:
        raise LabelError(f"is {labels.GetDimension()}D; a 3D label map is needed")
    if labels.GetPixelID() not in _LABEL_PIXEL_TYPES:
        raise LabelError(
            f"has {labels.GetPixelIDTypeAsString()} voxels; a label map needs an integer pixel type "
            "(cast it, e.g. to uint8 or uint16, if its values are whole numbers)"
        )


def _checked_structures(labels: sitk.Image) -> list[_Structure]:
    _check_label_type(labels)
    array = sitk.GetArrayViewFromImage(labels)
    if array.dtype.itemsize > 1:  # 8 bits cannot hold too many values
        sampled = np.unique(array.ravel()[:: max(1, array.size // 1_000_000)])
        if sampled.size > MAX_LABEL_COUNT:  # a CT fails here, before any full-size work
            raise LabelError(f"holds more than {MAX_LABEL_COUNT} distinct values: a scan, not a label map")
    structures = _structures(labels)
    if len(structures) + 1 > MAX_LABEL_COUNT:
        raise LabelError(
            f"holds {len(structures) + 1} distinct values (at most {MAX_LABEL_COUNT} in a label map)"
        )
    lowest = min((structure.value for structure in structures), default=BACKGROUND)
    if lowest <= LOWEST_HU_LIKE_VALUE:
        raise LabelError(f"holds values down to {lowest}, as a CT in HU does: a scan, not a label map")
    return structures


def check_labels_overlap(labels: sitk.Image, scan: sitk.Image) -> float:
    """Share of labelled voxels that lie inside the scan's physical extent; ``LabelError`` below one half.

    The label map's grid may differ from its scan's (another spacing, a crop, another orientation);
    only the physical space must be the same. Labels saved without their geometry (origin 0, spacing 1)
    or taken from another scan end up elsewhere and are refused here. An empty label map returns 1.0.

    Args:
        labels: the label map.
        scan: the scan it should belong to.

    Returns:
        The share, between 0 and 1.

    Raises:
        TypeError: either is no SimpleITK image.
        LabelError: less than half of the labelled voxels lie on the scan.
    """
    check_image_type(labels, "labels")
    check_image(scan, "scan")
    array = sitk.GetArrayViewFromImage(labels)
    step = max(1, int(round((array.size / _OVERLAP_SAMPLE) ** (1 / 3))))
    labelled = np.argwhere(array[::step, ::step, ::step] != BACKGROUND) * step
    if labelled.size == 0 and step > 1:  # only small structures, between the sampled voxels
        labelled = np.argwhere(array != BACKGROUND)
    if labelled.size == 0:
        return 1.0
    labelled = labelled[:: max(1, len(labelled) // _OVERLAP_POINTS)]
    scan_indices = _physical_to_index(scan, _index_to_physical(labels, labelled[:, ::-1].astype(float)))
    tolerance = 0.5 + 1e-3  # voxel edges, not voxel centres, bound an image
    inside = np.all(
        (scan_indices >= -tolerance) & (scan_indices <= np.array(scan.GetSize()) - 1 + tolerance), axis=1
    )
    share = float(np.count_nonzero(inside)) / len(inside)
    if share < MIN_SHARE_INSIDE_SCAN:
        where = "none" if share == 0 else f"only {share:.0%}"
        raise LabelError(
            f"{where} of the labelled voxels lie inside the scan (labels span {_extent_text(labels)}, "
            f"the scan spans {_extent_text(scan)}): the label map is not in the scan's physical space"
        )
    return share


def resample_labels(
    labels: sitk.Image,
    reference: sitk.Image,
    transform: sitk.Transform,
    method: str = "linear",
) -> sitk.Image:
    """The label map on ``reference``'s grid, in its own pixel type, holding only its own values.

    ``transform`` maps reference (fixed) physical points to label-map (moving) points: the ITK
    convention ``register`` writes. ``method`` "linear" is the volume-keeping share cut described in the
    module docstring; "nearest" is plain nearest neighbour (for comparison). Points outside the
    label map get background (0).

    Args:
        labels: the label map.
        reference: the image whose grid the result is on (the fixed scan).
        transform: reference physical point → label-map point.
        method: "linear" or "nearest".

    Returns:
        The label map on ``reference``'s grid.

    Raises:
        TypeError: an image or the transform is of the wrong kind (named in the message).
        ValueError: ``method`` is unknown, or the transform is unusable (2D, NaN, singular).
    """
    _check_carry_arguments(labels, reference, "reference", transform)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    return _resample_structures(labels, _checked_structures(labels), reference, transform, method)


def _resample_structures(
    labels: sitk.Image,
    structures: list[_Structure],
    reference: sitk.Image,
    transform: sitk.Transform,
    method: str,
) -> sitk.Image:
    if method == "nearest":
        return sitk.Resample(
            labels, reference, transform, sitk.sitkNearestNeighbor, BACKGROUND, labels.GetPixelID()
        )
    shape = reference.GetSize()[::-1]
    array = sitk.GetArrayViewFromImage(labels)
    output = np.zeros(shape, dtype=array.dtype)
    if transform.IsLinear() or not structures:
        regions = [_fixed_region(labels, reference, transform, structure) for structure in structures]
    else:  # one evaluation of the transform over the grid, then each structure over its own region
        blocks = MappedBlocks(labels, reference, transform)
        regions = [blocks.region(*_moving_box(structure)) for structure in structures]
    placed = [(structure, region) for structure, region in zip(structures, regions) if region is not None]
    if placed:
        _arg_max_into(output, array, labels, reference, transform, placed)
    result = sitk.GetImageFromArray(output)
    result.CopyInformation(reference)
    return result


def carry_labels(
    labels: sitk.Image,
    scan: sitk.Image,
    fixed: sitk.Image,
    transform: sitk.Transform,
    method: str = "linear",
) -> sitk.Image:
    """The moving scan's label map on the fixed grid, after checking it is one and belongs to ``scan``.

    The call a registration makes once it has ``transform`` (fixed → moving, as ``register_pair``
    returns it): ``labels`` may be on another grid than ``scan``, but must lie in its physical space.
    Raises ``LabelError`` (no file name: callers add it); ``TypeError``/``ValueError`` naming a wrong
    argument.

    Args:
        labels: the moving scan's label map (integer values, 0 background).
        scan: the moving scan it belongs to.
        fixed: the scan whose grid the result is on.
        transform: fixed physical point → moving point.
        method: "linear" (volume-keeping share cut) or "nearest".

    Returns:
        The label map on the fixed grid, in its own pixel type, holding only its own values.

    Raises:
        TypeError: an image or the transform is of the wrong kind (named in the message).
        ValueError: ``method`` is unknown, or an image or the transform is unusable.
        LabelError: it is no label map, or it does not lie on the scan.
    """
    _check_carry_arguments(labels, fixed, "fixed", transform)
    check_image(scan, "scan")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    structures = _checked_structures(labels)
    check_labels_overlap(labels, scan)
    return _resample_structures(labels, structures, fixed, transform, method)


def read_label_map(path: str) -> sitk.Image:
    """A label map from a file (NIfTI, NRRD, MetaImage...); ``InputError`` naming the file otherwise.

    Only what the header tells is checked here (one integer component, 3D); the values are checked
    when the labels are carried, which reads them anyway (``LabelError``: add the file name).

    Args:
        path: the label map file.

    Returns:
        The label map as read.

    Raises:
        InputError: the file cannot be read, or its header says it is no label map.
    """
    path = str(path)
    if os.path.exists(path) and special_file_reason(path) is not None:
        raise InputError(path, special_file_reason(path))
    if not os.path.isfile(path):
        reason = "is a folder; a label map is one image file" if os.path.isdir(path) else "no such file"
        raise InputError(path, reason)
    if os.path.getsize(path) == 0:
        raise InputError(path, "file is empty")
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        raise InputError(path, f"not a readable image ({(lines or ['unknown error'])[-1][:200]})") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    try:
        _check_label_type(image)
    except LabelError as error:
        raise InputError(path, error.reason) from None
    return image


def label_values(labels: sitk.Image) -> list[int]:
    """The label values present in an integer image, background (0) left out; one threaded pass.

    Args:
        labels: an integer image.

    Returns:
        The values present.
    """
    return [structure.value for structure in _structures(labels)]


def label_dice(first: sitk.Image, second: sitk.Image, values: Optional[list[int]] = None) -> dict[int, float]:
    """Dice of each label value between two label maps on the same grid (default: values in both).

    Args:
        first: a label map.
        second: another on the same grid.
        values: the values to compare; None: those in both.

    Returns:
        Dice per value.

    Raises:
        TypeError: either is no SimpleITK image.
        ValueError: the two maps differ in size.
    """
    check_image_type(first, "first")
    check_image_type(second, "second")
    a, b = sitk.GetArrayViewFromImage(first), sitk.GetArrayViewFromImage(second)
    if a.shape != b.shape:
        raise ValueError(f"label maps have different sizes {first.GetSize()} and {second.GetSize()}")
    if values is None:
        values = sorted(set(label_values(first)) & set(label_values(second)))
    dice = {}
    for value in values:
        in_a, in_b = a == value, b == value
        total = int(np.count_nonzero(in_a)) + int(np.count_nonzero(in_b))
        dice[int(value)] = 2.0 * int(np.count_nonzero(in_a & in_b)) / total if total else float("nan")
    return dice


def _check_carry_arguments(labels, reference, reference_name: str, transform) -> None:
    """The API's argument checks, before any work: images where images go, a usable 3D transform."""
    check_image_type(labels, "labels")
    check_image(reference, reference_name)
    check_transform_argument(transform, "transform")


def _structures(labels: sitk.Image) -> list[_Structure]:
    """Every label value with its bounding box, from one multi-threaded pass over the label map."""
    shape = sitk.LabelShapeStatisticsImageFilter()
    shape.SetBackgroundValue(BACKGROUND)
    shape.ComputePerimeterOff()
    shape.ComputeFeretDiameterOff()
    shape.ComputeOrientedBoundingBoxOff()
    shape.Execute(labels)
    structures = []
    for value in shape.GetLabels():
        box = shape.GetBoundingBox(value)  # x, y, z start then x, y, z size
        lower = (box[2], box[1], box[0])
        upper = (box[2] + box[5], box[1] + box[4], box[0] + box[3])
        structures.append(_Structure(int(value), lower, upper))
    return structures


def _fixed_region(
    labels: sitk.Image, reference: sitk.Image, transform: sitk.Transform, structure: _Structure
) -> Optional[tuple[slice, slice, slice]]:
    """The part of the fixed grid (numpy slices) where the structure's interpolated share can be above 0.

    Linear interpolation reaches one voxel beyond the structure's box; that box's corners are mapped
    back through the inverse transform (non-linear transforms: ``label_regions``). A singular
    transform gets the whole grid.
    ``None`` when the structure lands outside the fixed grid.
    """
    full = tuple(slice(0, size) for size in reference.GetSize()[::-1])
    if not transform.IsLinear():
        return full
    matrix, translation = affine_parts(transform, (0.0, 0.0, 0.0))
    if abs(np.linalg.det(matrix)) < 1e-12:
        return full
    lower, upper = _moving_box(structure)
    corners = np.array(
        [[(lower, upper)[bit][axis] for axis, bit in enumerate(bits)] for bits in np.ndindex(2, 2, 2)]
    )
    moving_points = _index_to_physical(labels, corners)
    fixed_points = np.linalg.solve(matrix, (moving_points - translation).T).T
    fixed_indices = _physical_to_index(reference, fixed_points)
    size = np.array(reference.GetSize())
    start = np.maximum(np.floor(fixed_indices.min(axis=0)).astype(int), 0)
    stop = np.minimum(np.ceil(fixed_indices.max(axis=0)).astype(int) + 1, size)
    if np.any(stop <= start):
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(start[::-1], stop[::-1]))


def _moving_box(structure: _Structure) -> tuple[np.ndarray, np.ndarray]:
    """The moving (x, y, z) index box where linear interpolation gives the structure a share above 0:
    its bounding box widened by one voxel below (the last voxel + 1 is already its upper end)."""
    lower = np.array(structure.lower[::-1], dtype=float) - 1.0
    upper = np.array(structure.upper[::-1], dtype=float)
    return lower, upper


def _arg_max_into(
    output: np.ndarray,
    array: np.ndarray,
    labels: sitk.Image,
    reference: sitk.Image,
    transform: sitk.Transform,
    placed: list[tuple[_Structure, tuple[slice, slice, slice]]],
) -> None:
    """Fill ``output`` structure by structure (over their union box): each where its share reaches
    its volume-keeping level, the larger share where two do."""
    union = tuple(
        slice(min(region[axis].start for _, region in placed), max(region[axis].stop for _, region in placed))
        for axis in range(3)
    )
    union_shape = tuple(part.stop - part.start for part in union)
    best_share = np.zeros(union_shape, dtype=np.float32)
    best_value = np.zeros(union_shape, dtype=array.dtype)
    for structure, region in placed:
        share_image = _structure_share(array, labels, reference, transform, structure, region)
        share = sitk.GetArrayViewFromImage(share_image)  # valid while share_image lives
        level = _volume_keeping_level(share)
        if level is None:
            continue
        local = tuple(
            slice(part.start - whole.start, part.stop - whole.start) for part, whole in zip(region, union)
        )
        wins = (share >= level) & (share > best_share[local])
        np.copyto(best_share[local], share, where=wins)
        np.copyto(best_value[local], structure.value, where=wins, casting="unsafe")
    output[union] = best_value


def _volume_keeping_level(share: np.ndarray) -> Optional[float]:
    """The share level above which as many fixed voxels lie as the shares sum to (the structure's
    volume in fixed voxels); ``None`` for a structure smaller than half a fixed voxel."""
    positive = share[share > 0]
    count = int(round(float(positive.sum(dtype=np.float64))))
    if count == 0:
        return None
    return float(np.partition(positive, positive.size - count)[positive.size - count])


def _structure_share(
    array: np.ndarray,
    labels: sitk.Image,
    reference: sitk.Image,
    transform: sitk.Transform,
    structure: _Structure,
    region: tuple[slice, slice, slice],
) -> sitk.Image:
    """Linear interpolation of one structure's 0/1 mask (cropped to its box plus one voxel) on ``region``."""
    crop = tuple(
        slice(max(low - 1, 0), min(high + 1, size))
        for low, high, size in zip(structure.lower, structure.upper, array.shape)
    )
    mask = sitk.GetImageFromArray((array[crop] == structure.value).view(np.uint8))
    mask.SetOrigin(labels.TransformIndexToPhysicalPoint([part.start for part in crop[::-1]]))
    mask.SetSpacing(labels.GetSpacing())
    mask.SetDirection(labels.GetDirection())
    resampler = sitk.ResampleImageFilter()  # the region's grid, without allocating a reference image
    resampler.SetSize([part.stop - part.start for part in region[::-1]])
    resampler.SetOutputOrigin(reference.TransformIndexToPhysicalPoint([part.start for part in region[::-1]]))
    resampler.SetOutputSpacing(reference.GetSpacing())
    resampler.SetOutputDirection(reference.GetDirection())
    resampler.SetTransform(transform)
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetDefaultPixelValue(0.0)
    resampler.SetOutputPixelType(sitk.sitkFloat32)
    return resampler.Execute(mask)


def _index_to_physical(image: sitk.Image, indices: np.ndarray) -> np.ndarray:
    """Continuous (x, y, z) indices, one per row, to physical points."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return (indices * np.array(image.GetSpacing())) @ direction.T + np.array(image.GetOrigin())


def _physical_to_index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Physical points, one per row, to continuous (x, y, z) indices."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    to_index = np.linalg.inv(direction * np.array(image.GetSpacing()))
    return (points - np.array(image.GetOrigin())) @ to_index.T


def _extent_text(image: sitk.Image) -> str:
    """Physical bounding box of an image's voxels, e.g. "x -250..250, y -250..250, z -681..-279 mm"."""
    size = np.array(image.GetSize(), dtype=float)
    corners = np.array(
        [[(-0.5, size[axis] - 0.5)[bit] for axis, bit in enumerate(bits)] for bits in np.ndindex(2, 2, 2)]
    )
    points = _index_to_physical(image, corners)
    low, high = points.min(axis=0), points.max(axis=0)
    return ", ".join(f"{name} {a:.0f}..{b:.0f}" for name, a, b in zip("xyz", low, high)) + " mm"
