"""What the verdict says, word for word where a user reads it: the slab check's limit and sentence,
the summary's reason, the probes' move in words, and a verdict that does not depend on the centre a
transform happens to be written about. Small images and hand-made checks: no registration."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.core.affine import affine_parts
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.quality import verdict
from CTAffineRegisterLib.quality.verdict import Check, ProbeFinding, coverage_check, summarize
from CTAffineRegisterLib.registration.preparation import build_pyramids


def _volume(size, spacing) -> sitk.Image:
    image = sitk.Image(list(size), sitk.sitkInt16)
    image.SetSpacing(spacing)
    return image


THICK = _volume((20, 20, 20), (2.0, 2.0, 2.0))


def test_a_scan_exactly_as_thick_as_needed_is_placed():
    exact = _volume((20, 20, 5), (2.0, 2.0, verdict.MIN_COVERAGE_MM / 5))
    check = coverage_check(exact, THICK)
    assert (check.name, check.level) == ("coverage", "ok")
    assert check.sentence == "both scans are thick enough to place along every axis"


def test_thin_slabs_are_named_with_their_thickness_and_slice_count():
    fixed = _volume((20, 20, 4), (2.0, 2.0, 2.51))  # 10.04 mm
    moving = _volume((20, 3, 20), (2.0, 4.0, 2.0))  # 12 mm
    check = coverage_check(fixed, moving)
    assert (check.name, check.level) == ("coverage", "failed")
    assert check.sentence == (
        "the fixed scan is a slab 10 mm thick (4 slices); the moving scan is a slab 12 mm thick (3 slices): "
        f"at least {verdict.MIN_COVERAGE_MM:.0f} mm are needed to place a scan along every axis"
    )
    assert check.figures == {"thinnest_mm": 10.0}
    assert coverage_check(THICK, fixed).sentence.startswith("the moving scan is a slab 10 mm")


def test_the_reason_of_a_passed_verdict_lists_its_figures():
    checks = [
        Check("optimum", "ok", "fine", {"correlation": 0.9512}),
        Check("body", "ok", "fine", {"body_dice": 0.904}),
        Check("air", "ok", "fine", {"air_dice": None}),
    ]
    result = summarize(checks)
    assert result["verdict"] == "ok"
    assert result["reason"] == (
        "passed every check: no nearby move or flip fits better, HU correlation 0.95, body Dice 0.90"
    )
    assert result["figures"] == {"correlation": 0.9512, "body_dice": 0.904, "air_dice": None}
    assert result["checks"]["body"] == {"level": "ok", "sentence": "fine"}


def test_the_reason_of_a_flagged_verdict_is_every_failing_sentence_and_the_worst_level_wins():
    checks = [
        Check("coverage", "ok", "thick enough"),
        Check("optimum", "suspect", "a move helps"),
        Check("flip", "failed", "it fits mirrored"),
    ]
    result = summarize(checks)
    assert result["verdict"] == "failed"
    assert result["reason"] == "a move helps; it fits mirrored"
    assert summarize(checks[:2])["verdict"] == "suspect"


@pytest.mark.parametrize(
    "key, amount, words",
    [
        (("shift", 1), -6.2, "moved 6 mm along the front-back axis"),
        (("rotation", 2), 8.0, "turned 8° about the head-foot axis"),
        (("scale", -1), 4.4, "scaled 4% larger"),
        (("scale", -1), -7.6, "scaled 8% smaller"),
        (("scale", -1), 0.4, "scaled 0% larger"),
    ],
)
def test_the_best_probe_move_in_words(key, amount, words):
    assert ProbeFinding(0.8, 1.0, 0.1, key, amount).move_text() == words
    assert ProbeFinding(0.8, 1.0, 0.0, key, amount).move_text() is None  # nothing improves: no move


def test_a_probe_finding_moves_as_its_words_say():
    change, shift = ProbeFinding(0.8, 1.0, 0.1, ("shift", 2), 12.0).move()
    assert np.array_equal(change, np.eye(3)) and np.array_equal(shift, [0.0, 0.0, 12.0])
    change, shift = ProbeFinding(0.8, 1.0, 0.1, ("scale", -1), -8.0).move()
    assert np.allclose(change, np.eye(3) * 0.92) and not shift.any()
    change, _ = ProbeFinding(0.8, 1.0, 0.1, ("rotation", 2), 90.0).move()
    assert np.allclose(change @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])  # left-right turns to front-back


def test_the_verdict_does_not_depend_on_the_centre_a_transform_is_written_about():
    """The same mapping written about the origin and about a point 200 mm away is judged the same."""
    pair = synthetic.make_pair(12, **SMALL_PATIENT)
    analyses = analyze_background(pair.fixed), analyze_background(pair.moving)
    fixed_levels, moving_levels, center = build_pyramids(pair.fixed, pair.moving, *analyses, 4.0, 1)
    matrix, offset = affine_parts(pair.true_transform, (0.0, 0.0, 0.0))
    turned = matrix @ verdict._rotation(2, 12.0)  # a result 12° off: the probes must see it

    def written_about(point) -> sitk.AffineTransform:
        transform = sitk.AffineTransform(3)
        transform.SetCenter(point)
        transform.SetMatrix(turned.ravel().tolist())
        point = np.asarray(point, float)
        transform.SetTranslation((offset + turned @ point - point).tolist())  # the same mapping
        return transform

    judged = [
        verdict.judge(written_about(point), pair.fixed, pair.moving, *analyses, fixed_levels[0],
                      moving_levels[0], center)
        for point in ((0.0, 0.0, 0.0), (200.0, -150.0, 120.0))
    ]  # fmt: skip
    assert judged[0] == judged[1]
    assert judged[0]["verdict"] != "ok"  # 12° off is seen either way


def test_the_air_dice_ends_the_reason_of_a_passed_verdict():
    checks = [
        Check("body", "ok", "fine", {"body_dice": 0.904}),
        Check("air", "ok", "fine", {"air_dice": 0.4149}),
    ]
    assert summarize(checks)["reason"].endswith(", body Dice 0.90, air Dice 0.41")


def test_the_thinnest_slab_figure_keeps_one_decimal():
    slab = _volume((20, 20, 4), (2.0, 2.0, 2.55))  # 10.2 mm
    assert coverage_check(slab, THICK).figures == {"thinnest_mm": 10.2}


@pytest.mark.parametrize("cut", ["fixed", "moving"])
def test_the_body_outlines_are_compared_only_where_both_scans_hold_data(cut):
    """A field of view that cuts through the body (its padding holds no body): the part of the
    other scan's body beyond that field of view is not held against the match."""
    radius = {f"{cut}_fov_radius_mm": 60.0, f"{cut}_padding": -3024.0}
    pair = synthetic.make_pair(21, **{**SMALL_PATIENT, "moving_padding": None, **radius})
    fixed_analysis, moving_analysis = analyze_background(pair.fixed), analyze_background(pair.moving)
    cut_analysis = fixed_analysis if cut == "fixed" else moving_analysis
    assert cut_analysis.kind == "fov-padding"
    check = verdict.body_check(pair.true_transform, fixed_analysis, moving_analysis)
    assert check.level == "ok" and check.figures["body_dice"] > 0.9


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_a_scan_without_a_body_is_named_and_its_outline_not_checked(role):
    pair = synthetic.make_pair(21, **SMALL_PATIENT)
    analyses = {"fixed": analyze_background(pair.fixed), "moving": analyze_background(pair.moving)}
    empty = sitk.Image(analyses[role].body_mask.GetSize(), sitk.sitkUInt8)
    empty.CopyInformation(analyses[role].body_mask)
    analyses[role] = dataclasses.replace(analyses[role], body_mask=empty)
    check = verdict.body_check(pair.true_transform, analyses["fixed"], analyses["moving"])
    assert (check.level, check.sentence) == (
        "suspect",
        f"no body found in the {role} scan; outline not checked",
    )


def test_two_scans_without_a_body_are_both_named():
    pair = synthetic.make_pair(21, **SMALL_PATIENT)
    analyses = []
    for scan in (pair.fixed, pair.moving):
        analysis = analyze_background(scan)
        empty = sitk.Image(analysis.body_mask.GetSize(), sitk.sitkUInt8)
        empty.CopyInformation(analysis.body_mask)
        analyses.append(dataclasses.replace(analysis, body_mask=empty))
    check = verdict.body_check(pair.true_transform, *analyses)
    assert (check.name, check.level) == ("body", "suspect")
    assert check.sentence == "no body found in the fixed and moving scan; outline not checked"
