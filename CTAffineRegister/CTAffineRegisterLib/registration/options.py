"""What the registration takes and gives: its options (every knob with its default and why), the
progress events it reports and the result it returns.

In a module of their own so that the input preparation (``preparation``), the engine, the pair and
cohort layers and the CLI share them without importing the optimizer.
Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Callable, Optional, Union

import SimpleITK as sitk

from ..core.affine import affine_parts, center_of

TRANSFORM_TYPES = ("rigid", "similarity", "affine")


# One patient or two: the HU correlation of two scans of one patient, registered, is 0.9 and more;
# of two patients 0.3-0.6 (the development set's 12 pairs). The finest-level polishing, which pins
# one patient's anatomy to tenths of a millimetre, runs in full only from here up.
POLISH_MIN_CORRELATION = 0.8


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
    # First steps, in voxels of the level (about mm of physical shift per voxel): one voxel to search
    # and refine. The polish starts from the line-searched answer of the level above, well within a
    # voxel of the optimum: half a voxel there spends fewer iterations bouncing and ends as close.
    # Measured on the 10 known-answer cases of compare.py and on the same 10 rebuilt with other
    # seeds (both in process, same code otherwise): mean TRE 0.181 -> 0.176 mm and 0.227 -> 0.221,
    # 10 % less CPU. A third of a voxel was as good on the first set and worse on the second.
    search_step_voxels: float = 1.0
    refine_step_voxels: float = 1.0
    polish_step_voxels: float = 0.5
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
    # The last stage (optimum_refinement): when the verdict's probes find a nearby placement that fits
    # better (HU correlation), go on from there instead of handing out the worse one. False keeps the
    # Mattes MI result as it is (for comparisons); the verdict then judges that result.
    refine_to_optimum: bool = True
    # Iteration cap of each of the last stage's descents (regular steps on the ~4 mm level): the
    # development set's descents ended in 26-100 iterations, most under 60.
    optimum_iterations: int = 80
    # All polish_rounds run only when the scans' HU correlation (the verdict's probes, ~4 mm level)
    # reaches this; below it, one round (0: always all). One patient's scans agree at 0.9 and more,
    # two patients' at 0.3-0.6: there the two polishes still ended 1-3 mm apart after a second round
    # (the sampling, not the anatomy, decides where). With one round between patients: structure
    # overlap of the development set's 12 pairs 0.579 -> 0.582, lung Dice of the 14 pairs of
    # verdict_accuracy.py 0.765 -> 0.763 (two decimals per lung), 20-27 % less CPU. Leaving the polish
    # out altogether saved half the CPU but cost 0.007 lung Dice. The last stage's closing polish
    # keeps to the default limit.
    full_polish_min_correlation: float = POLISH_MIN_CORRELATION

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
        if self.optimum_iterations < 1:
            raise ValueError("optimum_iterations must be at least 1")
        if not 0.0 <= self.full_polish_min_correlation <= 1.0:
            raise ValueError("full_polish_min_correlation must be between 0 (always every round) and 1")


@dataclass
class ProgressEvent:
    """One optimizer iteration: ``iteration`` counts over the whole run, so it only increases.

    Attributes:
        stage: "rigid", "similarity" or "affine".
        level: the pyramid level (0 the coarsest).
        iteration: iterations so far, over the whole run.
        metric: the metric's current value (lower is better).
        fraction: rough share of the run done.
    """

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
    # "search", "refine", "polish", or "optimum" for the last stage's descents on HU correlation
    role: str = ""

    def to_dict(self) -> dict:
        """Plain values for a JSON report.

        Returns:
            The dict.
        """
        return {
            "stage": self.stage,
            "level": self.level,
            "spacing_mm": [round(s, 3) for s in self.spacing_mm],
            "iterations": self.iterations,
            "metric": round(self.metric, 6),
            "stop_reason": self.stop_reason,
            "seconds": round(self.seconds, 3),
            "reverted": self.reverted,
            "role": self.role,
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
    # Of ``seconds``, what the verdict took (kept out of ``quality``, which depends on the scans only).
    verdict_seconds: Optional[float] = None
    # Of ``seconds``, what the last stage took (``refine_to_optimum``); None when it did not run.
    refine_seconds: Optional[float] = None

    def to_dict(self) -> dict:
        """Plain values for a JSON report: the transform's parts, figures, stages and options.

        Returns:
            The dict.
        """
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
            "verdict_seconds": None if self.verdict_seconds is None else round(self.verdict_seconds, 3),
            "refine_seconds": None if self.refine_seconds is None else round(self.refine_seconds, 3),
            "initialization": self.initialization,
            "polish_spread_mm": None if self.polish_spread_mm is None else round(self.polish_spread_mm, 3),
            "quality": dict(self.quality),
            "stages": [stage.to_dict() for stage in self.stages],
            "options": None if self.options is None else self.options.to_dict(),
        }


ProgressCallback = Callable[[ProgressEvent], None]
CancelCheck = Union[Callable[[], bool], threading.Event]
