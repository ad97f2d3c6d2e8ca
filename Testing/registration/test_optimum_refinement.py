"""The registration's last stage: a result the verdict's own probes can improve is never handed out.

A registration deliberately stopped short (one iteration per level from a start 7 % too small) must
be carried to the optimum by the refinement, say so in its report, and pass the verdict; a normal
same-patient registration must not be touched; and a refinement never keeps a placement that fits
worse than where it started.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.resized_scans import resized
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.core.affine import affine_parts, as_type, is_rigid, mean_distance
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.quality import verdict
from CTAffineRegisterLib.quality.accuracy import target_registration_error
from CTAffineRegisterLib.registration import (
    RegistrationOptions,
    build_pyramids,
    engine,
    initialization,
    register_images,
)
from CTAffineRegisterLib.registration.optimum_refinement import (
    REFINE_MIN_GAIN,
    refine_to_optimum,
    worth_refining,
)


@pytest.fixture(scope="module")
def pair():
    pair = synthetic.make_pair(21, **SMALL_PATIENT)
    return pair, analyze_background(pair.fixed), analyze_background(pair.moving)


def _shrunk_truth(pair, factor: float, center) -> sitk.AffineTransform:
    """The true transform after a fixed-space scale about ``center``: a start that is too small."""
    return _moved_truth(pair, np.eye(3) * factor, (0.0, 0.0, 0.0), center)


def _moved_truth(pair, change, shift, center) -> sitk.AffineTransform:
    """The true transform after a fixed-space move about ``center``."""
    matrix, offset = affine_parts(pair.true_transform, (0.0, 0.0, 0.0))
    moved_matrix, moved_offset = verdict._perturbed(matrix, offset, np.asarray(change), shift, center)
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(moved_matrix.ravel().tolist())
    transform.SetTranslation(moved_offset.tolist())
    return transform


def _stopped_short(pair, fixed_analysis, moving_analysis, refine: bool):
    _, _, center = build_pyramids(pair.fixed, pair.moving, fixed_analysis, moving_analysis, 2.0, 3)
    options = RegistrationOptions(
        initial_transform=_shrunk_truth(pair, 0.93, center),
        max_iterations_per_level=1,
        polish_rounds=1,
        refine_to_optimum=refine,
    )
    return register_images(pair.fixed, pair.moving, fixed_analysis, moving_analysis, options)


def test_a_registration_stopped_short_is_refined_to_the_optimum(pair):
    pair, fixed_analysis, moving_analysis = pair
    short = _stopped_short(pair, fixed_analysis, moving_analysis, refine=False)
    short_error = target_registration_error(short.transform, pair.true_transform, pair.body_points)[0]
    assert short_error > 3.5  # one iteration per level cannot undo a 7 % scale
    figures = short.quality["figures"]  # the probes see a better placement nearby
    assert figures["probe_gain"] * figures["correlation"] > REFINE_MIN_GAIN and figures["probe_move_mm"] >= 3

    refined = _stopped_short(pair, fixed_analysis, moving_analysis, refine=True)
    error = target_registration_error(refined.transform, pair.true_transform, pair.body_points)[0]
    assert error < min(2.0, short_error / 2), error  # within a voxel of the ~4 mm level
    assert refined.quality["verdict"] == "ok", refined.quality["reason"]
    report = refined.quality["refinement"]
    assert "seconds" not in report and refined.refine_seconds > 0  # quality: the scans' facts only
    assert short.refine_seconds is None
    assert report["applied"] is True and report["found_move"] == figures["probe_move"]
    assert report["correlation_after"] > report["correlation_before"] and report["match_gain"] > 0.02
    assert f"refined: {report['found_move']}, match +" in refined.quality["reason"]
    after = refined.quality["figures"]
    assert after["probe_gain"] * after["correlation"] <= REFINE_MIN_GAIN or after["probe_move_mm"] < 3
    assert refined.stages[-1].stage == "affine" and "optimum" not in short.to_dict()["stages"][-1]["stage"]
    assert any(s.spacing_mm[0] > 3.0 for s in refined.stages[len(short.stages) :])  # on the ~4 mm level


def test_a_right_same_patient_result_is_not_touched(pair):
    pair, fixed_analysis, moving_analysis = pair
    result = register_images(pair.fixed, pair.moving, fixed_analysis, moving_analysis)
    assert "refinement" not in result.quality and "refined" not in result.quality["reason"]
    assert result.quality["verdict"] == "ok"
    error = target_registration_error(result.transform, pair.true_transform, pair.body_points)[0]
    assert error < 1.0
    polish = result.stages[-1]  # one patient: the finest level is polished
    assert polish.role == "polish" and polish.iterations > 0 and result.polish_spread_mm is not None


def test_every_polish_round_runs_only_from_the_correlation_limit_up(pair):
    """The limit is the user's: at 1 even one patient's scans fall short of it; one round, saying why."""
    pair, fixed_analysis, moving_analysis = pair
    options = RegistrationOptions(full_polish_min_correlation=1.0)
    result = register_images(pair.fixed, pair.moving, fixed_analysis, moving_analysis, options)
    polish = result.stages[-1]
    assert polish.role == "polish" and polish.iterations > 0 and result.polish_spread_mm is not None
    assert (
        polish.stop_reason.startswith("1 round(s) of two polishes") and "two patients" in polish.stop_reason
    )
    everything = register_images(pair.fixed, pair.moving, fixed_analysis, moving_analysis)
    assert everything.stages[-1].stop_reason.startswith("2 round(s)")  # still apart after one
    with pytest.raises(ValueError, match="full_polish_min_correlation"):
        RegistrationOptions(full_polish_min_correlation=1.5)


def test_a_refinement_never_keeps_a_placement_that_fits_worse(pair):
    pair, fixed_analysis, moving_analysis = pair
    fixed_levels, moving_levels, center = build_pyramids(
        pair.fixed, pair.moving, fixed_analysis, moving_analysis, 4.0, 1
    )
    probe = verdict.SimilarityProbe(fixed_levels[-1], moving_levels[-1], fixed_analysis.body_mask, center)
    start = _shrunk_truth(pair, 0.93, center)
    worse = _shrunk_truth(pair, 0.85, center)
    calls = []

    def runs_astray(transform):
        calls.append(transform)
        return worse

    kept, report = refine_to_optimum(start, probe, "affine", runs_astray)
    assert calls, "a start 7 % too small must trigger the refinement"
    assert kept is start and report.applied is False
    assert report.correlation_after == report.correlation_before
    assert "found no better placement" in report.sentence()


def test_a_rigid_result_stays_rigid_through_the_refinement(pair):
    """A rigid registration cannot take a scale: its last stage follows shifts and turns only, and
    every descent starts from, and hands back, a rigid transform."""
    pair, fixed_analysis, moving_analysis = pair
    fixed_levels, moving_levels, center = build_pyramids(
        pair.fixed, pair.moving, fixed_analysis, moving_analysis, 4.0, 1
    )
    probe = verdict.SimilarityProbe(fixed_levels[-1], moving_levels[-1], fixed_analysis.body_mask, center)
    start = as_type(_moved_truth(pair, np.eye(3), (0.0, 0.0, 9.0), center), "rigid")
    seen = []

    def descent(transform):
        seen.append(transform.GetName())
        return transform

    kept, report = refine_to_optimum(start, probe, "rigid", descent)
    assert seen and set(seen) == {"Euler3DTransform"}
    assert report.applied and is_rigid(kept)
    assert "along the head-foot axis" in report.found_move
    assert report.correlation_after > report.correlation_before  # the probes' own moves carried it back


def test_a_1_3_scale_between_two_real_patients_is_ok():
    """Real anatomy made 1.3× larger in-plane (a larger patient) registered onto another patient:
    the scale is reported as a figure, and the verdict is ok."""
    fixed = read_image(str(shared_sample("nsclc_radiomics/LUNG1-001_ct.nii.gz"))).image
    moving = read_image(str(shared_sample("nsclc_radiomics/LUNG1-003_ct.nii.gz"))).image
    larger = resized(moving, (1.3, 1.3, 1.1))
    result = register_images(fixed, larger, analyze_background(fixed), analyze_background(larger))
    quality = result.quality
    assert quality["verdict"] == "ok", quality["reason"]
    assert quality["checks"]["plausibility"]["level"] == "ok"
    assert quality["figures"]["scale_max"] > 1.15  # a real size difference, reported
    # two patients: one round of polishes (a second cannot settle them), and the report says so
    polish = next(stage for stage in result.stages if stage.role == "polish")
    assert polish.stop_reason.startswith("1 round(s)") and "two patients" in polish.stop_reason
    assert (
        quality["figures"]["probe_gain"] <= verdict.PROBE_GAIN + 1e-9
        or quality["figures"]["probe_move_mm"] < 3
    )


def test_bodies_of_very_different_size_start_from_a_placement_scaled_to_their_ratio(pair):
    """A patient 0.65× the size of another (a child, or a small adult onto a large one): the initial
    placements include the bodies' in-plane size ratio (not for a rigid registration, which cannot
    keep it), the registration starts from one of them and lands on the truth."""
    pair, fixed_analysis, _ = pair
    small = resized(pair.fixed, (0.65, 0.65, 0.65))
    small_analysis = analyze_background(small)
    ratio = initialization.body_size_ratio(fixed_analysis.body_mask, small_analysis.body_mask)
    assert ratio == pytest.approx(0.65, abs=0.03)
    _, _, center = build_pyramids(pair.fixed, small, fixed_analysis, small_analysis, 2.0, 3)
    names = initialization.candidate_placements(fixed_analysis, small_analysis, center)
    assert any(name.startswith("body-moments scaled 0.6") for name in names)
    assert not any(
        "scaled" in name
        for name in initialization.candidate_placements(
            fixed_analysis, small_analysis, center, allow_scale=False
        )
    )
    truth = _scale_about_scan_center(pair.fixed, 0.65)
    points = pair.body_points
    result = register_images(pair.fixed, small, fixed_analysis, small_analysis)
    assert "scaled" in result.initialization
    # the best unscaled placement runs to the end too, and the verdict's probes choose between the two
    assert "(of 2 starts run to the end: body-moments scaled" in result.initialization
    assert target_registration_error(result.transform, truth, points)[0] < 2.0


def _scale_about_scan_center(image: sitk.Image, factor: float) -> sitk.AffineTransform:
    """fixed→moving truth of ``resized(image, factor)``: points shrink toward the scan centre."""
    size = np.array(image.GetSize())
    center = image.TransformContinuousIndexToPhysicalPoint(((size - 1) / 2.0).tolist())
    truth = sitk.AffineTransform(3)
    truth.SetCenter(center)
    truth.SetMatrix((np.eye(3) * factor).ravel().tolist())
    return truth


def test_of_two_starts_the_end_the_probes_prefer_is_kept(pair, monkeypatch):
    """Two starts run to the end (scaled to the bodies' ratio, and not): the result is the end whose
    probe correlation is the higher, whichever start it came from."""
    pair, fixed_analysis, _ = pair
    small = resized(pair.fixed, (0.65, 0.65, 0.65))
    ends = []
    run_from = engine._run_from

    def recorded(*arguments, **keywords):
        end = run_from(*arguments, **keywords)
        ends.append(end)
        return end

    monkeypatch.setattr(engine, "_run_from", recorded)
    result = register_images(pair.fixed, small, fixed_analysis, analyze_background(small))
    assert len(ends) == 2 and ends[0][3] != ends[1][3]
    preferred = max(ends, key=lambda end: end[3])[0]
    assert affine_parts(result.transform, (0.0, 0.0, 0.0))[0] == pytest.approx(
        affine_parts(preferred, (0.0, 0.0, 0.0))[0], abs=1e-12
    )


def test_a_closing_polish_that_fits_worse_is_not_kept_and_the_move_is_measured(pair):
    """The refinement reaches the truth; a closing polish that runs astray is dropped, and the report's
    distance is how far the kept placement lies from where the registration had stopped."""
    pair, fixed_analysis, moving_analysis = pair
    fixed_levels, moving_levels, center = build_pyramids(
        pair.fixed, pair.moving, fixed_analysis, moving_analysis, 4.0, 1
    )
    probe = verdict.SimilarityProbe(fixed_levels[-1], moving_levels[-1], fixed_analysis.body_mask, center)
    start = _shrunk_truth(pair, 0.93, center)
    truth = _moved_truth(pair, np.eye(3), (0.0, 0.0, 0.0), center)
    polished = []

    def astray(transform):
        polished.append(transform)
        return _shrunk_truth(pair, 0.85, center)

    kept, report = refine_to_optimum(start, probe, "affine", lambda transform: truth, astray)
    assert polished, "a refinement that moved must be polished once more"
    assert kept is truth and report.applied and not report.polished
    assert report.moved_mm == pytest.approx(mean_distance(start, truth, probe.points), rel=1e-9)
    assert report.moved_mm > 3.0


def test_a_probe_move_under_3_mm_is_not_followed_however_much_it_gains():
    found = verdict.ProbeFinding(0.9, 1.0, 0.5, ("shift", 0), 2.0, moved_mm=2.9)
    assert not worth_refining(found)
    assert worth_refining(verdict.ProbeFinding(0.9, 1.0, 0.5, ("shift", 0), 3.2, moved_mm=3.1))
