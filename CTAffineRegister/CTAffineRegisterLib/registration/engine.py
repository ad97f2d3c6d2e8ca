"""Affine registration of two CT scans that is not fooled by field-of-view padding, and fast.

Recipe: padding becomes air and values are clamped to the CT range; the metric samples only the
fixed body (and only valid moving data), so neither the FOV edge nor the padding drives it;
several initial placements are compared by the metric; then rigid → similarity → affine on a
small, self-built pyramid with a fixed number of samples per level (cost does not grow with the
scan) and Mattes mutual information. Coarse levels search with regular steps, the level above
the finest refines with a line-searched conjugate gradient, the finest level is polished twice side
by side on independent sample sets and the mean kept. A stage that makes the coarse metric clearly
worse is undone.

Pure module: SimpleITK, numpy and the standard library. Analyses are
``background.BackgroundAnalysis`` objects (``valid_mask``, ``body_mask``, ``air_value`` are used).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Callable, Optional, Union

import numpy as np
import SimpleITK as sitk

from ..core import morphology
from ..core.affine import (
    affine_about,
    affine_parts,
    as_type,
    center_of,
    copy_transform,
    is_rigid,
    mapping_key,
)
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
from ..errors import RegistrationCancelled, RegistrationError
from ..io.arguments import check_register_images
from ..quality.verdict import MIN_COVERAGE_MM, PROBE_LEVEL_MM, judge
from ..resample.scans import prepare_for_registration
from .initialization import candidate_placements, mask_points, overlap_fraction

TRANSFORM_TYPES = ("rigid", "similarity", "affine")
# A stage whose result worsens the coarse metric by more than this share is undone (runaway steps
# worsen it by tens of percent; a good refinement changes the coarse value by well under one).
GUARD_TOLERANCE = 0.03
# Below this share of the fixed body landing on valid moving data there is nothing to register.
MIN_OVERLAP = 0.02


@dataclass
class RegistrationOptions:
    """Every knob with its default in one place; the comments say why the default is what it is."""

    # Final transform type; rigid and similarity runs stop after their own stage.
    transform: str = "affine"
    # fixed→moving starting transform; when given, no initial placement is searched.
    initial_transform: Optional[sitk.Transform] = None
    # Finest pyramid voxel size (mm; never below the scan's own). Thousands of samples on a 2 mm grid
    # pin a CT's anatomy well below a millimetre; finer levels cost time and do not change the answer.
    finest_spacing_mm: float = 2.0
    # Pyramid levels, each twice as coarse as the next (2, 4, 8 mm by default).
    level_count: int = 3
    # Metric samples per level: the cost of an iteration is proportional to this, not to scan size.
    sampling_points: int = 5000
    # The finest level decides the last tenths of a millimetre. A fixed sample set makes the metric
    # ripple and a descent stops in a ripple, so each round runs two polishes on independent sample
    # sets side by side and keeps their mean. Real anatomy is rich enough that the two agree within
    # polish_agreement_mm after one round; smooth phantoms end 0.3-0.8 mm apart, and a second round
    # from the mean (fresh samples, shorter steps) brings them closer. Measured on 14 pairs: one
    # polish on 15 000 samples 0.32 mm mean TRE (worst 0.81), on 45 000 samples 0.23 (0.64), these
    # two rounds 0.20 (worst 0.47 over two seeds), at about the time of one 45 000-sample polish.
    polish_sampling_points: int = 15000
    polish_agreement_mm: float = 0.15
    polish_rounds: int = 2
    # Mattes histogram bins. Measured on 23 pairs: 48 gives 0.28 mm mean TRE, 32 blurs soft-tissue
    # contrast (0.36 mm), 64 is too noisy for a few thousand samples (0.40 mm, one 1.7 mm outlier).
    histogram_bins: int = 48
    # Iteration cap per level; regular-step descent usually converges well before it.
    max_iterations_per_level: int = 150
    # First steps, in voxels of the level (about mm of physical shift per voxel): one voxel everywhere;
    # on the finest level a smaller first step cannot leave the refine level's answer far enough.
    search_step_voxels: float = 1.0
    refine_step_voxels: float = 1.0
    polish_step_voxels: float = 1.0
    # Regular-step descent shrinks its step by this on every turn; 0.5 stops too soon on a noisy metric.
    relaxation: float = 0.7
    # Polishing stops when the step falls below this (mm): a tenth of the accuracy reached; smaller
    # only adds iterations (0.01 costs 20% more time for the same TRE).
    min_step_mm: float = 0.03
    # Line-searched refinement stops when the metric changed less than this over the window.
    convergence_value: float = 1e-5
    convergence_window: int = 5
    # Golden-section line search evaluations per refinement iteration.
    line_search_iterations: int = 5
    # Fixed random seed for the metric's sample positions: identical inputs give identical results.
    seed: int = 20240611
    # Threads (and work units) of each registration method and its metric. 1 gives bit-identical
    # results on every machine: with several work units the Mattes metric adds its per-unit histograms
    # and derivatives in an order that depends on timing (1e-8 differences that line searches grow to
    # 0.1 mm), and with a few thousand samples one thread is about as fast. Set on each method object,
    # never process-wide: in Slicer every other module shares ITK's global default. None = the global
    # default (may be faster on a large idle machine; not bit-reproducible).
    number_of_threads: Optional[int] = 1
    # How far the fixed body mask is grown (mm) so the skin-air edge, a strong feature, is sampled.
    body_margin_mm: float = 8.0

    def to_dict(self) -> dict:
        """Plain values for a JSON report; the initial transform is summarised by its type."""
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        initial = values.pop("initial_transform")
        values["initial_transform"] = None if initial is None else initial.GetName()
        return values

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORM_TYPES:
            raise ValueError(f"transform must be one of {TRANSFORM_TYPES}, not {self.transform!r}")
        if self.level_count < 1:
            raise ValueError("level_count must be at least 1")
        if self.sampling_points < 100:
            raise ValueError("sampling_points below 100 cannot estimate mutual information")


@dataclass
class ProgressEvent:
    """One optimizer iteration: ``iteration`` counts over the whole run, so it only increases."""

    stage: str
    level: int
    iteration: int
    metric: float
    fraction: float = 0.0  # rough share of the run done, for a progress bar


@dataclass
class StageInfo:
    """What one stage did at one pyramid level."""

    stage: str
    level: int
    spacing_mm: tuple[float, ...]
    iterations: int
    metric: float
    stop_reason: str
    seconds: float
    reverted: bool = False  # the result made the coarse metric worse and was undone

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "level": self.level,
            "spacing_mm": [round(s, 3) for s in self.spacing_mm],
            "iterations": self.iterations,
            "metric": round(self.metric, 6),
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 3),
            "reverted": self.reverted,
        }


@dataclass
class RegistrationResult:
    """The fixed→moving transform and how it was reached."""

    transform: sitk.Transform
    metric: float
    stop_reason: str
    iterations: int
    stages: list[StageInfo]
    seconds: float
    quality: dict
    initialization: str = ""
    options: Optional[RegistrationOptions] = field(default=None, repr=False)
    # How far apart (mm, mean over the fixed body) two polishes on independent sample sets ended: an
    # estimate of how much the sampling alone moves the answer. None when there was no polish.
    polish_spread_mm: Optional[float] = None

    def to_dict(self) -> dict:
        matrix, translation = affine_parts(self.transform)
        return {
            "transform_type": self.transform.GetName(),
            "matrix": [round(float(v), 8) for v in matrix.ravel()],
            "translation_mm": [round(float(v), 6) for v in translation],
            "center_mm": [round(float(v), 6) for v in center_of(self.transform)],
            "metric": round(self.metric, 6),
            "stop_reason": self.stop_reason,
            "iterations": self.iterations,
            "seconds": round(self.seconds, 3),
            "initialization": self.initialization,
            "polish_spread_mm": None if self.polish_spread_mm is None else round(self.polish_spread_mm, 3),
            "quality": dict(self.quality),
            "stages": [stage.to_dict() for stage in self.stages],
            "options": None if self.options is None else self.options.to_dict(),
        }


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Union[Callable[[], bool], threading.Event]


def register_images(
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_analysis,
    moving_analysis,
    options: Optional[RegistrationOptions] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
) -> RegistrationResult:
    """Find the transform mapping fixed physical points to moving physical points (ITK convention).

    ``cancel`` is a callable returning True to stop, or a ``threading.Event`` (stop once set); it is
    checked every iteration and a stop raises ``RegistrationCancelled``. During the final polish it is
    also called from a helper thread, so a callable must be thread-safe (an Event is). ``progress`` is
    only ever called from the calling thread.
    """
    check_register_images(locals())  # TypeError/ValueError naming a bad argument, before any work
    options = options or RegistrationOptions()
    should_stop = _cancel_check(cancel)
    _check_input(fixed, "fixed")
    _check_input(moving, "moving")
    _check_analysis(fixed, fixed_analysis, "fixed")
    _check_analysis(moving, moving_analysis, "moving")
    return _register(fixed, moving, fixed_analysis, moving_analysis, options, progress, should_stop)


def _register(fixed, moving, fixed_analysis, moving_analysis, options, progress, should_stop):
    started = time.perf_counter()

    fixed_levels, moving_levels, center = _pyramids(fixed, moving, fixed_analysis, moving_analysis, options)
    _raise_if_cancelled(should_stop)
    if options.initial_transform is not None:
        start, initialization = affine_about(options.initial_transform, center), "user"
    else:
        start, initialization = _best_initial(
            fixed_levels[0], moving_levels[0], fixed_analysis, moving_analysis, center, options
        )
    _check_overlap(start, fixed_levels[0], moving_levels[0])

    plan = _plan(options, len(fixed_levels), start)
    runner = _Runner(fixed_levels, moving_levels, options, progress, should_stop, len(plan))
    transform = start
    for step in plan:
        transform = runner.run(as_type(transform, step.stage), step)
        if runner.stages[-1].reverted and step.role == "refine":
            transform = runner.run(transform, step, step_scale=0.25)  # once more, with shorter steps
    probe_level = _closest_level(fixed_levels, PROBE_LEVEL_MM)
    quality = judge(
        transform,
        fixed,
        moving,
        fixed_analysis,
        moving_analysis,
        fixed_levels[probe_level],
        moving_levels[probe_level],
        center,
    )
    last = runner.stages[-1]
    return RegistrationResult(
        transform=transform,
        metric=last.metric,
        stop_reason=last.stop_reason,
        iterations=sum(stage.iterations for stage in runner.stages),
        stages=runner.stages,
        seconds=time.perf_counter() - started,
        quality=quality,
        initialization=initialization,
        options=options,
        polish_spread_mm=runner.polish_spread_mm,
    )


# ---------------------------------------------------------------------------------------------
# Inputs and pyramid


def _check_input(image: sitk.Image, role: str) -> None:
    if image.GetDimension() != 3:
        raise RegistrationError(f"{role} image is {image.GetDimension()}D; registration needs a 3D volume")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise RegistrationError(
            f"{role} image has {image.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    if min(image.GetSize()) < 2:
        raise RegistrationError(f"{role} image is too thin to register (size {image.GetSize()})")
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


def _pyramids(fixed, moving, fixed_analysis, moving_analysis, options):
    """Prepared, cropped, shrunk images and metric masks for both scans, plus the rotation centre."""
    fixed_ready = prepare_for_registration(fixed, fixed_analysis, compact=True)
    moving_ready = prepare_for_registration(moving, moving_analysis, compact=True)
    _check_not_constant(fixed_ready, fixed_analysis, "fixed")
    _check_not_constant(moving_ready, moving_analysis, "moving")

    fixed_valid = as_mask(fixed_analysis.valid_mask)
    moving_valid = as_mask(moving_analysis.valid_mask)
    region = _metric_region(fixed_analysis, fixed_valid, options)
    if count(region) < 50:
        raise RegistrationError("fixed image has too few valid body voxels to register")
    center = centroid(region)
    fixed_ready, fixed_valid = crop_to(region, fixed_ready, fixed_valid)

    targets = _level_targets(fixed.GetSpacing(), options)
    fixed_factors = [shrink_factors(fixed.GetSpacing(), target, fixed_ready.GetSize()) for target in targets]
    moving_factors = [
        shrink_factors(moving.GetSpacing(), target, moving_ready.GetSize()) for target in targets
    ]
    fixed_levels = build_levels(
        fixed_ready, region, fixed_factors, erode_mask_voxels=1, limit_mask=_padded_only(fixed_valid)
    )
    moving_levels = build_levels(
        moving_ready, None, moving_factors, erode_mask_voxels=1, limit_mask=_padded_only(moving_valid)
    )
    for level in fixed_levels:
        if level.mask is not None and count(level.mask) < 200:
            raise RegistrationError(
                f"fixed image has too few valid body voxels to register ({count(level.mask)} at "
                f"{_spacing_text(level.spacing)} mm; at least 200 are needed)"
            )
    return fixed_levels, moving_levels, center


def build_pyramids(
    fixed, moving, fixed_analysis, moving_analysis, finest_spacing_mm: float, level_count: int
):
    """Prepared pyramids of both scans (coarse first) and the fixed body centre, as the registration
    builds them: the verdict of ``check`` samples the same images as the one of ``register``."""
    options = RegistrationOptions(finest_spacing_mm=finest_spacing_mm, level_count=level_count)
    return _pyramids(fixed, moving, fixed_analysis, moving_analysis, options)


def _closest_level(levels: list[Level], target_mm: float) -> int:
    """Index of the level whose mean voxel size is closest to ``target_mm``."""
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


# ---------------------------------------------------------------------------------------------
# Initialisation


def _best_initial(fixed_level: Level, moving_level: Level, fixed_analysis, moving_analysis, center, options):
    """The candidate placement with the best coarse metric, weighted by overlap (little overlap must
    not look like a match: mutual information of a few samples is high by chance)."""
    scored = []
    for name, transform in candidate_placements(fixed_analysis, moving_analysis, center).items():
        share = overlap_fraction(transform, fixed_level, moving_level)
        value = _dense_metric(transform, fixed_level, moving_level, options) if share >= MIN_OVERLAP else None
        if value is not None:
            scored.append((value * share, name, transform))
    if not scored:
        raise RegistrationError(
            "the images do not overlap for any initial placement (body centres, image centres, "
            "physical coordinates); check that both are CT scans of the same region"
        )
    scored.sort(key=lambda item: item[0])
    return scored[0][2], scored[0][1]


def _dense_metric(transform, fixed_level: Level, moving_level: Level, options) -> Optional[float]:
    """Metric over every masked voxel (MetricEvaluate ignores sampling): affordable on coarse levels only."""
    reg = _method(fixed_level, moving_level, options)
    reg.SetInitialTransform(transform, inPlace=False)
    try:
        return float(reg.MetricEvaluate(fixed_level.image, moving_level.image))
    except RuntimeError:
        return None


def _check_overlap(transform, fixed_level: Level, moving_level: Level) -> None:
    """Enough fixed body samples must land on valid moving data, or the metric has nothing to compare."""
    share = overlap_fraction(transform, fixed_level, moving_level)
    if share < MIN_OVERLAP:
        raise RegistrationError(
            f"no overlap: after initialisation only {share * 100:.1f}% of the fixed body maps onto valid "
            "moving data; the images do not cover the same anatomy or the initial transform is wrong"
        )


# ---------------------------------------------------------------------------------------------
# Stages


@dataclass
class _Step:
    """One optimisation: a transform type at a pyramid level, with the optimiser's role."""

    stage: str
    level: int
    role: str  # "search": coarse, big steps; "refine": line-searched; "polish": regular steps, finest level


def _plan(options: RegistrationOptions, level_count: int, start: sitk.Transform) -> list[_Step]:
    """Coarse to fine. On the coarsest level the degrees of freedom come in one at a time (rigid
    settles the position, similarity the size, affine the rest): each is cheap there, and a shear
    cannot make up for a misplacement. Every finer level up to the one above the finest refines the
    final type with a line search; the finest level polishes it. Bringing scale in only at 4 mm left
    one phantom pair in ten 5 mm off (a 10 % scale is 15 mm at the body's edge)."""
    final, fine = options.transform, level_count - 1
    refine = max(0, level_count - 2)
    if final == "affine" and isinstance(start, sitk.AffineTransform) and not is_rigid(start):
        steps = [_Step("affine", level, "refine") for level in range(refine + 1)]
    else:
        kinds = TRANSFORM_TYPES[: TRANSFORM_TYPES.index(final) + 1]
        steps = [_Step("rigid", 0, "search")] + [_Step(kind, 0, "refine") for kind in kinds[1:]]
        steps += [_Step(final, level, "refine") for level in range(1, refine + 1)]
    if fine != refine:
        steps.append(_Step(final, fine, "polish"))
    return steps


def _sampling_percentage(level: Level, points: int) -> float:
    """A fixed number of samples: the share of the level's voxels that puts ``points`` in the mask."""
    voxels = level.image.GetNumberOfPixels() if level.mask is None else max(1, count(level.mask))
    return float(min(1.0, points / voxels))


def _method(
    fixed_level: Level,
    moving_level: Level,
    options: RegistrationOptions,
    points: Optional[int] = None,
    seed: Optional[int] = None,
) -> sitk.ImageRegistrationMethod:
    """Mattes MI on the level images with masks and a fixed, seeded sample set; no built-in pyramid."""
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(options.histogram_bins)
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    percentage = _sampling_percentage(fixed_level, points or options.sampling_points)
    reg.SetMetricSamplingPercentage(percentage, options.seed if seed is None else seed)
    # gradients at the sample points only, instead of a gradient image over the whole level
    reg.MetricUseFixedImageGradientFilterOff()
    reg.MetricUseMovingImageGradientFilterOff()
    if fixed_level.mask is not None:
        reg.SetMetricFixedMask(fixed_level.mask)
    if moving_level.mask is not None:
        reg.SetMetricMovingMask(moving_level.mask)
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetShrinkFactorsPerLevel([1])
    reg.SetSmoothingSigmasPerLevel([0])
    _limit_threads(reg, options.number_of_threads)
    return reg


def _limit_threads(reg: sitk.ImageRegistrationMethod, threads: Optional[int]) -> None:
    """This method's thread count, its metric's included; the process-wide default is left alone.

    SimpleITK (2.3.1 as in Slicer 5.8, and 2.5) hands the method's number of *work units* to the metric
    (``SetMaximumNumberOfWorkUnits``, which caps both its threads and its work units) and to the
    optimizer; the method's number of *threads* only reaches the method's own threader. A metric left
    at the default splits its samples into as many work units as ITK's global thread count and adds
    their results in whatever order the threads finish.
    """
    if threads is None:
        return
    reg.SetNumberOfThreads(int(threads))
    reg.SetNumberOfWorkUnits(int(threads))


@dataclass
class _Outcome:
    """What one optimiser run ended with (its transform was changed in place)."""

    transform: sitk.Transform
    metric: float
    stop_reason: str


class _Runner:
    """Runs (stage, level) optimisations, reports progress and watches for cancellation."""

    def __init__(self, fixed_levels, moving_levels, options, progress, should_stop, planned: int):
        self.fixed_levels = fixed_levels
        self.moving_levels = moving_levels
        self.options = options
        self.progress = progress
        self.should_stop = should_stop
        self.stages: list[StageInfo] = []
        self.total_iterations = 0
        self.planned = max(1, planned)
        self.polish_spread_mm: Optional[float] = None
        self._guard_cache: Optional[tuple] = None
        # The share of the run reported last: a polish's second round restarts its optimiser's
        # iteration count, and a reverted stage is run once more, so the raw share can step back
        # or pass 1; a progress bar only moves forward, up to 1.
        self._fraction = 0.0

    def run(self, transform: sitk.Transform, step: _Step, step_scale: float = 1.0) -> sitk.Transform:
        """One stage: optimise, undo it if the coarse metric got clearly worse, and record it."""
        _raise_if_cancelled(self.should_stop)
        before = self._guard_metric(transform)
        starting_point = copy_transform(transform)
        iterations_before = self.total_iterations
        started = time.perf_counter()
        if step.role == "polish":
            outcome = self._polish(transform, step)
        else:
            points, seed = self.options.sampling_points, self.options.seed
            outcome = self._optimize(transform, step, step_scale, points, seed)
        transform, stop_reason = outcome.transform, outcome.stop_reason
        after = self._guard_metric(transform)
        reverted = before is not None and (after is None or after > before + GUARD_TOLERANCE * abs(before))
        if reverted:
            # a descent that overshot into a worse basin (a runaway scale, say): keep what we had
            stop_reason = f"reverted: coarse metric got worse ({before:.4f} -> {after}); {stop_reason}"
            transform, after = starting_point, before
        self._guard_cache = (mapping_key(transform), after)
        self.stages.append(
            StageInfo(
                stage=step.stage,
                level=step.level,
                spacing_mm=tuple(self.fixed_levels[step.level].spacing),
                iterations=self.total_iterations - iterations_before,
                metric=outcome.metric,
                stop_reason=stop_reason,
                seconds=time.perf_counter() - started,
                reverted=reverted,
            )
        )
        return transform

    def _polish(self, transform: sitk.Transform, step: _Step) -> _Outcome:
        """Rounds of two polishes from the same start on independent sample sets, side by side.

        A fixed sample set makes the metric ripple and each polish stops in a ripple; how far the two
        end apart measures how much the sampling still decides the answer. Their mean starts the next
        round (fresh samples, shorter first steps) until they agree or the rounds run out.
        """
        options = self.options
        fixed_level, moving_level = self.fixed_levels[step.level], self.moving_levels[step.level]
        # the helper thread gets its own copies: SimpleITK images shared between threads race
        private = (_private_copy(fixed_level), _private_copy(moving_level))
        region = mask_points(self.fixed_levels[0], 2000)  # where the two polishes are compared
        points, current, spread, metric, rounds = options.polish_sampling_points, transform, 0.0, 0.0, 0
        while rounds < max(1, options.polish_rounds):
            scale, seed = (1.0 if rounds == 0 else 0.25), options.seed + 2 * rounds
            first, second = _in_parallel(
                [
                    partial(self._optimize, copy_transform(current), step, scale, points, seed),
                    partial(
                        self._optimize, copy_transform(current), step, scale, points, seed + 1, False, private
                    ),
                ]
            )
            rounds += 1
            current = _average([first.transform, second.transform], step.stage)
            spread = _mean_distance(first.transform, second.transform, region)
            metric = (first.metric + second.metric) / 2.0
            if spread <= options.polish_agreement_mm:
                break
        self.polish_spread_mm = spread
        return _Outcome(
            current, metric, f"{rounds} round(s) of two polishes, the last two {spread:.3f} mm apart"
        )

    def _optimize(
        self,
        transform,
        step: _Step,
        step_scale: float,
        points: int,
        seed: int,
        reports: bool = True,
        levels: Optional[tuple[Level, Level]] = None,
    ) -> _Outcome:
        """One optimiser run from ``transform`` (changed in place), on ``levels`` or the step's own.
        Only a ``reports`` run counts iterations and sends progress, so events come from one thread
        in increasing order."""
        options = self.options
        fixed_level, moving_level = levels or (self.fixed_levels[step.level], self.moving_levels[step.level])
        voxel = float(np.mean(fixed_level.spacing))
        reg = _method(fixed_level, moving_level, options, points, seed)
        _set_optimizer(reg, step, voxel * step_scale, options)
        reg.SetOptimizerScalesFromPhysicalShift()
        reg.SetInitialTransform(transform, inPlace=True)
        cancelled = []
        run_index = len(self.stages)

        def on_iteration() -> None:
            if reports:
                self.total_iterations += 1
                if self.progress is not None:
                    done = min(1.0, reg.GetOptimizerIteration() / options.max_iterations_per_level)
                    share = (run_index + done) / self.planned
                    self._fraction = min(1.0, max(self._fraction, share))
                    self.progress(
                        ProgressEvent(
                            step.stage,
                            step.level,
                            self.total_iterations,
                            reg.GetMetricValue(),
                            self._fraction,
                        )
                    )
            if self.should_stop is not None and self.should_stop():
                cancelled.append(True)
                reg.StopRegistration()

        reg.AddCommand(sitk.sitkIterationEvent, on_iteration)
        try:
            reg.Execute(fixed_level.image, moving_level.image)
            outcome = _Outcome(transform, reg.GetMetricValue(), reg.GetOptimizerStopConditionDescription())
        except RuntimeError as error:
            raise RegistrationError(_explain(error, step.stage, step.level)) from None
        finally:
            # The method owns the command, the command holds on_iteration, and on_iteration holds the
            # method and this runner (with every pyramid image): a cycle through C++ that Python's
            # garbage collector cannot see. Removing the command breaks it; without this, each
            # registration kept about five volumes' worth of memory until the process ended.
            reg.RemoveAllCommands()
        if cancelled:
            where = f"{step.stage} stage, level {step.level}"
            raise RegistrationCancelled(f"registration cancelled during {where}")
        return outcome

    def _guard_metric(self, transform) -> Optional[float]:
        """Dense metric on the coarsest level (None if nothing overlaps): a cheap, smooth referee.

        MetricEvaluate ignores sampling and visits every masked voxel, so it is only affordable on
        the smallest level; refining steps change it little, runaway ones a lot.
        """
        key = mapping_key(transform)
        if self._guard_cache is not None and self._guard_cache[0] == key:
            return self._guard_cache[1]  # the previous stage ended here (same mapping, maybe another type)
        return _dense_metric(transform, self.fixed_levels[0], self.moving_levels[0], self.options)


def _in_parallel(tasks: list[Callable[[], _Outcome]]) -> list[_Outcome]:
    """Run the tasks side by side, the first on the calling thread (SimpleITK releases the GIL while
    it computes, and each task is single-threaded, so results do not depend on timing)."""
    results: list = [None] * len(tasks)

    def work(index: int) -> None:
        try:
            results[index] = tasks[index]()
        except BaseException as error:  # noqa: B036 - handed to the calling thread below
            results[index] = error

    helpers = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(1, len(tasks))]
    for helper in helpers:
        helper.start()
    work(0)
    for helper in helpers:
        helper.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _private_copy(level: Level) -> Level:
    """The level with its own pixel buffers, so another thread never touches the original's."""

    def unique(image: Optional[sitk.Image]) -> Optional[sitk.Image]:
        if image is None:
            return None
        copy = sitk.Image(image)
        copy.MakeUnique()
        return copy

    return Level(unique(level.image), unique(level.mask), level.factors)


def _average(transforms: list[sitk.Transform], stage: str) -> sitk.Transform:
    """The mean mapping of transforms about one centre, returned as the stage's type."""
    center = center_of(transforms[0])
    parts = [affine_parts(transform, center) for transform in transforms]
    mean = sitk.AffineTransform(3)
    mean.SetCenter(center)
    mean.SetMatrix(np.mean([matrix for matrix, _ in parts], axis=0).ravel().tolist())
    mean.SetTranslation(np.mean([translation for _, translation in parts], axis=0).tolist())
    return as_type(mean, stage)


def _mean_distance(first: sitk.Transform, second: sitk.Transform, points: np.ndarray) -> float:
    """Mean distance (mm) between where two linear transforms send the same points."""
    center = center_of(first)
    (matrix_a, shift_a), (matrix_b, shift_b) = affine_parts(first, center), affine_parts(second, center)
    relative = points - np.asarray(center)
    difference = relative @ (matrix_a - matrix_b).T + (shift_a - shift_b)
    return float(np.linalg.norm(difference, axis=1).mean())


def _set_optimizer(reg: sitk.ImageRegistrationMethod, step: _Step, voxel: float, options) -> None:
    """Regular steps that halve on a turn for search and polish; conjugate gradient with a line search
    to refine, since a 12-parameter affine stalls a regular-step descent long before the optimum."""
    if step.role == "refine":
        reg.SetOptimizerAsConjugateGradientLineSearch(
            learningRate=1.0,
            numberOfIterations=options.max_iterations_per_level,
            convergenceMinimumValue=options.convergence_value,
            convergenceWindowSize=options.convergence_window,
            lineSearchUpperLimit=3.0,
            lineSearchEpsilon=0.02,
            lineSearchMaximumIterations=options.line_search_iterations,
            estimateLearningRate=reg.Once,
            maximumStepSizeInPhysicalUnits=options.refine_step_voxels * voxel,
        )
        return
    first = options.search_step_voxels if step.role == "search" else options.polish_step_voxels
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=first * voxel,
        minStep=options.min_step_mm if step.role == "polish" else 0.05 * voxel,
        numberOfIterations=options.max_iterations_per_level,
        relaxationFactor=options.relaxation,
        gradientMagnitudeTolerance=1e-8,
    )


def _explain(error: RuntimeError, stage: str, level: int) -> str:
    text = str(error)
    if (
        "outside moving image buffer" in text
        or "No valid points" in text
        or "too many samples" in text.lower()
    ):
        return (
            f"no overlap during the {stage} stage (level {level}): the fixed body samples no longer map "
            "onto the moving image; the scans may not show the same anatomy"
        )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if not line.startswith(("/", "itk::", "Exception"))), "")
    return f"the {stage} stage (level {level}) failed inside SimpleITK: {detail[:200] or 'unknown error'}"


def _cancel_check(cancel: Optional[CancelCheck]) -> Optional[Callable[[], bool]]:
    if cancel is None:
        return None
    if isinstance(cancel, threading.Event):
        return cancel.is_set
    if not callable(cancel):
        raise TypeError("cancel must be a callable returning True to stop, or a threading.Event")
    return lambda: bool(cancel())


def _raise_if_cancelled(should_stop: Optional[Callable[[], bool]]) -> None:
    if should_stop is not None and should_stop():
        raise RegistrationCancelled("registration cancelled")
