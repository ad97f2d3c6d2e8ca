"""Benchmark cases: CT pairs whose fixed→moving affine transform is known exactly.

No real same-patient pair exists in the shared data, so every case is built by applying a known
affine to an anatomy source (the real TotalSegmentator torso, or an analytic phantom evaluated at
each voxel's physical point, so the moving scan carries no interpolation blur) and then
re-inserting scanner padding outside a circular field of view, in the fixed scan, the moving scan,
or both. Because the padding region is drawn here, the fixed scan's valid region (where the ring
metric counts) is ground truth rather than a detector's guess.

This module is benchmark-only: it may use the project's ``synthetic`` helpers, but it never relies
on them, so the benchmark keeps working while those are being written.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.synthetic import pad_outside

AIR_HU = -1000.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("CTAR_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))
TORSO = SHARED_DATA / "totalsegmentator" / "example_ct.nii.gz"


@dataclass
class Case:
    """One registration problem with its exact answer."""

    name: str
    fixed: sitk.Image
    moving: sitk.Image
    true_transform: sitk.AffineTransform  # maps fixed physical points to moving physical points
    body_points: np.ndarray  # N×3 fixed physical points inside the body and the fixed valid region
    fixed_valid: sitk.Image  # uint8, 1 where the fixed scan holds real data (not its padding)
    description: str = ""
    notes: dict = field(default_factory=dict)


@dataclass
class Grid:
    """Where an image lives: size (x, y, z), spacing (mm), origin and direction."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)

    @classmethod
    def centered(
        cls,
        size: tuple[int, int, int],
        spacing: tuple[float, float, float],
        direction: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1),
    ) -> Grid:
        """A grid whose centre is the physical origin, so phantoms are centred in it."""
        half = np.array([0.5 * (n - 1) * s for n, s in zip(size, spacing)])
        origin = tuple(-(np.array(direction, dtype=float).reshape(3, 3) @ half))
        return cls(size, spacing, origin, tuple(direction))

    def blank(self, pixel_id: int = sitk.sitkFloat32) -> sitk.Image:
        image = sitk.Image(list(self.size), pixel_id)
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)
        return image


# --------------------------------------------------------------------------------------------
# Known transforms


def random_affine(
    rng: np.random.Generator,
    center: tuple[float, float, float],
    max_rotation_deg: float = 10.0,
    max_translation_mm: float = 20.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shear: float = 0.05,
) -> sitk.AffineTransform:
    """A fixed→moving affine within the ranges a CT follow-up plausibly needs."""
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, 3))
    rotation = sitk.Euler3DTransform((0, 0, 0), *angles).GetMatrix()
    rotation = np.array(rotation).reshape(3, 3)
    scale = np.diag(rng.uniform(*scale_range, 3))
    shear = np.eye(3)
    shear[0, 1], shear[0, 2], shear[1, 2] = rng.uniform(-max_shear, max_shear, 3)
    matrix = rotation @ scale @ shear
    direction = rng.normal(size=3)
    translation = direction / np.linalg.norm(direction) * rng.uniform(0.3, 1.0) * max_translation_mm
    transform = sitk.AffineTransform(3)
    transform.SetCenter(center)
    transform.SetMatrix(matrix.ravel().tolist())
    transform.SetTranslation(translation.tolist())
    return transform


def physical_points(grid: Grid, z_slices: Optional[slice] = None) -> np.ndarray:
    """Physical points of a grid's voxels, shape (nz, ny, nx, 3) in numpy (z, y, x) order."""
    nx, ny, nz = grid.size
    zs = np.arange(nz)[z_slices] if z_slices is not None else np.arange(nz)
    k, j, i = np.meshgrid(zs, np.arange(ny), np.arange(nx), indexing="ij")
    index = np.stack([i, j, k], axis=-1).astype(np.float64)
    matrix = np.array(grid.direction).reshape(3, 3) @ np.diag(grid.spacing)
    return index @ matrix.T + np.array(grid.origin)


def apply_affine(transform: sitk.AffineTransform, points: np.ndarray) -> np.ndarray:
    """Vectorised ``transform.TransformPoint`` for an (..., 3) array."""
    matrix = np.array(transform.GetMatrix()).reshape(3, 3)
    center = np.array(transform.GetCenter())
    offset = center + np.array(transform.GetTranslation()) - matrix @ center
    return points @ matrix.T + offset


# --------------------------------------------------------------------------------------------
# Analytic phantom: the same anatomy can be sampled on any grid, through any transform


@dataclass
class Phantom:
    """An analytic torso: body ellipse, fat layer, lungs, heart, liver, vertebrae, optional couch.

    Values are in HU; all lengths in mm around the physical origin. The smooth texture makes mutual
    information well defined inside organs without per-voxel noise (which is added per scan).
    """

    body_axes: tuple[float, float] = (140.0, 100.0)
    couch: bool = False

    def body_mask(self, points: np.ndarray) -> np.ndarray:
        ax, ay = self.body_axes
        return (points[..., 0] / ax) ** 2 + (points[..., 1] / ay) ** 2 <= 1.0

    def sample(self, points: np.ndarray) -> np.ndarray:
        x, y, z = points[..., 0], points[..., 1], points[..., 2]
        ax, ay = self.body_axes
        r_body = (x / ax) ** 2 + (y / ay) ** 2
        hu = np.full(x.shape, AIR_HU, dtype=np.float32)
        hu[r_body <= 1.0] = -100.0  # subcutaneous fat
        inner = (x / (ax - 12)) ** 2 + (y / (ay - 12)) ** 2 <= 1.0
        hu[inner] = 40.0 + 15.0 * np.sin(x[inner] / 9.0) * np.cos(y[inner] / 11.0 + z[inner] / 13.0)
        for side in (-1.0, 1.0):  # lungs, upper half of the body in z
            lung = ((x - side * 0.45 * ax) / (0.35 * ax)) ** 2 + ((y + 0.1 * ay) / (0.6 * ay)) ** 2 + (
                (z - 60.0) / 110.0
            ) ** 2 <= 1.0
            hu[lung] = -850.0 + 30.0 * np.sin(z[lung] / 7.0 + x[lung] / 5.0)
        heart = ((x + 0.1 * ax) ** 2 + (y + 0.15 * ay) ** 2 + (z - 20.0) ** 2) <= 45.0**2
        hu[heart] = 55.0
        liver = ((x - 0.3 * ax) / (0.5 * ax)) ** 2 + (y / (0.6 * ay)) ** 2 + ((z + 70.0) / 60.0) ** 2 <= 1.0
        hu[liver] = 65.0 + 8.0 * np.cos(z[liver] / 6.0)
        kidney = (
            ((np.abs(x) - 0.45 * ax) / 25.0) ** 2 + ((y - 0.45 * ay) / 20.0) ** 2 + ((z + 95.0) / 45.0) ** 2
        ) <= 1
        hu[kidney] = 150.0
        # vertebrae: bone discs every 30 mm along z, with softer discs between, behind the centre
        spine = (x**2 + (y - 0.7 * ay) ** 2) <= 18.0**2
        body_of_vertebra = np.cos(z * (2 * math.pi / 30.0)) > -0.4
        hu[spine & body_of_vertebra] = 700.0
        hu[spine & ~body_of_vertebra] = 80.0
        for side in (-1.0, 1.0):  # pelvis-like bars, asymmetric in z to pin down the z translation
            bar = ((x - side * 0.6 * ax) / 18.0) ** 2 + ((y - 0.3 * ay) / 25.0) ** 2 <= 1.0
            hu[bar & (z < -120.0)] = 500.0
        if self.couch:
            plate = (np.abs(y - (ay + 25.0)) <= 5.0) & (np.abs(x) <= 1.2 * ax)
            foam = (y > ay + 8.0) & (y < ay + 20.0) & (np.abs(x) <= 1.1 * ax)
            hu[foam] = -700.0
            hu[plate] = 250.0
        return hu


def sample_on_grid(
    source: Callable[[np.ndarray], np.ndarray],
    grid: Grid,
    transform: Optional[sitk.AffineTransform] = None,
    noise_hu: float = 0.0,
    rng: Optional[np.random.Generator] = None,
    blur_mm: float = 0.7,
    chunk_slices: int = 16,
) -> sitk.Image:
    """Image whose voxel at physical point q holds source(transform(q)), as int16 HU.

    A slight Gaussian blur stands in for the scanner's point-spread function: without it the
    analytic edges are sharper than any CT, and cubic resamplers overshoot them far below -1100 HU.
    Works slab by slab so that 512×512×300 scans fit comfortably in memory.
    """
    nx, ny, nz = grid.size
    out = np.empty((nz, ny, nx), dtype=np.float32)
    for start in range(0, nz, chunk_slices):
        stop = min(nz, start + chunk_slices)
        points = physical_points(grid, slice(start, stop))
        if transform is not None:
            points = apply_affine(transform, points)
        out[start:stop] = source(points)
    image = sitk.GetImageFromArray(out)
    image.CopyInformation(grid.blank())
    if blur_mm > 0:
        image = sitk.SmoothingRecursiveGaussian(image, blur_mm)
    if noise_hu > 0 and rng is not None:
        array = sitk.GetArrayFromImage(image)
        array += rng.normal(0.0, noise_hu, array.shape).astype(np.float32)
        noisy = sitk.GetImageFromArray(array)
        noisy.CopyInformation(image)
        image = noisy
    return sitk.Cast(sitk.Round(sitk.Clamp(image, sitk.sitkFloat32, -32768, 32767)), sitk.sitkInt16)


# --------------------------------------------------------------------------------------------
# Padding


def fov_valid_mask(image: sitk.Image, radius_mm: float) -> sitk.Image:
    """1 inside the axial circle of ``radius_mm`` around the image centre, as a scanner's FOV is."""
    size = image.GetSize()
    centre_index = [(n - 1) / 2.0 for n in size]
    centre = np.array(image.TransformContinuousIndexToPhysicalPoint(centre_index))
    grid = Grid(size, image.GetSpacing(), image.GetOrigin(), image.GetDirection())
    axes = np.array(image.GetDirection()).reshape(3, 3)
    mask = np.empty(size[::-1], dtype=np.uint8)
    for start in range(0, size[2], 32):
        rel = physical_points(grid, slice(start, min(size[2], start + 32))) - centre
        # distance within the image's own axial plane (its first two axes)
        u, v = rel @ axes[:, 0], rel @ axes[:, 1]
        mask[start : start + 32] = (u**2 + v**2 <= radius_mm**2).astype(np.uint8)
    out = sitk.GetImageFromArray(mask)
    out.CopyInformation(image)
    return out


def insert_padding(image: sitk.Image, value: float, radius_mm: float) -> tuple[sitk.Image, sitk.Image]:
    """Overwrite everything outside the circular FOV with ``value``; return (image, valid mask)."""
    valid = fov_valid_mask(image, radius_mm)
    return pad_outside(image, valid, value), valid


def all_valid(image: sitk.Image) -> sitk.Image:
    mask = sitk.Image(image.GetSize(), sitk.sitkUInt8) + 1
    mask.CopyInformation(image)
    return mask


# --------------------------------------------------------------------------------------------
# Body points


def sample_body_points(
    inside: np.ndarray, grid: Grid, rng: np.random.Generator, count: int = 2000
) -> np.ndarray:
    """``count`` random fixed physical points among voxels flagged ``inside`` (z, y, x array)."""
    indices = np.argwhere(inside)
    if len(indices) == 0:
        raise ValueError("no body voxel to sample TRE points from")
    chosen = indices[rng.choice(len(indices), size=min(count, len(indices)), replace=False)]
    ijk = chosen[:, ::-1].astype(np.float64)
    matrix = np.array(grid.direction).reshape(3, 3) @ np.diag(grid.spacing)
    return ijk @ matrix.T + np.array(grid.origin)


# --------------------------------------------------------------------------------------------
# Case builders


@dataclass
class PaddingSpec:
    """Padding value and FOV radius for one scan; ``value=None`` means no padding."""

    value: Optional[float] = None
    radius_mm: float = 0.0

    def label(self) -> str:
        return "none" if self.value is None else f"{self.value:g}@r{self.radius_mm:g}"


def _pad(image: sitk.Image, spec: PaddingSpec) -> tuple[sitk.Image, sitk.Image]:
    if spec.value is None:
        return image, all_valid(image)
    return insert_padding(image, spec.value, spec.radius_mm)


def phantom_case(
    name: str,
    seed: int,
    fixed_grid: Grid,
    moving_grid: Grid,
    fixed_pad: PaddingSpec,
    moving_pad: PaddingSpec,
    couch: bool = False,
    body_axes: tuple[float, float] = (140.0, 100.0),
    noise_hu: float = 8.0,
) -> Case:
    """Phantom sampled analytically on both grids; moving(q) = phantom(T⁻¹(q))."""
    rng = np.random.default_rng(seed)
    phantom = Phantom(body_axes=body_axes, couch=couch)
    truth = random_affine(rng, center=(0.0, 0.0, 0.0))
    inverse = truth.GetInverse()
    fixed = sample_on_grid(phantom.sample, fixed_grid, None, noise_hu, rng)
    moving = sample_on_grid(phantom.sample, moving_grid, inverse, noise_hu, rng)
    fixed, fixed_valid = _pad(fixed, fixed_pad)
    moving, _ = _pad(moving, moving_pad)
    body = _phantom_body(phantom, fixed_grid) & (sitk.GetArrayViewFromImage(fixed_valid) > 0)
    points = sample_body_points(body, fixed_grid, rng)
    description = (
        f"phantom{' +couch' if couch else ''}; fixed {_grid_label(fixed_grid)} pad {fixed_pad.label()}; "
        f"moving {_grid_label(moving_grid)} pad {moving_pad.label()}"
    )
    return Case(name, fixed, moving, sitk.AffineTransform(truth), points, fixed_valid, description)


def _phantom_body(phantom: Phantom, grid: Grid, chunk_slices: int = 16) -> np.ndarray:
    """The phantom's body mask on a grid, slab by slab (a 512×512×300 grid of points is 1.9 GB)."""
    nz = grid.size[2]
    return np.concatenate(
        [
            phantom.body_mask(physical_points(grid, slice(k, min(nz, k + chunk_slices))))
            for k in range(0, nz, chunk_slices)
        ]
    )


def torso_case(
    name: str,
    seed: int,
    fixed_pad: PaddingSpec,
    moving_pad: PaddingSpec,
    moving_spacing: tuple[float, float, float] = (2.5, 2.5, 3.5),
) -> Case:
    """Real torso as the fixed scan; moving is the torso resampled through T⁻¹ on another grid.

    Outside the torso's own extent the moving scan gets air (-1024), as a scanner would show.
    """
    source = sitk.ReadImage(str(TORSO), sitk.sitkFloat32)
    rng = np.random.default_rng(seed)
    centre = source.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in source.GetSize()])
    truth = random_affine(rng, center=centre)
    extent = [n * s for n, s in zip(source.GetSize(), source.GetSpacing())]
    moving_size = [int(math.ceil(e / s)) for e, s in zip(extent, moving_spacing)]
    moving_ref = sitk.Image(moving_size, sitk.sitkFloat32)
    moving_ref.SetSpacing(moving_spacing)
    moving_ref.SetDirection(source.GetDirection())
    half = np.array(moving_ref.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2.0 for n in moving_size]))
    moving_ref.SetOrigin(tuple(np.array(moving_ref.GetOrigin()) + np.array(centre) - half))
    moving = sitk.Resample(source, moving_ref, truth.GetInverse(), sitk.sitkLinear, -1024.0)
    fixed = sitk.Cast(sitk.Round(source), sitk.sitkInt16)
    moving = sitk.Cast(sitk.Round(moving), sitk.sitkInt16)
    fixed, fixed_valid = _pad(fixed, fixed_pad)
    moving, _ = _pad(moving, moving_pad)
    grid = Grid(source.GetSize(), source.GetSpacing(), source.GetOrigin(), source.GetDirection())
    body = _torso_body(source) & (sitk.GetArrayViewFromImage(fixed_valid) > 0)
    points = sample_body_points(body, grid, rng)
    description = (
        f"real torso (TotalSegmentator); fixed {source.GetSize()} @3mm pad {fixed_pad.label()}; "
        f"moving {tuple(moving_size)} @{moving_spacing} pad {moving_pad.label()}"
    )
    return Case(name, fixed, moving, sitk.AffineTransform(truth), points, fixed_valid, description)


def _torso_body(image: sitk.Image) -> np.ndarray:
    """Largest connected region above -400 HU: the patient (the couch is thin and separate)."""
    mask = sitk.BinaryThreshold(image, -400.0, 1e9)
    mask = sitk.BinaryMorphologicalOpening(mask, [2, 2, 2])
    components = sitk.RelabelComponent(sitk.ConnectedComponent(mask), sortByObjectSize=True)
    return sitk.GetArrayFromImage(components) == 1


def _tilted(degrees: float) -> tuple[float, ...]:
    """Direction cosines of a scan acquired tilted about the left-right axis (an oblique series)."""
    angle = math.radians(degrees)
    c, s = math.cos(angle), math.sin(angle)
    return (1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c)


def _grid_label(grid: Grid) -> str:
    size = "×".join(str(n) for n in grid.size)
    spacing = "×".join(f"{s:g}" for s in grid.spacing)
    oblique = "" if np.allclose(grid.direction, np.eye(3).ravel()) else " oblique"
    return f"{size}@{spacing}mm{oblique}"


def headline_case(seed: int = 0, fixed_padding: Optional[float] = -3024.0) -> Case:
    """The README headline: 160×160×120 phantom pair with a -3024 FOV ring in both scans.

    Built with the project's ``synthetic.make_pair`` (so it is the pair the tests use) when that
    module is importable, otherwise with this module's own phantom on the same grids. With
    ``fixed_padding=None`` it is the dataset-A/dataset-B pair: only the moving scan is padded.
    """
    where = "both" if fixed_padding is not None else "moving"
    name = f"{'headline' if where == 'both' else 'pair'}-160x160x120-3024-{where}"
    try:
        from CTAffineRegisterLib.synthetic import make_pair
    except ImportError:
        grid = Grid.centered((160, 160, 120), (2.0, 2.0, 2.5))
        moving_grid = Grid.centered((139, 139, 100), (2.3, 2.3, 3.0))
        pad = PaddingSpec(-3024, 155.0)
        fixed_pad = pad if fixed_padding is not None else PaddingSpec()
        return phantom_case(name, seed, grid, moving_grid, fixed_pad, pad, couch=True)
    pair = make_pair(seed=seed, fixed_padding=fixed_padding, moving_padding=-3024.0)
    fixed_label = "pad -3024 (inscribed FOV)" if fixed_padding is not None else "no padding"
    description = (
        f"synthetic.make_pair(seed={seed}) +couch; "
        f"fixed {_image_label(pair.fixed)} {fixed_label}; "
        f"moving {_image_label(pair.moving)} pad -3024 (inscribed FOV)"
    )
    return Case(
        name,
        pair.fixed,
        pair.moving,
        pair.true_transform,
        pair.body_points,
        pair.fixed_valid_mask,
        description,
    )


def _image_label(image: sitk.Image) -> str:
    size = "×".join(str(n) for n in image.GetSize())
    spacing = "×".join(f"{s:g}" for s in image.GetSpacing())
    return f"{size}@{spacing}mm"


def build_cases(quick: bool = False, only: Optional[list[str]] = None) -> list[Case]:
    """The benchmark's case list; ``quick`` keeps two small ones for a smoke run."""
    builders = quick_builders() if quick else full_builders()
    names = list(builders)
    if only:
        names = [n for n in names if any(key in n for key in only)]
    return [builders[n]() for n in names]


def quick_builders() -> dict[str, Callable[[], Case]]:
    small = Grid.centered((96, 96, 64), (3.5, 3.5, 4.5))
    builders: dict[str, Callable[[], Case]] = {
        "quick-phantom-96-3024-both": lambda: phantom_case(
            "quick-phantom-96-3024-both", 11, small, small, PaddingSpec(-3024, 160), PaddingSpec(-3024, 160)
        ),
    }
    if TORSO.exists():
        builders["quick-torso-2048-moving"] = lambda: torso_case(
            "quick-torso-2048-moving", 12, PaddingSpec(), PaddingSpec(-2048, 170.0)
        )
    return builders


def full_builders() -> dict[str, Callable[[], Case]]:
    g160 = Grid.centered((160, 160, 120), (2.0, 2.0, 2.5))
    fine = Grid.centered((256, 256, 90), (1.25, 1.25, 3.5))
    coarse = Grid.centered((128, 128, 100), (2.6, 2.6, 3.0))
    builders: dict[str, Callable[[], Case]] = {
        "headline-160x160x120-3024-both": headline_case,
        "pair-160x160x120-3024-moving": lambda: headline_case(seed=1, fixed_padding=None),
    }
    if TORSO.exists():
        builders.update(
            {
                "torso-3024-moving": lambda: torso_case(
                    "torso-3024-moving", 21, PaddingSpec(), PaddingSpec(-3024, 180.0)
                ),
                "torso-2048-fixed": lambda: torso_case(
                    "torso-2048-fixed", 22, PaddingSpec(-2048, 175.0), PaddingSpec(), (3.0, 3.0, 3.0)
                ),
                "torso-1500-both-fovcut": lambda: torso_case(
                    "torso-1500-both-fovcut", 23, PaddingSpec(-1500, 150.0), PaddingSpec(-1500, 150.0)
                ),
            }
        )
    builders.update(
        {
            "phantom-0-both-grids": lambda: phantom_case(
                "phantom-0-both-grids", 31, g160, coarse, PaddingSpec(0, 155.0), PaddingSpec(0, 160.0)
            ),
            "phantom-3024-moving-fovcut": lambda: phantom_case(
                "phantom-3024-moving-fovcut", 32, g160, coarse, PaddingSpec(), PaddingSpec(-3024, 120.0)
            ),
            "phantom-couch-3024-both-fine": lambda: phantom_case(
                "phantom-couch-3024-both-fine",
                33,
                fine,
                g160,
                PaddingSpec(-3024, 158.0),
                PaddingSpec(-3024, 155.0),
                couch=True,
            ),
            "phantom-oblique-2048-moving": lambda: phantom_case(
                "phantom-oblique-2048-moving",
                35,
                g160,
                Grid.centered((150, 150, 110), (2.2, 2.2, 2.8), _tilted(12.0)),
                PaddingSpec(),
                PaddingSpec(-2048, 165.0),
                couch=True,
            ),
            "phantom-nopad-control": lambda: phantom_case(
                "phantom-nopad-control", 34, g160, g160, PaddingSpec(), PaddingSpec()
            ),
        }
    )
    return builders
