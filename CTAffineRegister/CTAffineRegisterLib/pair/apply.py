"""Put any image on the fixed grid with a transform that already exists (the ``apply`` command).

A registration is often run once and its transform reused: for another series of the same scan, a
dose map, a label map drawn later. A CT gets what ``register`` gives its output: padding found and
replaced by air before interpolation, so no gray ring. A label map gets the label interpolation of
``labels``. Other images (not CT-like: MR, PET, dose) are resampled plainly, with their corner value
(Slicer's background) as fill. Files follow ``register``'s rules: nothing replaced without
``overwrite``, never an input, each written atomically; one bad input fails alone.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from ..core.affine import affine_parts
from ..errors import InputError, LabelError, OutputExistsError
from ..io.images import DicomPadding, ensure_writable, output_stem, read_image, write_image
from ..io.transform_files import read_any_transform
from ..padding.analysis import BackgroundAnalysis, analyze_background
from ..resample.labels import LABELS_SUFFIX, check_label_image, label_values, read_label_map, resample_labels
from ..resample.scans import fill_problem, resample_to_fixed

SCAN_SUFFIX = "_applied.nii.gz"
# Fixed-grid points (per axis) sampled to say how much of the output holds data.
_COVERAGE_POINTS_PER_AXIS = 24


@dataclass
class AppliedImage:
    """One image on the fixed grid and what was done to it, in words."""

    image: sitk.Image
    kind: str  # "ct", "image" (not CT-like) or "labels"
    summary: str
    coverage: float  # share of the fixed grid that maps onto the input's data


def apply_to_scan(
    image: sitk.Image,
    fixed: sitk.Image,
    transform: sitk.Transform,
    *,
    dicom_padding: Optional[DicomPadding] = None,
    analysis: Optional[BackgroundAnalysis] = None,
    fill: Optional[float] = None,
    interpolator: str = "linear",
) -> AppliedImage:
    """A scan on the fixed grid: a CT with its padding replaced by air first, any other image plainly.

    ``transform`` maps fixed points to the scan's points (ITK convention, what ``register`` writes).
    ``fill`` is the value where the scan has no data (default: its air level, or for an image that is
    not CT-like its corner value). Raises ``LabelError`` for what looks like a label map and
    ``ValueError`` when no fixed point maps onto the scan's data.

    Args:
        image: the scan, in the moving space.
        fixed: the scan whose grid the result is on.
        transform: fixed physical point → moving point.
        dicom_padding: the scan's DICOM Pixel Padding Value, or None.
        analysis: the scan's ``analyze_background`` result, if already made.
        fill: the value where the scan has no data; None: its air level (or corner value).
        interpolator: "linear", "bspline" or "nearest".

    Returns:
        An ``AppliedImage``: the image on the fixed grid and a one-line summary.

    Raises:
        LabelError: the image looks like a label map (use ``apply_to_labels``).
        ValueError: no fixed point maps onto the scan's data.
    """
    problem = fill_problem(fill, image.GetPixelID())
    if problem is not None:  # before any work, instead of a silently clamped or rounded fill
        raise ValueError(f"fill {problem}")
    analysis = analysis or analyze_background(image, dicom_padding)
    if analysis.kind == "not-ct":
        _refuse_label_like(image)
    coverage = _coverage(fixed, transform, image, None if analysis.kind == "not-ct" else analysis.valid_mask)
    if coverage == 0.0:
        raise ValueError(
            "no point of the fixed grid maps onto its data with this transform "
            "(a transform of another pair, or its inverse?)"
        )
    if analysis.kind == "not-ct":
        fill_value = float(analysis.corner_median if fill is None else fill)
        plain = np.ones(image.GetSize()[::-1], dtype=np.uint8)
        everything = sitk.GetImageFromArray(plain)
        everything.CopyInformation(image)
        unpadded = dataclasses.replace(analysis, valid_mask=everything, air_value=fill_value)
        resampled = resample_to_fixed(image, fixed, transform, unpadded, fill_value, interpolator)
        summary = f"{analysis.summary}: resampled without padding handling, fill {_number(fill_value)}"
        return AppliedImage(resampled, "image", summary, coverage)
    resampled = resample_to_fixed(image, fixed, transform, analysis, fill, interpolator)
    fill_value = analysis.air_value if fill is None else fill
    replaced = analysis.kind == "fov-padding"
    summary = (
        f"{analysis.summary}{'; padding replaced by air' if replaced else ''}; fill {_number(fill_value)}"
    )
    return AppliedImage(resampled, "ct", summary, coverage)


def apply_to_labels(labels: sitk.Image, fixed: sitk.Image, transform: sitk.Transform) -> AppliedImage:
    """A label map on the fixed grid (label interpolation, values and pixel type kept).

    Raises ``LabelError`` when it is no label map, or when none of its structures reaches the fixed
    grid (wrong transform, or its inverse); structures that do not reach it are named in the summary.

    Args:
        labels: the label map, in the moving space.
        fixed: the scan whose grid the result is on.
        transform: fixed physical point → moving point.

    Returns:
        An ``AppliedImage``: the label map on the fixed grid and a summary naming lost structures.

    Raises:
        LabelError: it is no label map, or none of its structures reaches the fixed grid.
    """
    values = check_label_image(labels)
    resampled = resample_labels(labels, fixed, transform)
    present = set(label_values(resampled))
    missing = [value for value in values if value not in present]
    if values and len(missing) == len(values):
        raise LabelError(
            "none of its structures lands on the fixed grid with this transform "
            "(a transform of another pair, or its inverse?)"
        )
    summary = f"label map, {len(values)} structure{'s' if len(values) != 1 else ''} ({_values_text(values)})"
    if missing:
        summary += f"; not on the fixed grid (outside its field of view): {_values_text(missing)}"
    return AppliedImage(resampled, "labels", summary, _coverage(fixed, transform, labels, None))


def output_path(out_dir: str, stem: str, labels: bool) -> str:
    """``<stem>_labels.nii.gz`` for a label map, ``<stem>_applied.nii.gz`` for anything else.

    Args:
        out_dir: the output folder.
        stem: the input's output stem.
        labels: the input is a label map.

    Returns:
        The output's path.
    """
    return os.path.join(out_dir, stem + (LABELS_SUFFIX if labels else SCAN_SUFFIX))


def apply_files(
    fixed_path: str,
    transform_path: str,
    input_paths: list[str],
    out_dir: str,
    *,
    labels: bool = False,
    overwrite: bool = False,
    fill: Optional[float] = None,
    interpolator: str = "linear",
    on_result: Optional[Callable[[dict], None]] = None,
) -> list[dict]:
    """Apply one transform file to every input; one dict per input with ``status`` "ok" or "failed".

    Raises ``InputError`` when the fixed scan or the transform cannot be read (nothing can start).
    ``on_result`` receives each input's dict as soon as that input is done (``describe_result`` words it).

    Args:
        fixed_path: the scan whose grid the outputs are on.
        transform_path: fixed→moving transform file (ITK, Slicer, ANTs, elastix parameters).
        input_paths: scans (or label maps, with ``labels``) in the moving space.
        out_dir: where the outputs go (``<stem>_applied.nii.gz`` / ``<stem>_labels.nii.gz``).
        labels: the inputs are label maps (carried with label interpolation).
        overwrite: replace existing outputs instead of failing the input.
        fill: the value where an input has no data; None: its air level.
        interpolator: "linear", "bspline" or "nearest" (scans only).
        on_result: called with each input's dict as soon as it is done.

    Returns:
        One dict per input: ``input``, ``status`` ("ok" or "failed"), ``output`` or ``error``,
        and what was done.

    Raises:
        InputError: the fixed scan or the transform cannot be read (nothing can start).
    """
    fixed = read_image(fixed_path)
    transform = read_any_transform(transform_path)
    protected = [fixed_path, transform_path, *input_paths]
    results = []
    for path, stem in zip(input_paths, _unique_stems(input_paths)):
        target = output_path(out_dir, stem, labels)
        result = _apply_one(
            path, target, fixed.image, transform, protected, labels, overwrite, fill, interpolator
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _apply_one(path, target, fixed, transform, protected, labels, overwrite, fill, interpolator) -> dict:
    try:
        if any(_same_file(target, other) for other in protected):
            raise InputError(target, "the output would replace an input; choose another output folder")
        ensure_writable(target, overwrite)
        if labels:
            applied = apply_to_labels(read_label_map(path), fixed, transform)
        else:
            loaded = read_image(path)
            applied = apply_to_scan(
                loaded.image,
                fixed,
                transform,
                dicom_padding=loaded.dicom_padding,
                fill=fill,
                interpolator=interpolator,
            )
            if loaded.note:  # how it was read (NaN voxels, slices bridged, ...) belongs to its line
                applied = dataclasses.replace(applied, summary=f"{applied.summary}; note: {loaded.note}")
        write_image(applied.image, target, overwrite)
    except (InputError, OutputExistsError) as error:  # these name their file already
        return _failed(path, str(error))
    except ValueError as error:  # LabelError included: its message is the reason
        return _failed(path, f"{path}: {error}")
    except RuntimeError as error:  # SimpleITK failures not anticipated above: still one clear line
        return _failed(path, f"{path}: processing failed ({str(error).strip().splitlines()[-1][:200]})")
    return {
        "input": path,
        "output": target,
        "status": "ok",
        "error": None,
        "kind": applied.kind,
        "summary": applied.summary,
        "coverage": round(applied.coverage, 3),
    }


def _failed(path: str, message: str) -> dict:
    return {"input": path, "output": None, "status": "failed", "error": message}


def describe_result(result: dict) -> str:
    """One line per input: where its output went and what was done, or the error.

    Args:
        result: one of ``apply_files``' dicts.

    Returns:
        The line.
    """
    if result["status"] != "ok":
        return f"error: {result['error']}"
    share = f"{result['coverage']:.0%} of the fixed grid has data"
    return f"{result['output']}: {result['summary']}; {share}"


def _refuse_label_like(image: sitk.Image) -> None:
    """Linear interpolation would blend label values into ones that mean something else."""
    try:
        values = check_label_image(image)
    except LabelError:
        return
    raise LabelError(
        f"looks like a label map ({image.GetPixelIDTypeAsString()} voxels, {len(values)} structures); "
        "carry it as labels (--labels), or store it as float to resample it as an image"
    )


def _coverage(
    fixed: sitk.Image, transform: sitk.Transform, image: sitk.Image, valid: Optional[sitk.Image]
) -> float:
    """Share of a lattice of fixed-grid points mapping inside ``image`` (and onto real data of ``valid``)."""
    size = np.array(fixed.GetSize(), dtype=float)
    steps = [
        (np.arange(_COVERAGE_POINTS_PER_AXIS) + 0.5) * extent / _COVERAGE_POINTS_PER_AXIS - 0.5
        for extent in size
    ]
    lattice = np.stack(np.meshgrid(*steps, indexing="ij"), axis=-1).reshape(-1, 3)
    direction = np.array(fixed.GetDirection()).reshape(3, 3)
    points = (lattice * np.array(fixed.GetSpacing())) @ direction.T + np.array(fixed.GetOrigin())
    if transform.IsLinear():
        matrix, translation = affine_parts(transform, (0.0, 0.0, 0.0))
        mapped = points @ matrix.T + translation
    else:
        mapped = np.array([transform.TransformPoint(point.tolist()) for point in points])
    moving_direction = np.array(image.GetDirection()).reshape(3, 3)
    offsets = (mapped - np.array(image.GetOrigin())).T
    indices = np.linalg.solve(moving_direction, offsets).T / np.array(image.GetSpacing())
    nearest = np.rint(indices).astype(np.int64)
    inside = np.all((nearest >= 0) & (nearest < np.array(image.GetSize())), axis=1)
    if valid is not None and inside.any():
        mask = sitk.GetArrayViewFromImage(valid)
        hits = nearest[inside]
        inside[np.flatnonzero(inside)] = mask[hits[:, 2], hits[:, 1], hits[:, 0]] != 0
    return float(np.count_nonzero(inside)) / len(inside)


def _unique_stems(paths: list[str]) -> list[str]:
    """Output stems, made unique when two inputs share a name (scan.nii.gz in two folders)."""
    stems, seen = [], {}
    for path in paths:
        stem = output_stem(path)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return stems


def _same_file(first: str, second: str) -> bool:
    if os.path.realpath(first) == os.path.realpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def _values_text(values: list[int]) -> str:
    shown = ", ".join(str(value) for value in values[:12])
    return shown + (f", … ({len(values)} in all)" if len(values) > 12 else "")


def _number(value: float):
    value = float(value)
    return int(value) if value.is_integer() else round(value, 1)
