"""Affine registration of two CT scans that is not fooled by field-of-view padding, and fast.

Recipe: padding becomes air and values are clamped to the CT range; the metric samples only the
fixed body (and only valid moving data), so neither the FOV edge nor the padding drives it;
several initial placements are compared by the metric; then rigid → similarity → affine on a
small, self-built pyramid with a fixed number of samples per level (cost does not grow with the
scan) and Mattes mutual information. Coarse levels search with regular steps, the level above
the finest refines with a line-searched conjugate gradient, the finest level is polished twice side
by side on independent sample sets and the mean kept. A stage that makes the coarse metric clearly
worse is undone.

Options and results are in ``options``, the input preparation (pyramids) in ``preparation``.
Pure module: SimpleITK, numpy and the standard library. Analyses are
``padding.analysis.BackgroundAnalysis`` objects (``valid_mask``, ``body_mask``, ``air_value`` are used).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional

import numpy as np
import SimpleITK as sitk

from ..core.affine import (
    affine_about,
    affine_parts,
    as_type,
    center_of,
    copy_transform,
    is_rigid,
    mapping_key,
    mean_distance,
    nearest_rotation,
)
from ..core.parallel import private_image, side_by_side, split_in_two
from ..core.pyramid import (
    Level,
    count,
)
from ..errors import RegistrationCancelled, RegistrationError
from ..io.arguments import check_callbacks, check_image, check_instance
from ..padding.analysis import BackgroundAnalysis
from ..quality.verdict import PROBE_LEVEL_MM, SimilarityProbe, judge
from .initialization import candidate_placements, mask_points, overlap_fraction
from .optimum_refinement import refine_to_optimum
from .options import (
    TRANSFORM_TYPES,
    CancelCheck,
    ProgressCallback,
    ProgressEvent,
    RegistrationOptions,
    RegistrationResult,
    StageInfo,
)
from .preparation import check_inputs, closest_level, prepare_pyramids

# A stage whose result worsens the coarse metric by more than this share is undone (runaway steps
# worsen it by tens of percent; a good refinement changes the coarse value by well under one).
GUARD_TOLERANCE = 0.03
# Below this share of the fixed body landing on valid moving data there is nothing to register.
MIN_OVERLAP = 0.02


def register_images(
    fixed: sitk.Image,
    moving: sitk.Image,
    fixed_analysis: BackgroundAnalysis,
    moving_analysis: BackgroundAnalysis,
    options: Optional[RegistrationOptions] = None,
    progress: Optional[ProgressCallback] = None,
    cancel: Optional[CancelCheck] = None,
) -> RegistrationResult:
    """Find the transform mapping fixed physical points to moving physical points (ITK convention).

    ``cancel`` is a callable returning True to stop, or a ``threading.Event`` (stop once set); it is
    checked every iteration and a stop raises ``RegistrationCancelled``. During the final polish it is
    also called from a helper thread, so a callable must be thread-safe (an Event is). ``progress`` is
    only ever called from the calling thread.

    Args:
        fixed: the fixed scan (3D, one value per voxel).
        moving: the moving scan.
        fixed_analysis: ``analyze_background(fixed)`` (required here; ``register_pair`` makes it).
        moving_analysis: ``analyze_background(moving)``.
        options: every registration knob; None: the defaults.
        progress: called with a ``ProgressEvent`` per iteration, on the calling thread.
        cancel: a ``threading.Event`` or a thread-safe callable returning True to stop.

    Returns:
        A ``RegistrationResult``: the transform, metric, stages, verdict (``quality``) and timings.

    Raises:
        TypeError: an argument is of the wrong kind (named in the message).
        ValueError: an argument has an unusable value.
        RegistrationError: the scans cannot be registered (a slab too thin, too little overlap,
            an analysis made for another image, a failure inside SimpleITK).
        RegistrationCancelled: ``cancel`` asked to stop.
    """
    _check_arguments(locals())  # TypeError/ValueError naming a bad argument, before any work
    options = options or RegistrationOptions()
    should_stop = _cancel_check(cancel)
    check_inputs(fixed, moving, fixed_analysis, moving_analysis)
    return _register(fixed, moving, fixed_analysis, moving_analysis, options, progress, should_stop)


def _check_arguments(arguments: dict) -> None:
    """``register_images``' arguments: scan volumes, their analyses (required here), options, callbacks."""
    for role in ("fixed", "moving"):
        check_image(arguments[role], role, volume=True)
        analysis = arguments[f"{role}_analysis"]
        if analysis is None:
            raise TypeError(
                f"{role}_analysis is required: pass analyze_background({role}) "
                "(or use register_pair, which makes it)"
            )
        check_instance(analysis, f"{role}_analysis", BackgroundAnalysis)
    check_instance(arguments["options"], "options", RegistrationOptions, optional=True)
    check_callbacks(arguments["progress"], arguments["cancel"])


def _register(fixed, moving, fixed_analysis, moving_analysis, options, progress, should_stop):
    started = time.perf_counter()

    fixed_levels, moving_levels, center = prepare_pyramids(
        fixed, moving, fixed_analysis, moving_analysis, options
    )
    _raise_if_cancelled(should_stop)
    if options.initial_transform is not None:
        starts = [(affine_about(options.initial_transform, center), "user")]
    else:
        starts = _best_initial(
            fixed_levels[0], moving_levels[0], fixed_analysis, moving_analysis, center, options
        )
    _check_overlap(starts[0][0], fixed_levels[0], moving_levels[0])

    probe_level = closest_level(fixed_levels, PROBE_LEVEL_MM)
    probe = SimilarityProbe(
        fixed_levels[probe_level], moving_levels[probe_level], fixed_analysis.body_mask, center
    )
    plans = [_plan(options, len(fixed_levels), start) for start, _ in starts]
    runner = _Runner(
        fixed_levels, moving_levels, options, progress, should_stop, sum(len(plan) for plan in plans)
    )
    runs = [
        _run_from(start, plan, runner, probe, probe_level, options) + (initialization,)
        for (start, initialization), plan in zip(starts, plans)
    ]
    # two starts (scaled to the bodies' sizes, and not): keep the end the verdict's probes prefer
    transform, last, refinement, correlation, initialization = max(runs, key=lambda run: run[3])
    judged = time.perf_counter()
    quality = judge(
        transform,
        fixed,
        moving,
        fixed_analysis,
        moving_analysis,
        fixed_levels[probe_level],
        moving_levels[probe_level],
        center,
        probe,
    )
    verdict_seconds = time.perf_counter() - judged
    if refinement is not None:
        quality["refinement"] = refinement.to_dict()
        if refinement.applied:
            quality["reason"] = f"{quality['reason']}; {refinement.sentence()}"
    if len(runs) > 1:
        initialization += f" (of {len(runs)} starts run to the end: {', '.join(run[4] for run in runs)})"
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
        verdict_seconds=verdict_seconds,
        refine_seconds=None if refinement is None else refinement.seconds,
    )


def _run_from(start, plan, runner: _Runner, probe: SimilarityProbe, probe_level: int, options):
    """The plan from one start, then the last stage: (transform, last planned stage, refinement or
    None, the probes' correlation of the end, -inf when too few points compare)."""
    transform = start
    for step in plan:
        rounds = _polish_rounds(transform, probe, options) if step.role == "polish" else None
        transform = runner.run(as_type(transform, step.stage), step, rounds=rounds)
        if runner.stages[-1].reverted and step.role == "refine":
            transform = runner.run(transform, step, step_scale=0.25)  # once more, with shorter steps
    last = runner.stages[-1]
    refinement = None
    if options.refine_to_optimum:
        transform, refinement = refine_to_optimum(
            transform,
            probe,
            options.transform,
            lambda start: runner.run(
                as_type(start, options.transform), _Step(options.transform, probe_level, "optimum")
            ),
            _closing_polish(runner, plan),
        )
    correlation, _ = probe.correlation(*affine_parts(transform, (0.0, 0.0, 0.0)))
    return transform, last, refinement, -np.inf if correlation is None else correlation


def _polish_rounds(transform, probe: SimilarityProbe, options) -> Optional[int]:
    """1 when the scans' HU correlation is below ``options.full_polish_min_correlation`` (two
    patients: there a second round of polishes does not bring the two closer), else None (all of
    ``options.polish_rounds``)."""
    correlation, _ = probe.correlation(*affine_parts(transform, (0.0, 0.0, 0.0)))
    if correlation is None or correlation >= options.full_polish_min_correlation:
        return None
    return 1


def _closing_polish(
    runner: _Runner, plan: list[_Step]
) -> Optional[Callable[[sitk.Transform], sitk.Transform]]:
    """The plan's finest-level polish, to run again after a refinement (None when it has none)."""
    last = plan[-1]
    if last.role != "polish":
        return None
    return lambda start: runner.run(as_type(start, last.stage), last)


# ---------------------------------------------------------------------------------------------
# Initialisation


def _best_initial(fixed_level: Level, moving_level: Level, fixed_analysis, moving_analysis, center, options):
    """The candidate placement with the best coarse metric, weighted by overlap (little overlap must
    not look like a match: mutual information of a few samples is high by chance), as a list of
    (transform, name).

    When the best is scaled to the bodies' size ratio, the best unscaled placement follows it: both
    run to the end and the verdict's probes choose. The coarse metric alone picked the wrong one on
    the development set when arms up met arms down (the ratio of in-plane spreads then mixes arms
    into body size: 0.522 structure overlap from the scaled start, 0.578 from the rigid one); the
    probes' correlation at the end chose the better of the two on all three pairs that had both."""
    allow_scale = options.transform != "rigid"
    placements = list(candidate_placements(fixed_analysis, moving_analysis, center, allow_scale).items())
    shares = [overlap_fraction(transform, fixed_level, moving_level) for _, transform in placements]
    worth = [index for index, share in enumerate(shares) if share >= MIN_OVERLAP]
    values = _dense_metrics([placements[index][1] for index in worth], fixed_level, moving_level, options)
    scored = [
        (value * shares[index], placements[index][0], placements[index][1])
        for index, value in zip(worth, values)
        if value is not None
    ]
    if not scored:
        raise RegistrationError(
            "the images do not overlap for any initial placement (body centres, image centres, "
            "physical coordinates); check that both are CT scans of the same region"
        )
    scored.sort(key=lambda item: item[0])
    starts = [(scored[0][2], scored[0][1])]
    if " scaled " in scored[0][1]:
        unscaled = next((item for item in scored if " scaled " not in item[1]), None)
        if unscaled is not None:
            starts.append((unscaled[2], unscaled[1]))
    return starts


def _dense_metrics(transforms: list, fixed_level: Level, moving_level: Level, options) -> list:
    """``_dense_metric`` of each transform, in order, half of them on a second thread (with its own
    copies of the level images): the candidates' coarse metrics are a tenth of a 256² registration."""
    if len(transforms) < 2:
        return [_dense_metric(transform, fixed_level, moving_level, options) for transform in transforms]
    ours, theirs = split_in_two(list(transforms))
    private = (_private_copy(fixed_level), _private_copy(moving_level))
    mine, other = side_by_side(
        [
            lambda: [_dense_metric(transform, fixed_level, moving_level, options) for transform in ours],
            lambda: [_dense_metric(transform, *private, options) for transform in theirs],
        ]
    )
    values: list[Optional[float]] = [None] * len(transforms)
    values[0::2], values[1::2] = mine, other
    return values


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
    # "search": coarse, big steps; "refine": line-searched; "polish": regular steps, finest level;
    # "optimum": regular steps on the verdict's level with HU correlation (see optimum_refinement)
    role: str


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
        # a start scaled to the bodies' size ratio keeps its scale: it searches as a similarity
        first = "similarity" if final != "rigid" and _scaled(start) else "rigid"
        steps = [_Step(first, 0, "search")]
        steps += [_Step(kind, 0, "refine") for kind in kinds[kinds.index(first) + 1 :]]
        steps += [_Step(final, level, "refine") for level in range(1, refine + 1)]
    if fine != refine:
        steps.append(_Step(final, fine, "polish"))
    return steps


def _scaled(transform: sitk.Transform) -> bool:
    """True when a transform's mean scale differs from 1 (a placement scaled to the bodies' sizes)."""
    matrix, _ = affine_parts(transform)
    return abs(nearest_rotation(matrix)[1] - 1.0) > 1e-3


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
    metric: str = "mattes",
) -> sitk.ImageRegistrationMethod:
    """Mattes MI (or HU correlation) on the level images with masks and a fixed, seeded sample set;
    no built-in pyramid."""
    reg = sitk.ImageRegistrationMethod()
    if metric == "correlation":
        reg.SetMetricAsCorrelation()
    else:
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

    def run(
        self, transform: sitk.Transform, step: _Step, step_scale: float = 1.0, rounds: Optional[int] = None
    ) -> sitk.Transform:
        """One stage: optimise, undo it if the coarse metric got clearly worse, and record it;
        ``rounds`` caps a polish's rounds (None: ``options.polish_rounds``)."""
        _raise_if_cancelled(self.should_stop)
        # the last stage on correlation is judged by the verdict's probes, not by the MI guard
        guarded = step.role != "optimum"
        before = self._guard_metric(transform) if guarded else None
        starting_point = copy_transform(transform)
        iterations_before = self.total_iterations
        started = time.perf_counter()
        if step.role == "polish":
            outcome = self._polish(transform, step, rounds)
        else:
            points, seed = self.options.sampling_points, self.options.seed
            outcome = self._optimize(transform, step, step_scale, points, seed)
        transform, stop_reason = outcome.transform, outcome.stop_reason
        after = self._guard_metric(transform) if guarded else None
        reverted = before is not None and (after is None or after > before + GUARD_TOLERANCE * abs(before))
        if reverted:
            # a descent that overshot into a worse basin (a runaway scale, say): keep what we had
            stop_reason = f"reverted: coarse metric got worse ({before:.4f} -> {after}); {stop_reason}"
            transform, after = starting_point, before
        self._guard_cache = (mapping_key(transform), after) if guarded else None
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
                role=step.role,
            )
        )
        return transform

    def _polish(self, transform: sitk.Transform, step: _Step, rounds_cap: Optional[int] = None) -> _Outcome:
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
        planned = max(
            1, options.polish_rounds if rounds_cap is None else min(rounds_cap, options.polish_rounds)
        )
        while rounds < planned:
            scale, seed = (1.0 if rounds == 0 else 0.25), options.seed + 2 * rounds
            first, second = side_by_side(
                [
                    partial(self._optimize, copy_transform(current), step, scale, points, seed),
                    partial(
                        self._optimize, copy_transform(current), step, scale, points, seed + 1, False, private
                    ),
                ]
            )
            rounds += 1
            current = _average([first.transform, second.transform], step.stage)
            spread = mean_distance(first.transform, second.transform, region)
            metric = (first.metric + second.metric) / 2.0
            if spread <= options.polish_agreement_mm:
                break
        self.polish_spread_mm = spread
        limited = "" if rounds_cap is None else " (two patients: one round, a second would not settle them)"
        return _Outcome(
            current, metric, f"{rounds} round(s) of two polishes, the last two {spread:.3f} mm apart{limited}"
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
        metric = "correlation" if step.role == "optimum" else "mattes"
        reg = _method(fixed_level, moving_level, options, points, seed, metric)
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


def _private_copy(level: Level) -> Level:
    """The level with its own pixel buffers, so another thread never touches the original's."""
    return Level(private_image(level.image), private_image(level.mask), level.factors)


def _average(transforms: list[sitk.Transform], stage: str) -> sitk.Transform:
    """The mean mapping of transforms about one centre, returned as the stage's type."""
    center = center_of(transforms[0])
    parts = [affine_parts(transform, center) for transform in transforms]
    mean = sitk.AffineTransform(3)
    mean.SetCenter(center)
    mean.SetMatrix(np.mean([matrix for matrix, _ in parts], axis=0).ravel().tolist())
    mean.SetTranslation(np.mean([translation for _, translation in parts], axis=0).tolist())
    return as_type(mean, stage)


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
    first = options.search_step_voxels if step.role in ("search", "optimum") else options.polish_step_voxels
    iterations = options.optimum_iterations if step.role == "optimum" else options.max_iterations_per_level
    reg.SetOptimizerAsRegularStepGradientDescent(
        learningRate=first * voxel,
        minStep=options.min_step_mm if step.role == "polish" else 0.05 * voxel,
        numberOfIterations=iterations,
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
