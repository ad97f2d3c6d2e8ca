"""Which voxels are real data, which are field-of-view padding, and what is air here.

Scanners fill the region outside the circular reconstruction field of view with a constant that
lies inside the image buffer (-3024, -2048, -2000, -1500, 0, or exactly -1024). Slicer's
background value (the lower median of the 8 corners) cannot tell this padding from air, so the
padding is found from the image itself: a constant value that spikes in the histogram of the
image's faces and forms a region connected to the image border. A DICOM Pixel Padding Value,
when present, names the candidate; it never makes a padded region out of no padded pixel.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..core import morphology
from ..io.arguments import check_image, check_instance
from ..io.images import DicomPadding
from . import region

DEFAULT_AIR_HU = -1024.0
CT_RANGE_HU = (-1024.0, 3071.0)

# A padding value must stand out: at least this share of the face voxels...
MIN_FACE_SHARE = 0.02
# ...and this many times more frequent than its two neighbouring values together (noisy air is not).
MIN_SPIKE_RATIO = 8.0
# A padded region smaller than this share of the volume is noise, not a field-of-view boundary.
MIN_PADDING_FRACTION = 0.002
# Padding within this distance of the air level (or exactly -1024) is air-equivalent: nothing to replace.
AIR_EQUIVALENCE_HU = 40.0
# Real air lies in this window; lungs mostly above it, padding below it.
AIR_WINDOW_HU = (-1150.0, -900.0)
# Body: denser than this, after removing thin structures (the couch) and small islands.
BODY_THRESHOLD_HU = -400.0
# Working voxel size for the body mask: fine enough for Dice and metric masks, cheap on 512² scans.
BODY_WORKING_SPACING_MM = 4.0
# No real CT voxel lies below this: a padding value under it needs no connectivity check.
LOWEST_REAL_HU = -1200.0
# Voxels sampled (on a regular stride) for the value range and the air level: a million values put a
# thousand in each 0.1 % tail. Four million cost 10 % more CPU per analysis and gave the same air
# level and padding on every real and benchmark scan.
SAMPLED_VALUES = 1_000_000
TABLE_OPENING_RADIUS_MM = 6.0


@dataclass
class FieldOfView:
    """The reconstruction field of view seen from the padding: a circle per slice, or not."""

    shape: str
    radius_mm: Optional[float]
    center_mm: Optional[tuple[float, float, float]]
    axis: int
    fit_residual_mm: Optional[float] = None

    def to_dict(self) -> dict:
        """Plain values for a JSON report.

        Returns:
            The dict.
        """
        return {
            "shape": self.shape,
            "radius_mm": None if self.radius_mm is None else round(self.radius_mm, 1),
            "center_mm": None if self.center_mm is None else [round(c, 1) for c in self.center_mm],
            "axis": self.axis,
        }


@dataclass
class BackgroundAnalysis:
    """Per-image answer to: what is real data, what is padding, what is air."""

    corner_median: float
    padding_value: Optional[float]
    padding_fraction: float
    fov: Optional[FieldOfView]
    air_value: float
    kind: str
    summary: str
    valid_mask: sitk.Image = field(repr=False)
    body_mask: sitk.Image = field(repr=False)
    padding_is_air: bool = False
    padding_source: Optional[str] = None

    def to_dict(self) -> dict:
        """Plain values for a JSON report (the masks are left out).

        Returns:
            The dict.
        """
        return {
            "corner_median": _plain_number(self.corner_median),
            "padding_value": None if self.padding_value is None else _plain_number(self.padding_value),
            "padding_fraction": round(self.padding_fraction, 4),
            "padding_source": self.padding_source,
            "padding_is_air": self.padding_is_air,
            "fov": None if self.fov is None else self.fov.to_dict(),
            "air_value": _plain_number(self.air_value),
            "kind": self.kind,
            "summary": self.summary,
        }


def corner_median(image: sitk.Image) -> float:
    """Slicer's background value: the lower median (sorted index 3) of the 8 corner voxels.

    Args:
        image: a 3D image.

    Returns:
        The corner value, as Slicer computes it.
    """
    array = sitk.GetArrayViewFromImage(image)
    corners = [float(array[k, j, i]) for k in (0, -1) for j in (0, -1) for i in (0, -1)]
    return sorted(corners)[3]


def analyze_background(image: sitk.Image, dicom_padding: Optional[DicomPadding] = None) -> BackgroundAnalysis:
    """Find the padding, the valid and body masks and the air level of one CT volume.

    Every full-size step is one numpy pass or one SimpleITK filter, and a full-size buffer is reused
    once its step is done: on a 512×512×300 scan this takes about as long as reading the scan from
    a .nii.gz file, not several times that.

    Args:
        image: a 3D CT volume with one value per voxel (any pixel type, any grid).
        dicom_padding: the DICOM Pixel Padding Value of the series it was read from
            (``LoadedImage.dicom_padding``), or None.

    Returns:
        The ``BackgroundAnalysis``: kind and summary, padding value and share, field of view, air
        level, and the valid and body masks on the image's grid.

    Raises:
        TypeError: ``image`` is not a SimpleITK image (a path, an array, a ``LoadedImage``...).
        ValueError: ``image`` is not 3D, has several components, is complex or empty.
    """
    _check_arguments(locals())  # TypeError/ValueError naming a bad argument, before any work
    array = sitk.GetArrayViewFromImage(image)
    corners = corner_median(image)
    finite = np.isfinite(array) if array.dtype.kind == "f" else None

    constant = _is_constant(array, finite)
    padding_range, source = (None, None) if constant else _padding_candidate(array, dicom_padding)
    padding = None
    if padding_range is not None:
        padding = _padding_region(array, padding_range)
        if padding is None:  # the value is there, but no padded region is: not padding (no "0% of voxels")
            padding_range, source = None, None
    if finite is not None and not finite.all():
        padding = ~finite if padding is None else (padding | ~finite)
    padding_fraction = 0.0 if padding is None else float(np.count_nonzero(padding)) / array.size
    if padding is not None and padding_fraction < MIN_PADDING_FRACTION and (finite is None or finite.all()):
        padding, padding_range, padding_fraction, source = None, None, 0.0, None
    fov = _field_of_view(padding, image) if padding is not None and padding_range is not None else None

    if padding is None:
        valid = np.ones(array.shape, dtype=np.uint8)
    else:  # the padding buffer becomes the valid mask: one full-size array fewer
        valid = np.logical_not(padding, out=padding).view(np.uint8)
        del padding
    valid_mask = _mask_like(valid, image)
    not_ct_reason = _not_ct_reason(_sample_real_values(array, valid))
    body_mask = (
        _body_mask(image, valid, padding_fraction > 0)
        if not_ct_reason is None
        else _mask_like(np.zeros(array.shape, np.uint8), image)
    )
    air_value, has_air = _air_level(array, valid, sitk.GetArrayViewFromImage(body_mask))

    padding_value = None if padding_range is None else float(padding_range[0])
    padding_is_air = padding_value is not None and (
        padding_value == DEFAULT_AIR_HU or (has_air and abs(padding_value - air_value) <= AIR_EQUIVALENCE_HU)
    )

    kind, summary = _classify(
        corners, padding_range, padding_fraction, padding_is_air, fov, air_value, has_air, not_ct_reason
    )
    if kind == "air-background" and padding_range is not None:
        # air clipped to a constant without a field-of-view shape is air, not padding
        # (NaN/Inf voxels stay no data)
        real = np.ones(array.shape, bool) if finite is None else finite
        valid_mask = _mask_like(real.view(np.uint8), image)
        padding_value, padding_fraction, fov, padding_is_air, source = None, 0.0, None, False, None
    return BackgroundAnalysis(
        corner_median=corners,
        padding_value=padding_value,
        padding_fraction=padding_fraction,
        fov=fov,
        air_value=air_value,
        kind=kind,
        summary=summary,
        valid_mask=valid_mask,
        body_mask=body_mask,
        padding_is_air=bool(padding_is_air),
        padding_source=source,
    )


def _check_arguments(arguments: dict) -> None:
    """``analyze_background(image, dicom_padding)``: a 3D scalar image, and a DicomPadding or None."""
    check_image(arguments["image"], "image")
    check_instance(arguments["dicom_padding"], "dicom_padding", DicomPadding, optional=True)


def _is_constant(array: np.ndarray, finite: Optional[np.ndarray]) -> bool:
    """Whether every finite voxel holds one value (or there is none); a sparse sample usually tells."""
    step = max(1, int(round((array.size / 100_000) ** (1 / 3))))
    sample = array[::step, ::step, ::step]
    if sample.dtype.kind == "f":
        sample = sample[np.isfinite(sample)]
    if sample.size and float(sample.min()) != float(sample.max()):
        return False
    real = array if finite is None else array[finite]  # a copy only for float images
    return real.size == 0 or float(real.min()) == float(real.max())


def _padding_candidate(
    array: np.ndarray, dicom_padding: Optional[DicomPadding]
) -> tuple[Optional[tuple[float, float]], Optional[str]]:
    """The value (range) that may be padding: the DICOM tag's, else a spike on the image faces."""
    if dicom_padding is not None:
        low, high = dicom_padding.hu_range()
        if np.count_nonzero((array >= low) & (array <= high)) > 0:
            return (low, high), "dicom-tag"
    faces = _face_values(array)
    faces = faces[np.isfinite(faces)] if faces.dtype.kind == "f" else faces
    if faces.size == 0:
        return None, None
    values, counts = np.unique(faces, return_counts=True)
    top = int(np.argmax(counts))
    value, count = float(values[top]), int(counts[top])
    if count < MIN_FACE_SHARE * faces.size:
        return None, None
    neighbours = _count_near(values, counts, value)
    if count < MIN_SPIKE_RATIO * max(neighbours, 1) and not (neighbours == 0 and count > 0):
        return None, None
    return (value, value), "detected"


def _face_values(array: np.ndarray) -> np.ndarray:
    """Every voxel on the six faces of the volume (a slice of one voxel is a face of its own)."""
    parts = [array[0], array[-1], array[:, 0], array[:, -1], array[:, :, 0], array[:, :, -1]]
    return np.concatenate([part.reshape(-1) for part in parts])


def _count_near(values: np.ndarray, counts: np.ndarray, value: float) -> int:
    """How often the values just next to ``value`` occur (one HU apart for integer images)."""
    index = int(np.searchsorted(values, value))
    total = 0
    for neighbour in (index - 1, index + 1):
        if 0 <= neighbour < len(values) and abs(float(values[neighbour]) - value) <= 1.0:
            total += int(counts[neighbour])
    return total


def _padding_region(array: np.ndarray, padding_range: tuple[float, float]) -> Optional[np.ndarray]:
    """Voxels in the padding range that belong to a region touching the image border.

    Below every real CT value the value alone says padding; inside the CT range (-1024, 0, ...)
    the region must also reach two faces of the volume (``region.border_region``).
    """
    low, high = padding_range
    candidate = (array == low) if low == high else ((array >= low) & (array <= high))
    if not candidate.any():
        return None
    if high < LOWEST_REAL_HU:
        return candidate if _face_values(candidate).any() else None
    return region.border_region(candidate)


def _sample_real_values(array: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """About a million finite real-data values: enough for percentiles, cheap on 512² scans."""
    step = _sample_step(array)
    values = array[::step, ::step, ::step][valid[::step, ::step, ::step].astype(bool)]
    if values.dtype.kind == "f":
        values = values[np.isfinite(values)]
    return values


def _sample_step(array: np.ndarray) -> int:
    """The stride (along each axis) that leaves about ``SAMPLED_VALUES`` voxels of a volume."""
    return max(1, int(round((array.size / SAMPLED_VALUES) ** (1 / 3))))


def _not_ct_reason(values: np.ndarray) -> Optional[str]:
    """HU images have negative values (fat, air) and stay within a plausible range."""
    if values.size == 0:
        return "no real data (every voxel is padding)"
    low, high = np.percentile(values, [0.1, 99.9])
    if float(values.min()) == float(values.max()):
        return f"constant image (every real voxel is {_plain_number(float(values.min()))})"
    if low >= 0:
        return f"no negative values (range {_plain_number(float(low))}..{_plain_number(float(high))}), not HU"
    if high > 6000 or low < -1500:
        return f"values {_plain_number(float(low))}..{_plain_number(float(high))} are outside the HU range"
    return None


def _body_mask(image: sitk.Image, valid: np.ndarray, padded: bool) -> sitk.Image:
    """Tissue above the body threshold, largest piece, holes filled per slice, couch removed.

    Worked out on a coarse grid (BODY_WORKING_SPACING_MM): a body outline needs no finer detail.
    """
    factors = [
        max(1, min(size, int(round(BODY_WORKING_SPACING_MM / max(spacing, 1e-6)))))
        for size, spacing in zip(image.GetSize(), image.GetSpacing())
    ]
    array = sitk.GetArrayViewFromImage(image)
    tissue = np.greater(array, BODY_THRESHOLD_HU)
    if padded:
        np.logical_and(tissue, valid.view(bool), out=tissue)
    shrunk = _shrink_to_blocks(tissue, factors, image)
    del tissue
    largest = _largest_component(shrunk)
    if largest is None:
        return _mask_like(np.zeros(array.shape, np.uint8), image)
    spacing = shrunk.GetSpacing()
    thick_axis = int(np.argmax(spacing)) if max(spacing) > 2 * min(spacing) else 2
    in_plane = [axis for axis in range(3) if axis != thick_axis]
    # close small gaps in thin walls within the slice, then fill lungs, bowel gas and hollow phantoms,
    # so that the opening only strips thin parts: the couch
    closing = [2 if axis in in_plane else 0 for axis in range(3)]
    closed = morphology.close(sitk.GetArrayViewFromImage(largest), closing)
    filled = _fill_holes_per_slice(_mask_like(closed, largest))
    opening = [max(1, int(round(TABLE_OPENING_RADIUS_MM / spacing[axis]))) for axis in range(3)]
    opening[thick_axis] = 0 if shrunk.GetSize()[thick_axis] < 3 else 1
    opened = _mask_like(morphology.open_(sitk.GetArrayViewFromImage(filled), opening), filled)
    body = _largest_component(opened) or filled
    if body.GetSize() == image.GetSize():
        body.CopyInformation(image)
        return body
    return _mask_like(_upsample_nearest(sitk.GetArrayViewFromImage(body), body, image), image)


def _shrink_to_blocks(tissue: np.ndarray, factors: list[int], image: sitk.Image) -> sitk.Image:
    """What ``sitk.BinShrink(tissue, factors) > 0`` gives: a block is tissue when at least half of its
    voxels are (BinShrink averages the 0/1 voxels and rounds half up), the last partial block of an
    axis dropped. Counted in numpy, block rows first, without a full-size SimpleITK copy of the mask.
    """
    fx, fy, fz = factors
    if fx == fy == fz == 1:
        full = sitk.GetImageFromArray(tissue.view(np.uint8))
        full.CopyInformation(image)
        return full
    depth, rows, columns = (n // f for n, f in zip(tissue.shape, (fz, fy, fx)))
    part = tissue[: depth * fz, : rows * fy, : columns * fx].view(np.uint8)
    counts = np.add.reduce(part.reshape(depth, fz, rows * fy, columns * fx), axis=1, dtype=np.uint16)
    counts = np.add.reduce(counts.reshape(depth, rows, fy, columns * fx), axis=2, dtype=np.uint16)
    counts = np.add.reduce(counts.reshape(depth, rows, columns, fx), axis=3, dtype=np.uint16)
    shrunk = sitk.GetImageFromArray((2 * counts.astype(np.int32) >= fx * fy * fz).view(np.uint8))
    # the grid BinShrink would give: ask it, on one block of the same geometry
    one_block = sitk.Image([fx, fy, fz], sitk.sitkUInt8)
    one_block.SetSpacing(image.GetSpacing())
    one_block.SetOrigin(image.GetOrigin())
    one_block.SetDirection(image.GetDirection())
    grid = sitk.BinShrink(one_block, [fx, fy, fz])
    shrunk.SetSpacing(grid.GetSpacing())
    shrunk.SetOrigin(grid.GetOrigin())
    shrunk.SetDirection(grid.GetDirection())
    return shrunk


def _upsample_nearest(small: np.ndarray, small_image: sitk.Image, image: sitk.Image) -> np.ndarray:
    """Undo ``sitk.BinShrink``: each shrunk voxel stands for a block of factor³ input voxels.

    BinShrink drops the last partial block of an axis; its voxels take the last whole block's value.
    Rows are widened along x first (a small array), then written into the full-size array in one
    broadcast whose inner loop runs along whole rows.
    """
    fx, fy, fz = (int(round(small_image.GetSpacing()[a] / image.GetSpacing()[a])) for a in range(3))
    nx, ny, nz = image.GetSize()
    counts = [-(-n // f) for n, f in ((nz, fz), (ny, fy), (nx, fx))]  # blocks covering the image
    extended = small[
        np.minimum(np.arange(counts[0]), small.shape[0] - 1)[:, None, None],
        np.minimum(np.arange(counts[1]), small.shape[1] - 1)[None, :, None],
        np.minimum(np.arange(counts[2]), small.shape[2] - 1)[None, None, :],
    ]
    rows = np.repeat(extended, fx, axis=2)[:, :, :nx]
    full = np.empty((counts[0] * fz, counts[1] * fy, nx), dtype=small.dtype)
    full.reshape(counts[0], fz, counts[1], fy, nx)[...] = rows[:, None, :, None, :]
    return full[:nz, :ny]


def _largest_component(mask: sitk.Image) -> Optional[sitk.Image]:
    components = sitk.ConnectedComponent(mask)
    relabelled = sitk.RelabelComponent(components, sortByObjectSize=True)
    if sitk.GetArrayViewFromImage(relabelled).max() == 0:
        return None
    return sitk.Cast(relabelled == 1, sitk.sitkUInt8)


def _fill_holes_per_slice(mask: sitk.Image) -> sitk.Image:
    """Fill holes in each axial slice, so lungs open at the ends of the scan count as body.

    All slices go through one 2D fill at once: each gets a background frame and they are stacked
    into one tall image; frames touch only frames, so no hole can leak from one slice to another.
    """
    array = sitk.GetArrayViewFromImage(mask)
    slices, rows, columns = array.shape
    framed = np.zeros((slices, rows + 2, columns + 2), dtype=np.uint8)
    framed[:, 1:-1, 1:-1] = array
    mosaic = sitk.GetImageFromArray(framed.reshape(slices * (rows + 2), columns + 2))
    filled = sitk.GetArrayFromImage(sitk.BinaryFillhole(mosaic, fullyConnected=True)).reshape(framed.shape)
    result = sitk.GetImageFromArray(np.ascontiguousarray(filled[:, 1:-1, 1:-1]))
    result.CopyInformation(mask)
    return result


def _air_level(array: np.ndarray, valid: np.ndarray, body: np.ndarray) -> tuple[float, bool]:
    """Median of real voxels outside the body within the air window; -1024 when there is no air."""
    step = _sample_step(array)
    sample = array[::step, ::step, ::step]
    keep = valid[::step, ::step, ::step].astype(bool) & ~body[::step, ::step, ::step].astype(bool)
    values = sample[keep]
    in_window = values[(values >= AIR_WINDOW_HU[0]) & (values <= AIR_WINDOW_HU[1])]
    real = max(1, int(np.count_nonzero(valid[::step, ::step, ::step])))
    if in_window.size < 0.01 * real or in_window.size < 50:
        return DEFAULT_AIR_HU, False
    return float(np.round(np.median(in_window))), True


def _field_of_view(padding: np.ndarray, image: sitk.Image) -> FieldOfView:
    """A circle per slice about the axis along which the padding barely changes, or 'irregular'."""
    axis = _cylinder_axis(padding)
    numpy_axis = 2 - axis
    counts = np.count_nonzero(padding, axis=tuple(a for a in range(3) if a != numpy_axis))
    middle = int(np.argmax(counts)) if counts.max() > 0 else padding.shape[numpy_axis] // 2
    plane = np.take(padding, middle, axis=numpy_axis)
    spacing = np.array(image.GetSpacing())
    in_plane_axes = [a for a in range(3) if a != axis]  # ITK index axes, ascending
    boundary = _inner_boundary(plane)
    if boundary.shape[0] < 12:
        return FieldOfView("irregular", None, None, axis)
    # plane rows run along the higher in-plane ITK axis, columns along the lower
    points_mm = np.stack(
        [boundary[:, 1] * spacing[in_plane_axes[0]], boundary[:, 0] * spacing[in_plane_axes[1]]], axis=1
    )
    center, radius, residual = _fit_circle(points_mm)
    if radius is None or residual > max(2.0, 2.5 * float(spacing[in_plane_axes].max())):
        return FieldOfView("irregular", None, None, axis, residual)
    index = [0.0, 0.0, 0.0]
    index[in_plane_axes[0]] = center[0] / spacing[in_plane_axes[0]]
    index[in_plane_axes[1]] = center[1] / spacing[in_plane_axes[1]]
    index[axis] = float(middle)
    center_mm = tuple(float(c) for c in image.TransformContinuousIndexToPhysicalPoint(index))
    return FieldOfView("circle", float(radius), center_mm, axis, float(residual))


def _cylinder_axis(padding: np.ndarray) -> int:
    """ITK index axis along which the padding is most alike from slice to slice."""
    best_axis, best_change = 2, None
    for axis in range(3):
        numpy_axis = 2 - axis
        if padding.shape[numpy_axis] < 2:
            return axis  # a single slice: the padding lies in it
        first = np.take(padding, 0, axis=numpy_axis)
        last = np.take(padding, padding.shape[numpy_axis] - 1, axis=numpy_axis)
        middle = np.take(padding, padding.shape[numpy_axis] // 2, axis=numpy_axis)
        size = max(1, int(middle.sum()))
        change = (np.count_nonzero(first != middle) + np.count_nonzero(last != middle)) / size
        if middle.sum() == 0:
            change = np.inf
        if best_change is None or change < best_change:
            best_axis, best_change = axis, change
    return best_axis


def _inner_boundary(plane: np.ndarray) -> np.ndarray:
    """Padding pixels next to real data, away from the image edge: points on the FOV boundary."""
    valid = ~plane
    neighbour_valid = np.zeros_like(plane)
    neighbour_valid[1:, :] |= valid[:-1, :]
    neighbour_valid[:-1, :] |= valid[1:, :]
    neighbour_valid[:, 1:] |= valid[:, :-1]
    neighbour_valid[:, :-1] |= valid[:, 1:]
    edge = plane & neighbour_valid
    edge[0, :] = edge[-1, :] = False
    edge[:, 0] = edge[:, -1] = False
    points = np.argwhere(edge).astype(float)
    if points.shape[0] > 4000:
        points = points[:: points.shape[0] // 4000]
    return points


def _fit_circle(points: np.ndarray) -> tuple[np.ndarray, Optional[float], float]:
    """Robust least-squares (Kasa) circle through boundary points: centre, radius, RMS residual in mm.

    Stray padding-valued voxels just inside the field of view add boundary points off the circle,
    so points far from a first fit are dropped and the circle refitted; too few inliers is no circle.
    """
    keep = np.ones(points.shape[0], dtype=bool)
    center, radius, distances = np.zeros(2), None, np.zeros(points.shape[0])
    for _ in range(3):
        x, y = points[keep, 0], points[keep, 1]
        if x.size < 12:
            return center, None, float("inf")
        design = np.stack([x, y, np.ones_like(x)], axis=1)
        solution, *_ = np.linalg.lstsq(design, x * x + y * y, rcond=None)
        center = np.array([solution[0] / 2.0, solution[1] / 2.0])
        squared = solution[2] + center @ center
        if squared <= 0:
            return center, None, float("inf")
        radius = float(np.sqrt(squared))
        distances = np.abs(np.hypot(points[:, 0] - center[0], points[:, 1] - center[1]) - radius)
        keep = distances <= max(3.0, 3.0 * float(np.median(distances)))
    if keep.mean() < 0.6:
        return center, None, float("inf")
    return center, radius, float(np.sqrt(np.mean(distances[keep] ** 2)))


def _classify(
    corners: float,
    padding_range: Optional[tuple[float, float]],
    padding_fraction: float,
    padding_is_air: bool,
    fov: Optional[FieldOfView],
    air_value: float,
    has_air: bool,
    not_ct_reason: Optional[str],
) -> tuple[str, str]:
    """A kind for programs and a one-line summary a person can read without looking at the image."""
    if not_ct_reason is not None:
        return "not-ct", f"not CT-like ({not_ct_reason})"
    if padding_range is not None:
        low, high = padding_range
        value_text = _plain_number(low) if low == high else f"{_plain_number(low)}..{_plain_number(high)}"
        fov_text = "irregular padded region"
        if fov is not None and fov.shape == "circle":
            fov_text = f"circular FOV r={fov.radius_mm:.0f} mm"
        percent = padding_fraction * 100
        share = f"{percent:.1f}% of voxels" if percent < 1 else f"{percent:.0f}% of voxels"  # never "0%"
        if padding_is_air:
            if fov is None or fov.shape != "circle":
                return "air-background", f"air background ({_plain_number(air_value)})"
            return (
                "fov-padding-equals-air",
                f"fov-padding equals air ({value_text}, {share}, {fov_text}; nothing to replace)",
            )
        corner_note = ""
        if corners != low and not (low <= corners <= high):
            corner_note = f"; Slicer's corner background says {_plain_number(corners)}"
        return "fov-padding", f"fov-padding ({value_text}, {share}, {fov_text}){corner_note}"
    if has_air:
        return "air-background", f"air background ({_plain_number(air_value)})"
    return "no-background", "no background (cropped: corners are tissue)"


def _mask_like(mask: np.ndarray, image: sitk.Image) -> sitk.Image:
    result = sitk.GetImageFromArray(mask.astype(np.uint8, copy=False))
    result.CopyInformation(image)
    return result


def _plain_number(value: float):
    """Integers print as integers (-3024, not -3024.0); other values keep one decimal."""
    value = float(value)
    return int(value) if value.is_integer() else round(value, 1)
