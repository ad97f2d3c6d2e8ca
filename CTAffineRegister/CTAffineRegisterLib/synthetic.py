"""Synthetic torso CT scans and registration pairs whose answer is known exactly.

No real same-patient pair comes with a true transform, so tests and benchmarks build their own:
one continuous (analytic) anatomy is sampled on two different grids, the moving one through a
known affine, then scanner padding is written outside a circular field of view. Everything is
deterministic for a seed.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

AIR_HU = -1000.0
IDENTITY_DIRECTION = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Slabs of this many slices keep the analytic evaluation's temporaries small (512² scans fit).
SLAB_SLICES = 16


@dataclass
class SyntheticPair:
    """A fixed and a moving scan of the same anatomy and the exact fixed→moving transform.

    Attributes:
        fixed: the fixed scan (air background).
        moving: the moving scan (other grid, field-of-view padding).
        true_transform: the exact fixed→moving transform.
        body_points: fixed physical points inside the body, for target registration errors.
        fixed_valid_mask: 1 where the fixed scan has real data.
        moving_valid_mask: 1 where the moving scan has real data.
    """

    fixed: sitk.Image
    moving: sitk.Image
    true_transform: sitk.AffineTransform  # maps FIXED physical points to MOVING physical points (ITK)
    body_points: np.ndarray  # N×3 fixed physical points inside the body and the fixed valid region
    fixed_valid_mask: sitk.Image  # UInt8, 1 where the fixed scan holds real data (ground truth)
    moving_valid_mask: sitk.Image  # UInt8, same for the moving scan


# ---------------------------------------------------------------------------------------------
# Anatomy: HU as a function of physical position (mm, LPS: +x patient left, +y posterior, +z head)


def _ellipsoid(x, y, z, center, axes) -> np.ndarray:
    cx, cy, cz = center
    ax, ay, az = axes
    return ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 <= 1.0


def _body_radius(x, y, z) -> np.ndarray:
    """Normalised elliptic radius of the body outline; it widens toward the pelvis so z is pinned."""
    widen = 1.0 + 0.06 * np.tanh(-z / 80.0)
    return np.sqrt((x / (140.0 * widen)) ** 2 + ((y - 5.0) / (100.0 * widen)) ** 2)


def body_inside(points: np.ndarray) -> np.ndarray:
    """True where a physical point (anatomy frame) lies inside the patient's body.

    Args:
        points: physical points, (..., 3).

    Returns:
        A boolean array of shape (...).
    """
    return _body_radius(points[..., 0], points[..., 1], points[..., 2]) <= 1.0


def sample_anatomy(points: np.ndarray) -> np.ndarray:
    """HU of the torso phantom at physical points (..., 3), before noise and blur.

    Fat layer, muscle wall, lungs, heart with contrast, aorta, liver, spleen, kidneys, bowel gas,
    vertebrae with discs, ribs and pelvic bones: enough structure at several scales for mutual
    information to pin down all twelve affine parameters.

    Args:
        points: physical points in the anatomy frame, (..., 3).

    Returns:
        HU values of shape (...).
    """
    x = points[..., 0].astype(np.float32, copy=False)
    y = points[..., 1].astype(np.float32, copy=False)
    z = points[..., 2].astype(np.float32, copy=False)
    z_low, z_high = float(z.min()), float(z.max())

    def spans(low: float, high: float) -> bool:
        return z_high >= low and z_low <= high

    radius = _body_radius(x, y, z)
    hu = np.full(x.shape, AIR_HU, dtype=np.float32)
    hu[radius <= 1.0] = -100.0  # subcutaneous fat
    muscle = radius <= 0.93
    hu[muscle] = 45.0
    inner = radius <= 0.86
    # visceral fat and soft tissue with a smooth texture, so organs are not flat plateaus
    texture = 30.0 * np.sin(x / 11.0) * np.cos(y / 13.0 + z / 17.0) + 12.0 * np.sin(z / 9.0 + x / 23.0)
    hu[inner] = (10.0 + texture)[inner]

    if spans(-40.0, 400.0):
        for side in (-1.0, 1.0):
            lung = _ellipsoid(x, y, z, (side * 62.0, -2.0, 120.0), (52.0, 70.0, 150.0))
            hu[lung] = (-850.0 + 25.0 * np.sin(z / 7.0 + x / 5.0) * np.cos(y / 6.0))[lung]
            vessel = lung & (np.abs(np.sin(x / 9.0 + side * y / 13.0)) < 0.08)
            hu[vessel] = -300.0
        heart = _ellipsoid(x, y, z, (14.0, -20.0, 55.0), (48.0, 42.0, 50.0))
        hu[heart] = 40.0
        hu[_ellipsoid(x, y, z, (8.0, -24.0, 60.0), (22.0, 20.0, 26.0))] = 260.0  # contrast blood pool
    hu[(x + 22.0) ** 2 + (y - 28.0) ** 2 <= 12.0**2] = 220.0  # aorta, the whole length
    if spans(-160.0, 60.0):
        liver = _ellipsoid(x, y, z, (-58.0, 0.0, -40.0), (62.0, 68.0, 60.0)) & (radius <= 0.86)
        hu[liver] = (105.0 + 6.0 * np.cos(z / 6.0))[liver]
        hu[_ellipsoid(x, y, z, (72.0, 30.0, -20.0), (26.0, 30.0, 40.0))] = 95.0  # spleen
        hu[_ellipsoid(x, y, z, (-30.0, -45.0, -70.0), (18.0, 12.0, 10.0))] = -950.0  # gas in colon
        hu[_ellipsoid(x, y, z, (35.0, -55.0, -95.0), (14.0, 10.0, 16.0))] = -950.0
    if spans(-200.0, -30.0):
        for side, z_kidney in ((-1.0, -105.0), (1.0, -95.0)):
            kidney = _ellipsoid(x, y, z, (side * 55.0, 42.0, z_kidney), (22.0, 17.0, 45.0))
            hu[kidney] = 190.0
            hu[_ellipsoid(x, y, z, (side * 50.0, 40.0, z_kidney), (8.0, 6.0, 20.0))] = 20.0
    _draw_spine(hu, x, y, z)
    if spans(-80.0, 400.0):
        _draw_ribs(hu, x, y, z, radius)
    if spans(-400.0, -130.0):
        for side in (-1.0, 1.0):
            wing = _ellipsoid(x, y, z, (side * 95.0, 35.0, -190.0), (25.0, 45.0, 55.0))
            hollow = _ellipsoid(x, y, z, (side * 95.0, 35.0, -190.0), (17.0, 37.0, 47.0))
            hu[wing & ~hollow] = 850.0
            hu[hollow & wing] = 220.0
    return hu


def _draw_spine(hu, x, y, z) -> None:
    """Vertebral bodies (cortical shell, cancellous core) with discs every 32 mm, plus spinous processes."""
    r2 = (x / 19.0) ** 2 + ((y - 62.0) / 16.0) ** 2
    phase = np.mod(z + 7.0, 32.0)
    disc = phase < 7.0
    vertebra = r2 <= 1.0
    hu[vertebra] = 260.0
    hu[vertebra & (r2 >= 0.72)] = 950.0
    hu[vertebra & disc] = 85.0
    spinous = (np.abs(x) <= 5.0) & (y > 80.0) & (y < 108.0) & (phase > 10.0) & (phase < 26.0)
    hu[spinous] = 700.0


def _draw_ribs(hu, x, y, z, radius) -> None:
    """Curved bone bands just inside the muscle wall, sloping down toward the front."""
    angle = np.arctan2(y - 5.0, x)  # +pi/2 is posterior
    shell = (radius >= 0.80) & (radius <= 0.86)
    slope = 12.0 * np.sin(angle)  # ribs run lower at the front
    band = np.cos((z - slope) * (2.0 * math.pi / 26.0)) > 0.55
    not_front = np.sin(angle) > -0.55
    hu[shell & band & not_front & (z > -75.0)] = 750.0


# ---------------------------------------------------------------------------------------------
# Grids and sampling


def make_reference(
    size: Sequence[int],
    spacing: Sequence[float],
    origin: Optional[Sequence[float]] = None,
    direction: Optional[Sequence[float]] = None,
    pixel_id: int = sitk.sitkInt16,
) -> sitk.Image:
    """An empty image on a grid; without an origin the grid's centre sits at the physical origin.

    Args:
        size: voxels.
        spacing: voxel size (mm).
        origin: the grid's origin, or None.
        direction: direction cosines, or None (identity).
        pixel_id: the SimpleITK pixel type.

    Returns:
        The empty image.
    """
    image = sitk.Image([int(n) for n in size], pixel_id)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(d) for d in (direction or IDENTITY_DIRECTION)])
    if origin is None:
        centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in size])
        origin = [o - c for o, c in zip(image.GetOrigin(), centre)]
    image.SetOrigin([float(o) for o in origin])
    return image


def physical_points(image: sitk.Image, first_slice: int = 0, stop_slice: Optional[int] = None) -> np.ndarray:
    """Physical points of the voxels of slices [first, stop), shape (nz, ny, nx, 3), float32.

    Args:
        image: the image whose grid is used.
        first_slice: the first slice.
        stop_slice: the slice after the last one; None: the end.

    Returns:
        The points.
    """
    nx, ny, nz = image.GetSize()
    stop_slice = nz if stop_slice is None else stop_slice
    matrix = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    k, j, i = np.meshgrid(
        np.arange(first_slice, stop_slice, dtype=np.float32),
        np.arange(ny, dtype=np.float32),
        np.arange(nx, dtype=np.float32),
        indexing="ij",
    )
    points = np.stack([i, j, k], axis=-1) @ matrix.T.astype(np.float32)
    return points + np.asarray(image.GetOrigin(), dtype=np.float32)


def apply_affine(transform: sitk.AffineTransform, points: np.ndarray) -> np.ndarray:
    """Vectorised ``transform.TransformPoint`` for an (..., 3) array.

    Args:
        transform: an affine transform.
        points: physical points, (..., 3).

    Returns:
        The transformed points, same shape.
    """
    matrix = np.array(transform.GetMatrix()).reshape(3, 3)
    center = np.array(transform.GetCenter())
    offset = center + np.array(transform.GetTranslation()) - matrix @ center
    return (points @ matrix.T.astype(np.float32) + offset.astype(np.float32)).astype(np.float32)


def make_phantom(
    size: Sequence[int] = (160, 160, 120),
    spacing: Sequence[float] = (2.0, 2.0, 2.5),
    origin: Optional[Sequence[float]] = None,
    direction: Optional[Sequence[float]] = None,
    seed: int = 0,
    noise_hu: float = 12.0,
    blur_mm: float = 0.7,
    couch: bool = True,
    anatomy_transform: Optional[sitk.AffineTransform] = None,
) -> sitk.Image:
    """A torso-like CT (int16 HU) on the given grid.

    ``anatomy_transform`` maps this image's physical points to anatomy points; a moving scan uses
    the inverse of the true fixed→moving transform so both scans show the same continuous anatomy.
    The couch belongs to the scanner, not the patient: it is drawn in this image's own frame under
    the body, as in two real scans where the patient moved on the table.

    Args:
        size: voxels.
        spacing: voxel size (mm).
        origin: the grid's origin; None: the grid's centre at the physical origin.
        direction: the grid's direction cosines; None: identity.
        seed: the random seed of the noise.
        noise_hu: noise standard deviation (HU).
        blur_mm: blur of the anatomy's edges (mm).
        couch: draw the scanner couch.
        anatomy_transform: this image's physical points → anatomy points; None: identity.

    Returns:
        The phantom, int16 HU.
    """
    image, _ = _render(size, spacing, origin, direction, seed, noise_hu, blur_mm, couch, anatomy_transform)
    return image


def _render(size, spacing, origin, direction, seed, noise_hu, blur_mm, couch, anatomy_transform):
    """The phantom image and, for TRE points, the (z, y, x) flags of voxels inside the body."""
    reference = make_reference(size, spacing, origin, direction, sitk.sitkFloat32)
    values, body = _sample_grid(reference, anatomy_transform)
    if couch:
        _draw_couch(values, reference)
    image = sitk.GetImageFromArray(values)
    image.CopyInformation(reference)
    if blur_mm > 0:
        image = sitk.SmoothingRecursiveGaussian(image, blur_mm)
    array = sitk.GetArrayFromImage(image)
    if noise_hu > 0:
        rng = np.random.default_rng(seed)
        array += rng.standard_normal(array.shape, dtype=np.float32) * np.float32(noise_hu)
    result = sitk.GetImageFromArray(np.clip(np.rint(array), -32768, 32767).astype(np.int16))
    result.CopyInformation(reference)
    return result, body


def _sample_grid(
    reference: sitk.Image, anatomy_transform: Optional[sitk.AffineTransform]
) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy values and body flags at every voxel of ``reference``, slab by slab."""
    nx, ny, nz = reference.GetSize()
    values = np.empty((nz, ny, nx), dtype=np.float32)
    body = np.empty((nz, ny, nx), dtype=bool)
    for start in range(0, nz, SLAB_SLICES):
        stop = min(nz, start + SLAB_SLICES)
        points = physical_points(reference, start, stop)
        if anatomy_transform is not None:
            points = apply_affine(anatomy_transform, points)
        values[start:stop] = sample_anatomy(points)
        body[start:stop] = body_inside(points)
    return values, body


def _draw_couch(values: np.ndarray, reference: sitk.Image) -> None:
    """A curved carbon plate on a foam mattress, just below (posterior to) the lowest body voxel."""
    points = physical_points(reference, 0, 1)[0]  # (ny, nx, 3): the couch does not vary along z
    body_pixels = (values > -500.0).any(axis=0)
    if not body_pixels.any():
        return
    x, y = points[..., 0], points[..., 1]
    lowest = float(y[body_pixels].max())  # physical +y is posterior (LPS), whatever the grid's direction
    sag = 0.0006 * x**2  # the plate curves up at the sides
    plate = (y - sag >= lowest + 14.0) & (y - sag <= lowest + 20.0) & (np.abs(x) <= 200.0)
    foam = (y - sag > lowest + 1.0) & (y - sag < lowest + 14.0) & (np.abs(x) <= 180.0)
    air = values <= -900.0
    values[air & foam[None]] = -880.0
    values[air & plate[None]] = 300.0


# ---------------------------------------------------------------------------------------------
# Padding and transforms


def fov_mask(image: sitk.Image, radius_mm: float, center: Optional[Sequence[float]] = None) -> sitk.Image:
    """UInt8 mask, 1 inside the circular field of view in every axial slice.

    Axial means the plane of the image's first two index axes, measured in physical mm along the
    direction cosines, so an oblique or flipped grid gets a true circle.

    Args:
        image: the image whose grid is used.
        radius_mm: the field-of-view radius (mm).
        center: its centre in physical coordinates; None: the grid's centre.

    Returns:
        The mask.
    """
    size = image.GetSize()
    if center is None:
        center = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in size])
    center = np.asarray(center, dtype=np.float32)
    axes = np.array(image.GetDirection()).reshape(3, 3).astype(np.float32)
    mask = np.empty(size[::-1], dtype=np.uint8)
    for start in range(0, size[2], SLAB_SLICES):
        stop = min(size[2], start + SLAB_SLICES)
        relative = physical_points(image, start, stop) - center
        u, v = relative @ axes[:, 0], relative @ axes[:, 1]
        mask[start:stop] = u * u + v * v <= radius_mm * radius_mm
    result = sitk.GetImageFromArray(mask)
    result.CopyInformation(image)
    return result


def insert_fov_padding(
    image: sitk.Image, value: float, radius_mm: float, center: Optional[Sequence[float]] = None
) -> sitk.Image:
    """The image with every voxel outside the circular field of view set to ``value`` (same type).

    Args:
        image: a scan.
        value: the padding value.
        radius_mm: the field-of-view radius (mm).
        center: its centre; None: the grid's centre.

    Returns:
        The padded image.
    """
    return pad_outside(image, fov_mask(image, radius_mm, center), value)


def pad_outside(image: sitk.Image, valid: sitk.Image, value: float) -> sitk.Image:
    """The image with every voxel where ``valid`` is 0 set to ``value``: a scanner's padding put back.

    Args:
        image: a scan.
        valid: 1 where the scan has real data.
        value: the padding value.

    Returns:
        The padded image.
    """
    return sitk.Mask(image, valid, outsideValue=float(value))


def random_affine(
    rng: np.random.Generator,
    max_rotation_deg: float = 10.0,
    max_translation_mm: float = 20.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.05,
    center: Sequence[float] = (0.0, 0.0, 0.0),
) -> sitk.AffineTransform:
    """A fixed→moving affine within the ranges a CT follow-up plausibly needs.

    Args:
        rng: the random generator.
        max_rotation_deg: bound of the rotation about each axis.
        max_translation_mm: bound of the translation along each axis.
        scale_range: range of the scales.
        max_shear: bound of the shears.
        center: the transform's centre.

    Returns:
        The ``AffineTransform``.
    """
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    rotation = np.array(sitk.Euler3DTransform((0, 0, 0), *angles).GetMatrix()).reshape(3, 3)
    scale = np.diag(rng.uniform(scale_range[0], scale_range[1], 3))
    shear = np.eye(3)
    shear[0, 1], shear[0, 2], shear[1, 2] = rng.uniform(-max_shear, max_shear, 3)
    direction = rng.normal(size=3)
    translation = direction / np.linalg.norm(direction) * rng.uniform(0.3, 1.0) * max_translation_mm
    transform = sitk.AffineTransform(3)
    transform.SetCenter([float(c) for c in center])
    transform.SetMatrix((rotation @ scale @ shear).ravel().tolist())
    transform.SetTranslation(translation.tolist())
    return transform


def sample_points(
    mask: np.ndarray, reference: sitk.Image, rng: np.random.Generator, count: int
) -> np.ndarray:
    """``count`` random physical points (N×3) among the voxels flagged in a (z, y, x) mask.

    Args:
        mask: boolean (z, y, x) array on ``reference``'s grid.
        reference: the image whose grid the mask is on.
        rng: the random generator.
        count: how many points (at most the voxels flagged).

    Returns:
        The points, N×3.

    Raises:
        ValueError: the mask flags no voxel.
    """
    indices = np.argwhere(mask)
    if len(indices) == 0:
        raise ValueError("no voxel to sample points from")
    chosen = indices[rng.choice(len(indices), size=min(count, len(indices)), replace=False)]
    matrix = np.array(reference.GetDirection()).reshape(3, 3) @ np.diag(reference.GetSpacing())
    return chosen[:, ::-1].astype(np.float64) @ matrix.T + np.array(reference.GetOrigin())


# ---------------------------------------------------------------------------------------------
# Pairs


def make_pair(
    seed: int = 0,
    fixed_size: Sequence[int] = (160, 160, 120),
    fixed_spacing: Sequence[float] = (2.0, 2.0, 2.5),
    moving_spacing: Sequence[float] = (2.3, 2.3, 3.0),
    moving_size: Optional[Sequence[int]] = None,
    moving_offset_mm: Sequence[float] = (6.0, -4.0, 9.0),
    moving_direction: Optional[Sequence[float]] = None,
    moving_padding: Optional[float] = -3024.0,
    fixed_padding: Optional[float] = None,
    moving_fov_radius_mm: Optional[float] = None,
    fixed_fov_radius_mm: Optional[float] = None,
    max_rotation_deg: float = 10.0,
    max_translation_mm: float = 20.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.05,
    noise_hu: float = 12.0,
    couch: bool = True,
    point_count: int = 2000,
    true_transform: Optional[sitk.Transform] = None,
    anatomy_scale: float = 1.0,
) -> SyntheticPair:
    """Fixed (dataset-A style: air background) and moving (dataset-B: other grid, FOV padding) scans.

    The moving scan is the same continuous anatomy seen through a random affine, so the true
    transform is exact. FOV radii default to the circle inscribed in each scan's axial extent.
    ``true_transform`` (any linear fixed→moving transform) replaces the random one; an
    ``anatomy_scale`` below 1 makes a smaller patient, for small test images.

    Args:
        seed: the random seed (the random affine and both scans' noise).
        fixed_size: voxels of the fixed scan.
        fixed_spacing: its voxel size (mm).
        moving_spacing: the moving scan's voxel size (mm).
        moving_size: its voxels; None: the fixed scan's extent on the moving spacing.
        moving_offset_mm: shift of the moving grid from the centred position (mm).
        moving_direction: the moving grid's direction cosines; None: identity.
        moving_padding: the moving scan's padding value outside its field of view; None: no padding.
        fixed_padding: the fixed scan's one (default None: air background).
        moving_fov_radius_mm: the moving field-of-view radius; None: the inscribed circle.
        fixed_fov_radius_mm: the fixed one.
        max_rotation_deg: bound of the random affine's rotation about each axis.
        max_translation_mm: bound of its translation along each axis.
        scale_range: range of its scales.
        max_shear: bound of its shears.
        noise_hu: noise standard deviation (HU).
        couch: draw the scanner couch.
        point_count: body points sampled for target registration errors.
        true_transform: a linear fixed→moving transform to use instead of the random one.
        anatomy_scale: below 1, a smaller patient (for small test images).

    Returns:
        A ``SyntheticPair``: both scans, the exact fixed→moving transform, body points and the
        valid masks.
    """
    rng = np.random.default_rng(seed)
    truth = random_affine(rng, max_rotation_deg, max_translation_mm, scale_range, max_shear)
    if true_transform is not None:
        truth = as_affine(true_transform)
    noise_seeds = rng.integers(0, 2**31 - 1, size=2)
    fixed_extent = [n * s for n, s in zip(fixed_size, fixed_spacing)]
    if moving_size is None:
        moving_size = [int(math.ceil(e / s)) for e, s in zip(fixed_extent, moving_spacing)]
    moving_reference = make_reference(moving_size, moving_spacing, None, moving_direction, sitk.sitkUInt8)
    moving_origin = np.array(moving_reference.GetOrigin()) + np.array(moving_offset_mm)

    shrink = sitk.AffineTransform(3)
    shrink.SetMatrix((np.eye(3) / anatomy_scale).ravel().tolist())
    fixed_anatomy = None if anatomy_scale == 1.0 else shrink
    moving_anatomy = sitk.CompositeTransform([shrink, truth.GetInverse()])  # applied right to left
    fixed, fixed_body = _render(
        fixed_size, fixed_spacing, None, None, int(noise_seeds[0]), noise_hu, 0.7, couch, fixed_anatomy
    )
    moving, _ = _render(
        moving_size,
        moving_spacing,
        moving_origin,
        moving_direction,
        int(noise_seeds[1]),
        noise_hu,
        0.7,
        couch,
        as_affine(moving_anatomy),
    )
    fixed, fixed_valid = _pad(fixed, fixed_padding, fixed_fov_radius_mm)
    moving, moving_valid = _pad(moving, moving_padding, moving_fov_radius_mm)

    inside = fixed_body & (sitk.GetArrayViewFromImage(fixed_valid) > 0)
    points = sample_points(inside, fixed, rng, point_count)
    return SyntheticPair(fixed, moving, truth, points, fixed_valid, moving_valid)


def _pad(
    image: sitk.Image, value: Optional[float], radius_mm: Optional[float]
) -> tuple[sitk.Image, sitk.Image]:
    if value is None:
        valid = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
        valid.CopyInformation(image)
        return image, valid
    if radius_mm is None:
        radius_mm = 0.5 * min(n * s for n, s in zip(image.GetSize()[:2], image.GetSpacing()[:2]))
    valid = fov_mask(image, radius_mm)
    return pad_outside(image, valid, value), valid


def as_affine(transform: sitk.Transform) -> sitk.AffineTransform:
    """Any linear transform (Euler, similarity, affine, composites of them) as one AffineTransform.

    Args:
        transform: a linear transform.

    Returns:
        The ``AffineTransform``.
    """
    origin = np.array(transform.TransformPoint((0.0, 0.0, 0.0)))
    matrix = np.stack(
        [np.array(transform.TransformPoint(tuple(float(v) for v in axis))) - origin for axis in np.eye(3)],
        axis=1,
    )
    affine = sitk.AffineTransform(3)
    affine.SetMatrix(matrix.ravel().tolist())
    affine.SetTranslation(origin.tolist())
    return affine


def make_pair_from_image(
    image: sitk.Image,
    seed: int = 0,
    moving_spacing: Sequence[float] = (2.5, 2.5, 3.5),
    moving_padding: Optional[float] = -3024.0,
    fixed_padding: Optional[float] = None,
    moving_fov_radius_mm: Optional[float] = None,
    fixed_fov_radius_mm: Optional[float] = None,
    true_transform: Optional[sitk.Transform] = None,
    max_rotation_deg: float = 10.0,
    max_translation_mm: float = 20.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.05,
    outside_value: float = -1024.0,
    point_count: int = 2000,
) -> SyntheticPair:
    """A pair from a real CT: the image itself is fixed, the moving one is it seen through a known affine
    on another grid (linear interpolation, air outside), then padding is written outside circular FOVs.

    The answer is exact by construction; body points are fixed voxels of the patient (the largest
    region above -400 HU) inside the fixed FOV.

    Args:
        image: a real CT; it becomes the fixed scan.
        seed: the random seed of the affine.
        moving_spacing: the moving scan's voxel size (mm).
        moving_padding: the moving padding value; None: no padding.
        fixed_padding: the fixed padding value; None: no padding.
        moving_fov_radius_mm: the moving field-of-view radius; None: the inscribed circle.
        fixed_fov_radius_mm: the fixed one.
        true_transform: a linear fixed→moving transform instead of the random one.
        max_rotation_deg: bound of the random affine's rotation.
        max_translation_mm: bound of its translation.
        scale_range: range of its scales.
        max_shear: bound of its shears.
        outside_value: the moving value where it sees outside the fixed image.
        point_count: body points sampled for target registration errors.

    Returns:
        The ``SyntheticPair``.
    """
    rng = np.random.default_rng(seed)
    size, spacing = image.GetSize(), image.GetSpacing()
    center = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in size])
    truth = random_affine(rng, max_rotation_deg, max_translation_mm, scale_range, max_shear, center)
    if true_transform is not None:
        truth = as_affine(true_transform)
    source = sitk.Cast(image, sitk.sitkFloat32)
    moving_size = [int(math.ceil(n * s / m)) for n, s, m in zip(size, spacing, moving_spacing)]
    moving_reference = make_reference(
        moving_size, moving_spacing, None, image.GetDirection(), sitk.sitkFloat32
    )
    moving_reference.SetOrigin(tuple(np.array(moving_reference.GetOrigin()) + np.array(center, dtype=float)))
    moving = sitk.Resample(source, moving_reference, truth.GetInverse(), sitk.sitkLinear, outside_value)
    fixed = sitk.Cast(sitk.Round(source), sitk.sitkInt16)
    moving = sitk.Cast(sitk.Round(moving), sitk.sitkInt16)
    fixed, fixed_valid = _pad(fixed, fixed_padding, fixed_fov_radius_mm)
    moving, moving_valid = _pad(moving, moving_padding, moving_fov_radius_mm)
    inside = _largest_region_above(source, -400.0) & (sitk.GetArrayViewFromImage(fixed_valid) > 0)
    points = sample_points(inside, fixed, rng, point_count)
    return SyntheticPair(fixed, moving, truth, points, fixed_valid, moving_valid)


def _largest_region_above(image: sitk.Image, threshold: float) -> np.ndarray:
    """(z, y, x) flags of the largest connected region above ``threshold``: the patient, not the couch."""
    mask = sitk.BinaryMorphologicalOpening(sitk.BinaryThreshold(image, threshold, 1e9), [2, 2, 1])
    labels = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.GetArrayFromImage(labels) == 1
