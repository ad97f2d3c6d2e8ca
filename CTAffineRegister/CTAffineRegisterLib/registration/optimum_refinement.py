"""The registration's last stage: finish where the verdict's own measure finds no better placement.

Mattes mutual information drives the registration: on one patient it pins the answer to a tenth of a
millimetre. Between two patients it can stop short, most of all in scale when the bodies differ in
size: the verdict's probes (HU correlation at fixed body points on the ~4 mm level) then find a
nearby scale or shift that fits clearly better, and a user was handed the worse placement with a
warning. On the development set of different patients (``Testing/benchmarks/interpatient_dev.py``)
the placements the probes preferred overlapped the anatomy better where the verdict had complained:
structure overlap (body, bone, lungs) rose from 0.478 to 0.573 and from 0.522 to 0.578; over the
set's 12 pairs the mean went from 0.564 without this stage to 0.581 with it (one pair, half a chest
onto a whole one, lost 0.017). A correlation stage run on every pair would not be better: in a first
trial, on pairs where the verdict was content it changed the overlap by -0.010 to +0.029, and on one
patient it would trade sub-millimetre precision for the ~4 mm level's. So it runs only when the
verdict's probes find a nearby move (of at least ``MOVE_SUSPECT_MM``) that raises the correlation:
by more than the verdict's own optimum rule allows (``verdict.not_at_optimum``) or by more than
``REFINE_MIN_GAIN`` in correlation units, whichever is less. The second rule reaches what the
verdict forgives: on one patient, where the correlation is near 1, a start 7 % too small stopped
after one iteration per level ended 4 mm off with a probe gaining 0.009 (under 1 % of the
correlation, "ok" for the verdict); right results of one patient gain nothing (every probe lowers
the correlation), so they are never touched:

1. a regular-step descent on HU correlation (ITK's correlation metric: CT values are calibrated, so
   the same HU means the same tissue in both patients) on the verdict's level, from the result;
2. if the probes still find a better move, that move is taken and the descent runs again (at most
   ``REFINE_ROUNDS`` times);
3. the best placement by the probes' correlation is kept, never one that fits worse than the start;
4. on one patient (probes' correlation ``POLISH_MIN_CORRELATION`` or more), that placement is
   polished once more on the finest level, as the registration's own last stage does, and the
   polish is kept when the probes see no loss: it takes a refined result from the ~4 mm level's
   1.4-2 mm to a few tenths. Between two patients mutual information would pull it back toward
   where it stopped short, so the refined placement stays as it is.

Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

import SimpleITK as sitk

from ..core.affine import affine_about, affine_parts, as_type, center_of, mean_distance
from ..quality.verdict import (
    MOVE_KINDS,
    MOVE_SUSPECT_MM,
    ProbeFinding,
    SimilarityProbe,
    _perturbed,
    not_at_optimum,
    probe_optimum,
)
from .options import POLISH_MIN_CORRELATION

# Descents on the correlation, each followed by the probes; the development set settled in 1-2.
REFINE_ROUNDS = 3
# A probe raising the correlation by more than this (in correlation units) is worth going on from.
REFINE_MIN_GAIN = 0.005
# The closing polish may lower the probes' correlation by at most this (correlation units): the
# probes' own resolution on the ~4 mm level; a polish pulling back toward where the registration
# stopped short loses more.
POLISH_TOLERANCE = 0.002


@dataclass
class Refinement:
    """What the last stage found and did, for the report.

    Attributes:
        applied: True when the result handed out is the refined one.
        found_move: the move the probes found first (e.g. "scaled 5% smaller").
        found_gain: that move's gain, as a share of the correlation.
        correlation_before: the probes' correlation of the registration's result.
        correlation_after: the same for the placement handed out.
        rounds: descents run.
        moved_mm: how far the refinement moved the fixed body points (mean mm).
        polished: True when the finest-level polish after it was kept.
        seconds: time the refinement took (descents, probes and the polish).
    """

    applied: bool
    found_move: Optional[str]
    found_gain: float
    correlation_before: float
    correlation_after: float
    rounds: int
    moved_mm: float
    polished: bool = False
    seconds: float = 0.0

    @property
    def match_gain(self) -> float:
        """The refinement's gain in correlation, as a share of the start's (as the probes count it)."""
        return (self.correlation_after - self.correlation_before) / max(abs(self.correlation_before), 0.05)

    def sentence(self) -> str:
        """One line for the verdict's reason, e.g. ``refined: scaled 5% smaller, match +9%``."""
        if not self.applied:
            return f"refinement tried ({self.found_move}) but found no better placement"
        return f"refined: {self.found_move}, match +{self.match_gain * 100:.0f}%"

    def to_dict(self) -> dict:
        return {
            "applied": self.applied,
            "sentence": self.sentence(),
            "found_move": self.found_move,
            "found_gain": round(self.found_gain, 4),
            "correlation_before": round(self.correlation_before, 4),
            "correlation_after": round(self.correlation_after, 4),
            "match_gain": round(self.match_gain, 4),
            "rounds": self.rounds,
            "moved_mm": round(self.moved_mm, 2),
            "polished": self.polished,
        }  # not its seconds: quality depends on the scans only (``RegistrationResult.refine_seconds``)


def refine_to_optimum(
    transform: sitk.Transform,
    probe: SimilarityProbe,
    transform_type: str,
    run_stage: Callable[[sitk.Transform], sitk.Transform],
    polish: Optional[Callable[[sitk.Transform], sitk.Transform]] = None,
) -> tuple[sitk.Transform, Optional[Refinement]]:
    """Continue from ``transform`` while the verdict's probes find a better placement nearby.

    Args:
        transform: the registration's result (fixed→moving).
        probe: the verdict's sample points on the ~4 mm levels of both scans.
        transform_type: "rigid", "similarity" or "affine": the moves tried and the type kept
            (a rigid result is never scaled).
        run_stage: runs one correlation descent from a transform and returns where it ended
            (the registration's own runner, so progress, cancel and the stage report work).
        polish: runs the registration's finest-level polish from a transform (None: no polish).

    Returns:
        The placement to hand out and what was done; ``None`` when the result was already at the
        optimum the verdict measures (no stage ran).
    """
    started = time.perf_counter()
    kinds = MOVE_KINDS if transform_type != "rigid" else ("shift", "rotation")
    first = _probe(probe, transform, kinds)
    if not worth_refining(first):
        return transform, None
    best, best_correlation = transform, float(first.correlation)
    candidate, rounds = transform, 0
    while rounds < REFINE_ROUNDS:
        rounds += 1
        candidate = run_stage(candidate)
        found = _probe(probe, candidate, kinds)
        if found.correlation is None:
            break
        if found.correlation > best_correlation:
            best, best_correlation = candidate, found.correlation
        if not worth_refining(found):
            break
        candidate = _moved(candidate, found, probe.center, transform_type)
    polished = False
    # One patient only (``POLISH_MIN_CORRELATION``): between two patients mutual information pulled
    # every closing polish of the development set back toward where it had stopped short (each
    # rejected, at a second a case).
    if polish is not None and best is not transform and best_correlation >= POLISH_MIN_CORRELATION:
        finished = polish(best)
        found = _probe(probe, finished, kinds)
        keeps = found.correlation is not None and found.correlation >= best_correlation - POLISH_TOLERANCE
        if keeps and not worth_refining(found):
            best, best_correlation, polished = finished, float(found.correlation), True
    refinement = Refinement(
        applied=best is not transform,
        found_move=first.move_text(),
        found_gain=first.gain,
        correlation_before=float(first.correlation),
        correlation_after=best_correlation,
        rounds=rounds,
        moved_mm=mean_distance(transform, best, probe.points),
        polished=polished,
        seconds=time.perf_counter() - started,
    )
    return best, refinement


def worth_refining(found: ProbeFinding) -> bool:
    """True when the probes' best move should be followed: the verdict would call the result not at
    its optimum, or the move raises the correlation by more than ``REFINE_MIN_GAIN``.

    Args:
        found: what ``verdict.probe_optimum`` found around a result.

    Returns:
        Whether the last stage goes on from this result.
    """
    if found.correlation is None or found.moved_mm < MOVE_SUSPECT_MM:
        return False
    gain_in_units = found.gain * max(abs(found.correlation), 0.05)
    return not_at_optimum(found) or gain_in_units > REFINE_MIN_GAIN


def _probe(probe: SimilarityProbe, transform: sitk.Transform, kinds: tuple[str, ...]) -> ProbeFinding:
    matrix, offset = affine_parts(transform, (0.0, 0.0, 0.0))
    return probe_optimum(probe, matrix, offset, kinds)


def _moved(transform: sitk.Transform, found: ProbeFinding, center, transform_type: str) -> sitk.Transform:
    """``transform`` after the probes' best move (in fixed space about the body centre)."""
    matrix, offset = affine_parts(transform, (0.0, 0.0, 0.0))
    change, shift = found.move()
    new_matrix, new_offset = _perturbed(matrix, offset, change, shift, center)
    about_origin = sitk.AffineTransform(3)
    about_origin.SetMatrix(new_matrix.ravel().tolist())
    about_origin.SetTranslation(new_offset.tolist())
    return as_type(affine_about(about_origin, center_of(transform)), transform_type)
