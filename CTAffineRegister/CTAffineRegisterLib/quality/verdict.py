"""Is a registration result right? A verdict a person can act on, without knowing the true answer.

Body outlines cannot tell a right result from a wrong one: a torso moved 20 mm along its axis, or
a scan turned 180° in-plane, keeps a body Dice above 0.9. What a right result has, and a wrong one
lacks, was measured on perturbed known transforms and on real pairs of different patients
(``Testing/benchmarks/verdict_accuracy.py``):

- **It sits at the optimum of the similarity.** Moving a right result by a few mm or degrees along
  any axis, the body axis included, only makes fixed and moving agree less; a result 5 mm or 5° off
  is improved by the probe that moves it back. The similarity is the correlation of HU values at a
  few thousand fixed sample points on the 4 mm pyramid level: CT values are calibrated, so it needs
  no histogram, and it costs a millisecond per probe.
- **No flipped or mirrored placement fits better.** A scan whose header is wrong (rotated 180°,
  mirrored) registers to a placement whose outline fits; its flip, after a short local search, fits
  the anatomy far better.
- **Its anatomy overlaps.** Air inside the body (lungs, bowel gas) lands on air: scans that do not
  show the same region (a chest onto an abdomen) fail here even when their outlines overlap.
- **It is a plausible transform for human CT:** no mirror, scales within what patients differ by.
- **It has something to go on:** a slab of a few slices cannot be placed along the body axis.

Each check gives ok, suspect or failed with its figures; the verdict is the worst of them and the
reason names the checks that did not pass. Thresholds are relative (correlation gains are shares
of the correlation itself) because scans of different patients agree less than a patient with
itself. Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..core.affine import affine_parts
from ..core.pyramid import Level, coarse_grid, resample_mask

VERDICTS = ("ok", "suspect", "failed")

# A scan thinner than this along any axis (mm) cannot be placed along that axis.
MIN_COVERAGE_MM = 15.0
# About this many fixed sample points; a probe costs about a millisecond.
SAMPLE_POINTS = 3000
# Below this many sample points landing on valid moving data, the similarity says nothing.
MIN_SAMPLES = 200
# Voxel size (mm) of the pyramid level the probes sample: fine enough for 3 mm probes.
PROBE_LEVEL_MM = 4.0

# Probes around the result: shifts (mm) along, rotations (degrees) about, each patient axis, and
# scales (%) about the fixed body centre. Steps double so that 5 to 30 mm errors all find a probe
# that moves them back within a few mm.
SHIFTS_MM = (3.0, 6.0, 12.0, 24.0)
ROTATIONS_DEG = (4.0, 8.0, 16.0)
SCALES_PERCENT = (4.0, 8.0)
MOVE_KINDS = ("shift", "rotation", "scale")
# A probe that raises the correlation by more than this share of it shows the result is not at the
# optimum (right results: every probe lowers it; results 5 mm off: +3 % and more)...
PROBE_GAIN = 0.02
# ...plus this much per unit the correlation falls short of 1: two patients agree less, and the
# optimum of their correlation is less sharp (right results of different patients gain up to 2 %).
PROBE_GAIN_PER_MISMATCH = 0.04
# How far (mean mm over the fixed body) the improving move would carry the result, from which it is
# suspect / failed: right results need under a millimetre, results 5 mm off about 5.
MOVE_SUSPECT_MM = 3.0
MOVE_FAILED_MM = 15.0
# A flipped placement, after a local search, that beats the result by this share (plus this much per
# unit the correlation falls short of 1: the upper chests of two patients are nearly symmetric, and a
# mirror of the right result can fit them within 2 %) is the right one. Wrong headers gain 8-18 %.
FLIP_GAIN = 0.02
FLIP_GAIN_PER_MISMATCH = 0.08
# Air inside the body: Dice below these marks scans that do not show the same anatomy here...
AIR_DICE_SUSPECT = 0.25
AIR_DICE_FAILED = 0.15
# ...when air makes up at least this share of the compared body samples (else it is not judged).
MIN_AIR_SHARE = 0.03
AIR_HU = -500.0
# Body masks in the region both scans cover; different patients overlap 0.8-0.9 when right.
BODY_DICE_SUSPECT = 0.75
BODY_DICE_FAILED = 0.6
# Voxel size (mm) of the body Dice grid: an outline check needs no more.
BODY_GRID_MM = 6.0
# Axis scale factors (singular values) of the transform. Adults differ in size far more than a
# registration error changes scale: in the US Army's 2012 anthropometric survey (ANSUR II) chest
# breadth and depth span about 1.5-fold from the 5th percentile of women to the 95th of men, and in
# the general population (NHANES body measurements) waist circumference spans about 1.8-fold from
# the 5th to the 95th percentile; stature spans about 1.25-fold. Between two adults axis scales of
# 0.75-1.35 are common and 0.6-1.7 occur; the development set (``Testing/benchmarks/
# interpatient_dev.py``: real chests, one of them resized by 0.75-1.35 per axis) registers right at
# 0.71-1.37. So a scale is a figure, not a doubt, inside 0.6-1.7; outside it the pair is beyond two
# adults (a child onto an adult: worth a look); outside 0.4-2.5 no two human bodies explain it and
# the optimiser ran away.
SCALE_SUSPECT = (0.6, 1.7)
SCALE_FAILED = (0.4, 2.5)
# Largest over smallest axis scale: a body wider but not deeper than another gives up to about 1.5
# (and a head-foot scale unlike the in-plane ones about 1.7); beyond 2 one axis was stretched or
# sheared against the others, beyond 3 the transform is flattening the scan.
ANISOTROPY_SUSPECT = 2.0
ANISOTROPY_FAILED = 3.0
# Share of the fixed body that maps onto valid moving data, below which little was compared.
OVERLAP_SUSPECT = 0.1

AXIS_NAMES = ("left-right", "front-back", "head-foot")


@dataclass
class Check:
    """One line of evidence: its level, a short sentence, and its figures."""

    name: str
    level: str  # "ok", "suspect" or "failed"
    sentence: str
    figures: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Sampling the similarity


class SimilarityProbe:
    """Correlation of HU between fixed sample points and the moving scan under any affine map.

    The points are spread evenly over the fixed metric region (body plus margin, real data only) of
    the ~4 mm level; moving values are interpolated trilinearly on the moving level, and points that
    fall outside the moving scan or on its padding are left out.
    """

    def __init__(
        self,
        fixed_level: Level,
        moving_level: Level,
        fixed_body: sitk.Image,
        center,
        points: int = SAMPLE_POINTS,
    ):
        mask = (
            np.ones(fixed_level.image.GetSize()[::-1], bool)
            if fixed_level.mask is None
            else sitk.GetArrayViewFromImage(fixed_level.mask) > 0
        )
        index = np.argwhere(mask)
        index = index[:: max(1, len(index) // points)]
        self.fixed_values = sitk.GetArrayViewFromImage(fixed_level.image)[
            index[:, 0], index[:, 1], index[:, 2]
        ].astype(np.float64)
        self.points = _physical(fixed_level.image, index[:, ::-1].astype(float))
        self.center = np.asarray(center, dtype=float)
        self.fixed_in_body = _lookup(fixed_body, self.points)
        self._moving = sitk.GetArrayFromImage(moving_level.image).astype(np.float32)
        self._moving_mask = (
            None if moving_level.mask is None else sitk.GetArrayFromImage(moving_level.mask) > 0
        )
        self._moving_image = moving_level.image
        # probe_optimum's findings by (matrix, offset, kinds): the registration's last stage probes
        # the result it hands out, and the verdict's optimum check asks the same question again
        self._findings: dict[tuple, ProbeFinding] = {}

    def sample(self, matrix: np.ndarray, offset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flags of the points that land on valid moving data, and the moving values there.

        Args:
            matrix: a 3×3 matrix (fixed → moving, about the physical origin).
            offset: its translation.

        Returns:
            (flags, values).
        """
        mapped = self.points @ matrix.T + offset
        continuous = _continuous_index(self._moving_image, mapped)
        upper = np.array(self._moving.shape[::-1]) - 1
        inside = np.all((continuous >= 0) & (continuous <= upper), axis=1)
        if self._moving_mask is not None and inside.any():
            nearest = np.rint(continuous[inside]).astype(int)
            inside[inside] = self._moving_mask[nearest[:, 2], nearest[:, 1], nearest[:, 0]]
        return inside, _trilinear(self._moving, continuous[inside])

    def correlation(self, matrix: np.ndarray, offset: np.ndarray) -> tuple[Optional[float], float]:
        """Correlation of fixed and moving values (None with too few samples), and the sampled share.

        Args:
            matrix: a 3×3 matrix (fixed → moving, about the physical origin).
            offset: its translation.

        Returns:
            (correlation or None, sampled share).
        """
        inside, values = self.sample(matrix, offset)
        share = float(np.count_nonzero(inside)) / max(1, len(inside))
        if values.size < MIN_SAMPLES:
            return None, share
        fixed = self.fixed_values[inside] - self.fixed_values[inside].mean()
        moving = values - values.mean()
        norm = float(np.sqrt((fixed * fixed).sum() * (moving * moving).sum()))
        return (float((fixed * moving).sum() / norm) if norm > 0 else 0.0), share

    def displacement(self, change: np.ndarray, shift: np.ndarray) -> float:
        """Mean distance (mm) a fixed-space move about the body centre carries the sample points.

        Args:
            change: the move's 3×3 matrix, about the body centre.
            shift: its translation (mm).

        Returns:
            The mean distance (mm).
        """
        relative = self.points - self.center
        return float(np.linalg.norm(relative @ change.T - relative + shift, axis=1).mean())


def _physical(image: sitk.Image, continuous_index: np.ndarray) -> np.ndarray:
    matrix = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    return continuous_index @ matrix.T + np.array(image.GetOrigin())


def _continuous_index(image: sitk.Image, points: np.ndarray) -> np.ndarray:
    matrix = np.array(image.GetDirection()).reshape(3, 3) @ np.diag(image.GetSpacing())
    return (points - np.array(image.GetOrigin())) @ np.linalg.inv(matrix).T


def _lookup(mask: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Nearest-voxel value of a mask at physical points (False outside it)."""
    array = sitk.GetArrayViewFromImage(mask)
    index = np.rint(_continuous_index(mask, points)).astype(np.int64)
    inside = np.all((index >= 0) & (index < np.array(array.shape[::-1])), axis=1)
    result = np.zeros(len(points), dtype=bool)
    kept = index[inside]
    result[inside] = array[kept[:, 2], kept[:, 1], kept[:, 0]] > 0
    return result


def _trilinear(array: np.ndarray, continuous: np.ndarray) -> np.ndarray:
    """Values of a (z, y, x) array at continuous (x, y, z) indices inside it."""
    upper = np.array(array.shape[::-1]) - 2
    base = np.clip(np.floor(continuous).astype(np.int64), 0, np.maximum(upper, 0))
    fraction = continuous - base
    values = np.zeros(len(continuous))
    for dx in (0, 1):
        wx = fraction[:, 0] if dx else 1.0 - fraction[:, 0]
        x = np.minimum(base[:, 0] + dx, array.shape[2] - 1)
        for dy in (0, 1):
            wy = fraction[:, 1] if dy else 1.0 - fraction[:, 1]
            y = np.minimum(base[:, 1] + dy, array.shape[1] - 1)
            for dz in (0, 1):
                wz = fraction[:, 2] if dz else 1.0 - fraction[:, 2]
                z = np.minimum(base[:, 2] + dz, array.shape[0] - 1)
                values += wx * wy * wz * array[z, y, x]
    return values


# ---------------------------------------------------------------------------------------------
# Perturbations about the fixed body centre


def _rotation(axis: int, degrees: float) -> np.ndarray:
    angle = np.deg2rad(degrees)
    cosine, sine = np.cos(angle), np.sin(angle)
    first, second = [a for a in range(3) if a != axis]
    matrix = np.eye(3)
    matrix[first, first] = matrix[second, second] = cosine
    matrix[first, second], matrix[second, first] = -sine, sine
    return matrix


def _perturbed(
    matrix: np.ndarray, offset: np.ndarray, change: np.ndarray, shift, center
) -> tuple[np.ndarray, np.ndarray]:
    """T ∘ P for P(p) = change (p - center) + center + shift, all in fixed space."""
    center = np.asarray(center, dtype=float)
    inner_offset = center - change @ center + np.asarray(shift, dtype=float)
    return matrix @ change, matrix @ inner_offset + offset


def _probe_moves() -> list[tuple[str, int, float, np.ndarray, np.ndarray]]:
    """(kind, axis, amount, change, shift) for every probe; kind is "shift", "rotation" or "scale"."""
    moves = []
    for axis in range(3):
        for step in SHIFTS_MM:
            for sign in (-1.0, 1.0):
                shift = np.zeros(3)
                shift[axis] = sign * step
                moves.append(("shift", axis, sign * step, np.eye(3), shift))
        for step in ROTATIONS_DEG:
            for sign in (-1.0, 1.0):
                moves.append(("rotation", axis, sign * step, _rotation(axis, sign * step), np.zeros(3)))
    for step in SCALES_PERCENT:
        for sign in (-1.0, 1.0):
            moves.append(("scale", -1, sign * step, np.eye(3) * (1.0 + sign * step / 100.0), np.zeros(3)))
    return moves


_FLIPS = {
    "mirrored left-right": (-1.0, 1.0, 1.0),
    "mirrored front-back": (1.0, -1.0, 1.0),
    "mirrored head-foot": (1.0, 1.0, -1.0),
    "rotated 180° in-plane": (-1.0, -1.0, 1.0),
    "turned head-to-foot (180° about front-back)": (-1.0, 1.0, -1.0),
    "turned head-to-foot (180° about left-right)": (1.0, -1.0, -1.0),
}


# ---------------------------------------------------------------------------------------------
# The checks


def coverage_check(fixed: sitk.Image, moving: sitk.Image) -> Check:
    """A slab of a few slices cannot be placed along its thin axis: refuse to call it right.

    Args:
        fixed: the fixed scan.
        moving: the moving scan.

    Returns:
        The ``Check``: name, level ("ok", "suspect", "failed"), sentence and figures.
    """
    thin = []
    for role, image in (("fixed", fixed), ("moving", moving)):
        extent = min(n * s for n, s in zip(image.GetSize(), image.GetSpacing()))
        if extent < MIN_COVERAGE_MM:
            thin.append((role, extent, min(image.GetSize())))
    if thin:
        text = "; ".join(f"the {role} scan is a slab {mm:.0f} mm thick ({n} slices)" for role, mm, n in thin)
        return Check(
            "coverage",
            "failed",
            f"{text}: at least {MIN_COVERAGE_MM:.0f} mm are needed to place a scan along every axis",
            {"thinnest_mm": round(min(mm for _, mm, _ in thin), 1)},
        )
    return Check("coverage", "ok", "both scans are thick enough to place along every axis")


def plausibility_check(transform: sitk.Transform) -> Check:
    """Human CT needs no mirror, no extreme scale and no flattening shear to match another human's.

    Args:
        transform: the fixed→moving result (any linear ITK transform).

    Returns:
        The check: failed for a mirror or a singular matrix, a scale beyond ``SCALE_FAILED`` or an
        anisotropy beyond ``ANISOTROPY_FAILED``; suspect beyond the ``*_SUSPECT`` limits; ok else.
    """
    matrix, _ = affine_parts(transform)
    singular = np.linalg.svd(matrix, compute_uv=False)
    low, high = float(singular.min()), float(singular.max())
    anisotropy = high / low if low > 0 else float("inf")
    figures = {
        "scale_min": round(low, 4),
        "scale_max": round(high, 4),
        "anisotropy": round(anisotropy, 4) if np.isfinite(anisotropy) else None,
    }
    determinant = float(np.linalg.det(matrix))
    if low <= 1e-6 * max(high, 1e-12) or determinant == 0:
        return Check("plausibility", "failed", "the transform is singular (it flattens the scan)", figures)
    if determinant < 0:
        sentence = "the transform mirrors the scan (negative determinant)"
        return Check("plausibility", "failed", sentence, figures)
    text = f"axes scaled {low:.2f}..{high:.2f}"
    if low < SCALE_FAILED[0] or high > SCALE_FAILED[1]:
        return Check("plausibility", "failed", f"implausible scale ({text})", figures)
    if anisotropy > ANISOTROPY_FAILED:
        sentence = f"implausible stretch or shear ({text}, one axis {anisotropy:.1f}× another)"
        return Check("plausibility", "failed", sentence, figures)
    if low < SCALE_SUSPECT[0] or high > SCALE_SUSPECT[1]:
        return Check("plausibility", "suspect", f"scale beyond two adults ({text})", figures)
    if anisotropy > ANISOTROPY_SUSPECT:
        sentence = f"strong stretch or shear ({text}, one axis {anisotropy:.1f}× another)"
        return Check("plausibility", "suspect", sentence, figures)
    return Check("plausibility", "ok", f"plausible scale ({text})", figures)


def body_check(transform: sitk.Transform, fixed_analysis, moving_analysis) -> Check:
    """Dice of the body masks where both scans hold data, at about 6 mm: the gross outline check.

    Args:
        transform: fixed physical point → moving point.
        fixed_analysis: the fixed scan's ``BackgroundAnalysis``.
        moving_analysis: the moving scan's one.

    Returns:
        The ``Check``: name, level ("ok", "suspect", "failed"), sentence and figures.
    """
    grid = coarse_grid(fixed_analysis.body_mask, BODY_GRID_MM)
    fixed_body = resample_mask(fixed_analysis.body_mask, grid, sitk.Transform())
    fixed_valid = resample_mask(fixed_analysis.valid_mask, grid, sitk.Transform())
    moving_body = resample_mask(moving_analysis.body_mask, grid, transform)
    moving_valid = resample_mask(moving_analysis.valid_mask, grid, transform)
    region = (sitk.GetArrayViewFromImage(fixed_valid) > 0) & (sitk.GetArrayViewFromImage(moving_valid) > 0)
    a = (sitk.GetArrayViewFromImage(fixed_body) > 0) & region
    b = (sitk.GetArrayViewFromImage(moving_body) > 0) & region
    missing = [
        role
        for role, analysis in (("fixed", fixed_analysis), ("moving", moving_analysis))
        if not sitk.GetArrayViewFromImage(analysis.body_mask).any()
    ]
    if missing:
        sentence = f"no body found in the {' and '.join(missing)} scan; outline not checked"
        return Check("body", "suspect", sentence)
    total = int(a.sum() + b.sum())
    if total == 0:
        return Check("body", "failed", "no body where both scans hold data", {"body_dice": None})
    dice = 2.0 * float(np.count_nonzero(a & b)) / total
    figures = {"body_dice": round(dice, 4)}
    if dice < BODY_DICE_FAILED:
        return Check("body", "failed", f"body outlines overlap poorly (Dice {dice:.2f})", figures)
    if dice < BODY_DICE_SUSPECT:
        sentence = f"body outlines overlap less than expected (Dice {dice:.2f})"
        return Check("body", "suspect", sentence, figures)
    return Check("body", "ok", f"body outlines overlap (Dice {dice:.2f})", figures)


def air_check(probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray) -> Check:
    """Air inside the fixed body (lungs, bowel gas) must meet air in the moving scan, and the other
    way round, at the same points. Only the fixed body decides what is inside: a moving body mask is
    open where a field of view cuts the body, and would leave its lungs out.

    Args:
        probe: the sampled similarity of both scans (``SimilarityProbe``).
        matrix: the transform's 3×3 matrix, about the physical origin.
        offset: its translation, about the physical origin.

    Returns:
        The ``Check``: name, level ("ok", "suspect", "failed"), sentence and figures.
    """
    inside, values = probe.sample(matrix, offset)
    in_body = probe.fixed_in_body[inside]
    fixed_air = (probe.fixed_values[inside] < AIR_HU) & in_body
    moving_air = (values < AIR_HU) & in_body
    body_samples = int(np.count_nonzero(in_body))
    amount = int(fixed_air.sum() + moving_air.sum())
    share = amount / max(1, 2 * body_samples)
    if share < MIN_AIR_SHARE:
        return Check(
            "air",
            "ok",
            "too little air inside the body to compare",
            {"air_dice": None, "air_share": round(share, 4)},
        )
    dice = 2.0 * float(np.count_nonzero(fixed_air & moving_air)) / amount
    figures = {"air_dice": round(dice, 4), "air_share": round(share, 4)}
    if dice < AIR_DICE_FAILED:
        return Check(
            "air",
            "failed",
            f"air inside the body does not land on air (Dice {dice:.2f}): "
            "the scans may not show the same region",
            figures,
        )
    if dice < AIR_DICE_SUSPECT:
        return Check("air", "suspect", f"air inside the body overlaps little (Dice {dice:.2f})", figures)
    return Check("air", "ok", f"air inside the body overlaps (Dice {dice:.2f})", figures)


@dataclass
class ProbeFinding:
    """The best of the probe moves around a result: how much it gains and where it would go."""

    correlation: Optional[float]  # the result's own correlation (None: too few samples)
    overlap_share: float
    gain: float  # best probe's correlation gain, as a share of the correlation (<= 0: none improves)
    key: Optional[tuple[str, int]] = None  # (kind, axis) of the best probe
    amount: float = 0.0  # the parabola's estimate of the best move along that probe
    moved_mm: float = 0.0  # how far that move carries the fixed body (mean mm)

    def move_text(self) -> Optional[str]:
        return _move_text(self.key, self.amount) if self.key is not None and self.gain > 0 else None

    def move(self) -> tuple[np.ndarray, np.ndarray]:
        """The fixed-space change and shift of the estimated best move."""
        return _move(self.key, self.amount)


def probe_optimum(
    probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray, kinds: tuple[str, ...] = MOVE_KINDS
) -> ProbeFinding:
    """Probe shifts, rotations and scales (of ``kinds``) around a result; report the best one.

    The best probe's curve gives, by a parabola through its neighbours, the move that would improve
    the match most; its size is the mean distance it would move the fixed body (mm), so a 10° turn
    of a torso weighs as much as the 20 mm it displaces the body's edge.

    Args:
        probe: fixed sample points and the moving level to sample.
        matrix: the result's fixed→moving matrix (about the origin).
        offset: the result's fixed→moving offset (about the origin).
        kinds: which moves to probe ("shift", "rotation", "scale"): a rigid result cannot scale.

    Returns:
        The finding; ``correlation`` is None when too few points land on valid moving data.
    """
    memo = (np.asarray(matrix, float).tobytes(), np.asarray(offset, float).tobytes(), tuple(kinds))
    if memo not in probe._findings:
        probe._findings[memo] = _probe_optimum(probe, matrix, offset, kinds)
    return probe._findings[memo]


def _probe_optimum(probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray, kinds) -> ProbeFinding:
    base, share = probe.correlation(matrix, offset)
    if base is None:
        return ProbeFinding(None, share, 0.0)
    curves: dict[tuple[str, int], dict[float, float]] = {}
    for kind, axis, amount, change, shift in _probe_moves():
        if kind not in kinds:
            continue
        value, _ = probe.correlation(*_perturbed(matrix, offset, change, shift, probe.center))
        curves.setdefault((kind, axis), {0.0: base})[amount] = -np.inf if value is None else value
    scale = max(abs(base), 0.05)
    gain, key = max(((max(curve.values()) - base) / scale, key) for key, curve in curves.items())
    curve = curves[key]
    estimate = _vertex(curve, max(curve, key=curve.get))
    moved_mm = probe.displacement(*_move(key, estimate))
    return ProbeFinding(base, share, float(gain), key, estimate, moved_mm)


def not_at_optimum(finding: ProbeFinding) -> bool:
    """True when a nearby move improves the match enough, and moves the body far enough, to matter.

    Args:
        finding: what ``probe_optimum`` found around a result.

    Returns:
        True when the best probe gains more than the threshold (``PROBE_GAIN`` plus
        ``PROBE_GAIN_PER_MISMATCH`` per unit the correlation falls short of 1) and moves the body at
        least ``MOVE_SUSPECT_MM``.
    """
    if finding.correlation is None:
        return False
    threshold = _threshold(PROBE_GAIN, PROBE_GAIN_PER_MISMATCH, finding.correlation)
    return finding.gain > threshold and finding.moved_mm >= MOVE_SUSPECT_MM


def optimum_check(probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray) -> Check:
    """Probe shifts, rotations and scales around the result: a right one cannot be improved."""
    found = probe_optimum(probe, matrix, offset)
    if found.correlation is None:
        return Check(
            "optimum",
            "failed",
            f"only {found.overlap_share * 100:.0f}% of the fixed body maps onto valid moving data; "
            "nothing to compare",
            {"correlation": None, "overlap_share": round(found.overlap_share, 4)},
        )
    gain, moved_mm = found.gain, found.moved_mm
    figures = {
        "correlation": round(found.correlation, 4),
        "overlap_share": round(found.overlap_share, 4),
        "probe_gain": round(float(gain), 4),
        "probe_move": found.move_text(),
        "probe_move_mm": round(moved_mm, 1) if gain > 0 else 0.0,
    }
    if not not_at_optimum(found):
        level, sentence = "ok", "no shift, rotation or scale nearby improves the match"
    else:
        level = "failed" if moved_mm >= MOVE_FAILED_MM else "suspect"
        sentence = (
            f"the match improves by {gain * 100:.0f}% when the result is {found.move_text()} "
            f"(the body moves {moved_mm:.0f} mm): it is not at the optimum"
        )
    if level == "ok" and found.overlap_share < OVERLAP_SUSPECT:
        level = "suspect"
        sentence = f"only {found.overlap_share * 100:.0f}% of the fixed body maps onto moving data"
    return Check("optimum", level, sentence, figures)


def flip_check(probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray) -> Check:
    """Is a mirrored or 180°-turned placement, after a short local search, a better fit?

    Args:
        probe: the sampled similarity of both scans (``SimilarityProbe``).
        matrix: the transform's 3×3 matrix, about the physical origin.
        offset: its translation, about the physical origin.

    Returns:
        The ``Check``: name, level ("ok", "suspect", "failed"), sentence and figures.
    """
    own = _local_search(probe, matrix, offset)
    if own is None:
        return Check("flip", "ok", "not checked (too few samples)", {"flip_gain": None})
    best_gain, best_name = -np.inf, None
    for name, signs in _FLIPS.items():
        flipped = _perturbed(matrix, offset, np.diag(signs), np.zeros(3), probe.center)
        value = _local_search(probe, *flipped)
        if value is not None and (value - own) / max(abs(own), 0.05) > best_gain:
            best_gain, best_name = (value - own) / max(abs(own), 0.05), name
    figures = {"flip_gain": round(float(best_gain), 4), "best_flip": best_name}
    if best_gain > _threshold(FLIP_GAIN, FLIP_GAIN_PER_MISMATCH, own):
        return Check(
            "flip",
            "failed",
            f"the moving scan fits {best_gain * 100:.0f}% better {best_name}: check its orientation (header)",
            figures,
        )
    return Check("flip", "ok", "no mirrored or turned placement fits better", figures)


def _threshold(floor: float, per_mismatch: float, correlation: float) -> float:
    """A gain threshold that grows as the scans agree less: their optimum is less sharp."""
    return floor + per_mismatch * (1.0 - min(max(correlation, 0.0), 1.0))


def _local_search(probe: SimilarityProbe, matrix: np.ndarray, offset: np.ndarray) -> Optional[float]:
    """Best correlation reached by greedy shifts of 12 and then 4 mm along each axis: a flip about
    the fixed body centre lands within a few centimetres of where it fits best."""
    best, _ = probe.correlation(matrix, offset)
    if best is None:
        return None
    current = offset
    for step in (12.0, 4.0):
        for axis in range(3):
            for sign in (-1.0, 1.0):
                shift = np.zeros(3)
                shift[axis] = sign * step
                candidate = current + matrix @ shift
                value, _ = probe.correlation(matrix, candidate)
                if value is not None and value > best:
                    best, current = value, candidate
    return best


def _vertex(curve: dict[float, float], best: float) -> float:
    """Where a parabola through the best probe and its neighbours peaks (within those neighbours)."""
    amounts = sorted(curve)
    index = amounts.index(best)
    if index == 0 or index == len(amounts) - 1:
        return best
    (x0, x1, x2) = amounts[index - 1 : index + 2]
    (y0, y1, y2) = (curve[x0], curve[x1], curve[x2])
    if not all(np.isfinite((y0, y1, y2))):
        return best
    denominator = (x0 - x1) * (x0 - x2) * (x1 - x2)
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denominator
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denominator
    if a >= 0:
        return best
    return float(min(max(-b / (2 * a), x0), x2))


def _move(key, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """The fixed-space change and shift of a probe of ``kind`` along ``axis`` by ``amount``."""
    kind, axis = key
    if kind == "shift":
        shift = np.zeros(3)
        shift[axis] = amount
        return np.eye(3), shift
    if kind == "rotation":
        return _rotation(axis, amount), np.zeros(3)
    return np.eye(3) * (1.0 + amount / 100.0), np.zeros(3)


def _move_text(key, amount: float) -> str:
    kind, axis = key
    if kind == "shift":
        return f"moved {abs(amount):.0f} mm along the {AXIS_NAMES[axis]} axis"
    if kind == "rotation":
        return f"turned {abs(amount):.0f}° about the {AXIS_NAMES[axis]} axis"
    return f"scaled {abs(amount):.0f}% {'larger' if amount > 0 else 'smaller'}"


# ---------------------------------------------------------------------------------------------
# The verdict


def judge(
    transform: sitk.Transform,
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_analysis,
    moving_analysis,
    fixed_level: Level,
    moving_level: Level,
    center,
    probe: Optional[SimilarityProbe] = None,
) -> dict:
    """The verdict on ``transform`` (fixed→moving), from levels of about 4 mm of both scans.

    ``probe`` is the ``SimilarityProbe`` of these levels when the caller already built one (the
    registration does, for its last stage), so its sample points are not gathered twice.

    Returns a JSON-able dict: ``verdict``, ``reason`` (one sentence), ``figures`` (numbers) and
    ``checks`` (each check's level and sentence).

    Args:
        transform: fixed physical point → moving point.
        fixed: the fixed scan.
        moving: the moving scan.
        fixed_analysis: its ``BackgroundAnalysis``.
        moving_analysis: the moving scan's one.
        fixed_level: the fixed pyramid level of about 4 mm (``build_pyramids``).
        moving_level: the moving one.
        center: the fixed body centre the probes turn about.

    Returns:
        The verdict dict described above.
    """
    checks = [coverage_check(fixed, moving), plausibility_check(transform)]
    checks.append(body_check(transform, fixed_analysis, moving_analysis))
    matrix, offset = affine_parts(transform, (0.0, 0.0, 0.0))
    probe = probe or SimilarityProbe(fixed_level, moving_level, fixed_analysis.body_mask, center)
    checks.append(optimum_check(probe, matrix, offset))
    checks.append(flip_check(probe, matrix, offset))
    checks.append(air_check(probe, matrix, offset))
    return summarize(checks)


def summarize(checks: list[Check]) -> dict:
    """The worst level of all checks, one sentence naming why, and every figure.

    Args:
        checks: every check made.

    Returns:
        ``verdict``, ``reason``, ``figures`` and ``checks``, JSON-able.
    """
    verdict = max((check.level for check in checks), key=VERDICTS.index)
    failing = [check.sentence for check in checks if check.level != "ok"]
    figures: dict = {}
    for check in checks:
        figures.update(check.figures)
    if failing:
        reason = "; ".join(failing)
    else:
        reason = "passed every check: no nearby move or flip fits better" + "".join(
            f", {label} {figures[key]:.2f}"
            for key, label in (
                ("correlation", "HU correlation"),
                ("body_dice", "body Dice"),
                ("air_dice", "air Dice"),
            )
            if figures.get(key) is not None
        )
    return {
        "verdict": verdict,
        "reason": reason,
        "figures": figures,
        "checks": {check.name: {"level": check.level, "sentence": check.sentence} for check in checks},
    }
