"""The inputs of a registration, made ready: checked against each other, padding made air, cropped to
the metric region and shrunk into a pyramid (coarse first), with the fixed body centre.

``register`` builds its pyramids here, and ``check`` builds the same ones to judge any transform, so
the verdict of ``check`` samples exactly the images the verdict of ``register`` samples, without
importing the optimizer. A scan that cannot be registered at all (a slab too thin, an analysis made
for another image, too few or constant valid voxels) raises ``RegistrationError``; the arguments
themselves were checked before (``TypeError``/``ValueError``) by the entry point.
Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..core import morphology
from ..core.pyramid import (
    Level,
    as_mask,
    build_levels,
    centroid,
    coarse_grid,
    count,
    crop_to,
    resample_mask,
    shrink_factors,
)
from ..errors import RegistrationError
from ..quality.verdict import MIN_COVERAGE_MM
from ..resample.scans import prepare_for_registration
from .options import RegistrationOptions


def check_inputs(fixed: sitk.Image, moving: sitk.Image, fixed_analysis, moving_analysis) -> None:
    """Refuse scans that cannot be registered however good the arguments are.

    Args:
        fixed: the fixed scan (already checked to be a 3D scalar volume).
        moving: the moving scan (likewise).
        fixed_analysis: the fixed scan's ``BackgroundAnalysis``.
        moving_analysis: the moving scan's ``BackgroundAnalysis``.

    Raises:
        RegistrationError: a scan is a slab too thin to place along every axis, or an analysis was
            made for another image (its masks are on another grid).
    """
    _check_input(fixed, "fixed")
    _check_input(moving, "moving")
    _check_analysis(fixed, fixed_analysis, "fixed")
    _check_analysis(moving, moving_analysis, "moving")


def _check_input(image: sitk.Image, role: str) -> None:
    """A slab too thin to place along every axis (its shape was checked with the arguments)."""
    extent = min(n * s for n, s in zip(image.GetSize(), image.GetSpacing()))
    if extent < MIN_COVERAGE_MM:
        raise RegistrationError(
            f"{role} image is a slab {extent:.0f} mm thick ({min(image.GetSize())} slices): at least "
            f"{MIN_COVERAGE_MM:.0f} mm are needed to place a scan along every axis"
        )


def _check_analysis(image: sitk.Image, analysis, role: str) -> None:
    """The background analysis must describe this very image (same grid), or its masks mean nothing."""
    for name in ("valid_mask", "body_mask"):
        mask = getattr(analysis, name)
        same_grid = (
            mask.GetSize() == image.GetSize()
            and np.allclose(mask.GetSpacing(), image.GetSpacing(), rtol=1e-4)
            and np.allclose(mask.GetOrigin(), image.GetOrigin(), atol=1e-3 * max(image.GetSpacing()))
        )
        if not same_grid:
            raise RegistrationError(
                f"the {role} background analysis was made for another image: its {name.replace('_', ' ')} is "
                f"{mask.GetSize()} voxels at {_spacing_text(mask.GetSpacing())} mm, the image "
                f"{image.GetSize()} at {_spacing_text(image.GetSpacing())} mm"
            )


def prepare_pyramids(fixed, moving, fixed_analysis, moving_analysis, options):
    """Prepared, cropped, shrunk images and metric masks for both scans, plus the rotation centre.

    Args:
        fixed: the fixed scan.
        moving: the moving scan.
        fixed_analysis: its ``BackgroundAnalysis``.
        moving_analysis: the moving scan's one.
        options: the ``RegistrationOptions`` (finest spacing, level count, body margin).

    Returns:
        (fixed levels, moving levels, centre): the pyramids, coarse first, and the fixed body's
        centre (the rotation centre).

    Raises:
        RegistrationError: too few valid or body voxels, or a scan whose valid voxels are constant.
    """
    fixed_levels, center = _fixed_pyramid(fixed, fixed_analysis, options)
    moving_ready = prepare_for_registration(moving, moving_analysis, compact=True)
    _check_not_constant(moving_ready, moving_analysis, "moving")
    moving_valid = as_mask(moving_analysis.valid_mask)
    targets = _level_targets(fixed.GetSpacing(), options)
    moving_factors = [
        shrink_factors(moving.GetSpacing(), target, moving_ready.GetSize()) for target in targets
    ]
    moving_levels = build_levels(
        moving_ready, None, moving_factors, erode_mask_voxels=1, limit_mask=_padded_only(moving_valid)
    )
    return fixed_levels, moving_levels, center


def warm_fixed_pyramid(fixed: sitk.Image, fixed_analysis, options: RegistrationOptions) -> bool:
    """Build the fixed scan's pyramid now, on this thread, for this thread's next registration onto it
    (``prepare_pyramids`` then finds it ready): a lone case does this while its moving scan is still
    being read and analysed on the other core.

    Args:
        fixed: the fixed scan.
        fixed_analysis: its ``BackgroundAnalysis`` (the pyramid lives as long as it does).
        options: the ``RegistrationOptions`` the registration will use.

    Returns:
        True when the pyramid is ready; False when the scan cannot be registered (the registration
        itself raises the reason in its turn, with the case's other errors in their usual order).
    """
    try:
        _fixed_pyramid(fixed, fixed_analysis, options)
    except RegistrationError:
        return False
    return True


def _fixed_pyramid(fixed, fixed_analysis, options) -> tuple[list[Level], tuple[float, float, float]]:
    """The fixed scan's levels and body centre, built once per thread for a fixed scan and analysis.

    A cohort registers every moving scan onto one fixed scan: its pyramid (a third of a 256² case's
    preparation) depends on nothing else, so each thread that registers keeps the last one it built,
    for as long as that analysis lives. Per thread, because SimpleITK images shared between threads
    race; the levels are only ever read.
    """
    key = (
        id(fixed_analysis),
        threading.get_ident(),
        options.finest_spacing_mm,
        options.level_count,
        options.body_margin_mm,
    )
    with _FIXED_LOCK:
        kept = _FIXED_PYRAMIDS.get(key)
    if kept is not None and kept.analysis() is fixed_analysis and kept.fixed is fixed:
        return kept.levels, kept.center
    built = _build_fixed_pyramid(fixed, fixed_analysis, options)
    with _FIXED_LOCK:
        for old in [old for old in _FIXED_PYRAMIDS if old[1] == key[1]]:  # one per thread
            del _FIXED_PYRAMIDS[old]
        _FIXED_PYRAMIDS[key] = _KeptPyramid(
            weakref.ref(fixed_analysis, lambda _: _forget(key)), fixed, *built
        )
    return built


def _forget(key) -> None:
    with _FIXED_LOCK:
        _FIXED_PYRAMIDS.pop(key, None)


@dataclass
class _KeptPyramid:
    analysis: weakref.ref  # the fixed scan's analysis: the entry goes when it does
    fixed: sitk.Image
    levels: list[Level]
    center: tuple[float, float, float]


_FIXED_PYRAMIDS: dict[tuple, _KeptPyramid] = {}
_FIXED_LOCK = threading.Lock()


def _build_fixed_pyramid(fixed, fixed_analysis, options) -> tuple[list[Level], tuple[float, float, float]]:
    fixed_ready = prepare_for_registration(fixed, fixed_analysis, compact=True)
    _check_not_constant(fixed_ready, fixed_analysis, "fixed")
    fixed_valid = as_mask(fixed_analysis.valid_mask)
    region = _metric_region(fixed_analysis, fixed_valid, options)
    if count(region) < 50:
        raise RegistrationError("fixed image has too few valid body voxels to register")
    center = centroid(region)
    fixed_ready, fixed_valid = crop_to(region, fixed_ready, fixed_valid)
    targets = _level_targets(fixed.GetSpacing(), options)
    fixed_factors = [shrink_factors(fixed.GetSpacing(), target, fixed_ready.GetSize()) for target in targets]
    fixed_levels = build_levels(
        fixed_ready, region, fixed_factors, erode_mask_voxels=1, limit_mask=_padded_only(fixed_valid)
    )
    for level in fixed_levels:
        if level.mask is not None and count(level.mask) < 200:
            raise RegistrationError(
                f"fixed image has too few valid body voxels to register ({count(level.mask)} at "
                f"{_spacing_text(level.spacing)} mm; at least 200 are needed)"
            )
    return fixed_levels, center


def build_pyramids(
    fixed, moving, fixed_analysis, moving_analysis, finest_spacing_mm: float, level_count: int
):
    """Prepared pyramids of both scans (coarse first) and the fixed body centre, as the registration
    builds them: the verdict of ``check`` samples the same images as the one of ``register``.

    Args:
        fixed: the fixed scan.
        moving: the moving scan.
        fixed_analysis: its ``BackgroundAnalysis``.
        moving_analysis: the moving scan's one.
        finest_spacing_mm: the finest level's voxel size (mm).
        level_count: the number of levels.

    Returns:
        (fixed levels, moving levels, centre), as ``prepare_pyramids``.

    Raises:
        RegistrationError: as ``prepare_pyramids``.
    """
    options = RegistrationOptions(finest_spacing_mm=finest_spacing_mm, level_count=level_count)
    return prepare_pyramids(fixed, moving, fixed_analysis, moving_analysis, options)


def closest_level(levels: list[Level], target_mm: float) -> int:
    """Index of the level whose mean voxel size is closest to ``target_mm``.

    Args:
        levels: pyramid levels.
        target_mm: the voxel size wanted (mm).

    Returns:
        The index into ``levels``.
    """
    return min(range(len(levels)), key=lambda index: abs(float(np.mean(levels[index].spacing)) - target_mm))


def _level_targets(spacing, options: RegistrationOptions) -> list[float]:
    """Voxel sizes (mm) of the pyramid, coarse first, each level twice the next, finest not below native."""
    finest = max(options.finest_spacing_mm, min(spacing))
    return [finest * 2.0**level for level in reversed(range(options.level_count))]


def _padded_only(valid: sitk.Image) -> Optional[sitk.Image]:
    """The valid mask when some voxels are padding; None (no masking work) when all are real."""
    return None if sitk.GetArrayViewFromImage(valid).all() else valid


def _spacing_text(spacing) -> str:
    return "×".join(f"{s:.3g}" for s in spacing)


def _check_not_constant(image: sitk.Image, analysis, role: str) -> None:
    """Refuse scans without enough real voxels, or whose real voxels all hold one value."""
    values = sitk.GetArrayViewFromImage(image)
    valid = sitk.GetArrayViewFromImage(analysis.valid_mask) > 0
    valid_count = int(np.count_nonzero(valid))
    if valid_count < 1000:
        raise RegistrationError(f"{role} image has too few valid (non-padding) voxels ({valid_count})")
    step = 4 if min(values.shape) >= 16 else 1  # a strided look settles almost every real scan
    for stride in sorted({step, 1}, reverse=True):
        real = values[::stride, ::stride, ::stride][valid[::stride, ::stride, ::stride]]
        if real.size and float(real.max()) - float(real.min()) >= 1.0:
            return
    low = float(values[valid].min())
    raise RegistrationError(f"{role} image is constant (every valid voxel is {low:g}); nothing to align")


def _metric_region(analysis, valid: sitk.Image, options: RegistrationOptions) -> sitk.Image:
    """Where the metric samples, on a ~4 mm grid: the fixed body grown by a margin (the skin-air edge is
    a strong feature) inside the valid data; the valid data alone when no body was found."""
    grid = coarse_grid(valid, 4.0)
    region_valid = resample_mask(valid, grid, sitk.Transform())
    body = resample_mask(analysis.body_mask, grid, sitk.Transform())
    if count(body) < 20:
        return region_valid
    radius = [max(1, int(round(options.body_margin_mm / s))) for s in grid.GetSpacing()]
    grown = morphology.dilate_box(sitk.GetArrayViewFromImage(body), radius)
    region = grown & (sitk.GetArrayViewFromImage(region_valid) > 0)
    result = sitk.GetImageFromArray(region.view(np.uint8))
    result.CopyInformation(grid)
    return result
