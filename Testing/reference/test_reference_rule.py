"""The ranking rule, the sample choice and the coverage facts, without registering anything."""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.reference_scans import circle_cut, z_slab

from CTAffineRegisterLib.cohort.case import CaseOptions, subsampled
from CTAffineRegisterLib.cohort.inputs import MovingInput
from CTAffineRegisterLib.cohort.outputs import output_names
from CTAffineRegisterLib.io.images import LoadedImage
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.reference.facts import scan_facts
from CTAffineRegisterLib.reference.ranking import FOV_CUT_SHARE, MIN_COVERAGE, fit_figures, rank_candidates
from CTAffineRegisterLib.reference.sample import choose_sample


def pair(verdict="ok", correlation=0.6, body=0.85, air=0.6, status="ok"):
    figures = {"correlation": correlation, "body_dice": body, "air_dice": air}
    return {"status": status, "quality": {"verdict": verdict, "figures": figures}}


def candidate(name, pairs, extent=300.0, cut=0.0, slice_mm=3.0, problem=None):
    facts = {
        "fov_cut_share": cut,
        "body_extent_mm": extent,
        "slice_mm": slice_mm,
        "padding": "no padding",
        "padding_kind": "air-background",
    }
    return {"id": name, "path": f"/{name}", "facts": facts, "problem": problem, "pairs": pairs}


def ids(ranked):
    return [row["id"] for row in ranked]


def test_better_fitting_candidates_rank_first():
    ranked = rank_candidates(
        [
            candidate("loose", [pair(correlation=0.3, body=0.7, air=0.3)] * 3),
            candidate("tight", [pair(correlation=0.7, body=0.9, air=0.7)] * 3),
            candidate("middle", [pair(verdict="suspect"), pair(), pair()]),
        ],
        [300.0, 300.0, 300.0],
    )
    assert ids(ranked) == ["tight", "middle", "loose"]
    assert [row["rank"] for row in ranked] == [1, 2, 3]
    assert (
        ranked[0]["reasons"][0]
        == f"the best score, {ranked[0]['score']:.3f} (next: middle, score {ranked[1]['score']:.3f})"
    )
    assert ranked[1]["share_ok"] == pytest.approx(2 / 3, abs=1e-4)


def test_fit_is_the_mean_of_the_four_figures_and_a_scan_that_did_not_register_counts_zero():
    figures = fit_figures([pair(correlation=0.6, body=0.8, air=0.4), pair(status="failed")])
    assert figures["registered"] == 1 and figures["pairs"] == 2
    assert figures["share_ok"] == 0.5 and figures["correlation"] == 0.3
    assert figures["body_dice"] == 0.4 and figures["air_dice"] == 0.2
    assert figures["fit"] == pytest.approx((0.5 + 0.3 + 0.4 + 0.2) / 4, abs=1e-4)
    some_air = fit_figures([pair(air=None), pair(air=0.5), pair(status="failed")])
    assert (
        some_air["air_dice"] == 0.25
    )  # the pair without air to compare is left out, the failed one counts 0
    no_air = fit_figures([pair(air=None)])
    assert no_air["air_dice"] is None and no_air["fit"] == pytest.approx((1 + 0.6 + 0.85) / 3, abs=1e-4)


def test_a_negative_correlation_counts_zero():
    assert fit_figures([pair(correlation=-0.4)])["correlation"] == 0.0


def test_a_short_candidate_keeps_only_its_share_of_the_fit():
    ranked = rank_candidates(
        [
            candidate("short", [pair(correlation=0.8)], extent=240.0),
            candidate("long", [pair()], extent=330.0),
        ],
        [300.0, 300.0, 320.0],
    )
    short = next(row for row in ranked if row["id"] == "short")
    assert short["coverage"] == pytest.approx(0.8) and short["score"] == pytest.approx(
        short["fit"] * 0.8, abs=1e-4
    )
    assert ids(ranked) == ["long", "short"]
    assert any("covers 80% of the sample" in reason for reason in short["reasons"])


@pytest.mark.parametrize(
    ("bad", "because"),
    [
        (
            candidate("bad", [pair(correlation=0.95, body=0.99, air=0.95)], cut=0.3),
            "field of view cuts the body (30%",
        ),
        (
            candidate("bad", [pair(correlation=0.95, body=0.99, air=0.95)], extent=140.0),
            "covers only 47% of the sample",
        ),
        (candidate("bad", [], problem="is not CT"), "it cannot be a fixed scan: is not CT"),
        (candidate("bad", [pair(status="failed")] * 2), "no sample scan registered onto it"),
    ],
)
def test_unusable_candidates_rank_last_whatever_their_fit(bad, because):
    ranked = rank_candidates(
        [bad, candidate("poor", [pair(verdict="suspect", correlation=0.2, body=0.7, air=0.2)])], [300.0]
    )
    assert ids(ranked) == ["poor", "bad"]
    assert because in ranked[-1]["ranked_last_because"]
    assert ranked[-1]["reasons"][0] == f"ranked last: {ranked[-1]['ranked_last_because']}"


def test_equal_scores_go_to_thinner_slices_then_to_the_id():
    ranked = rank_candidates(
        [
            candidate("b_thick", [pair()], slice_mm=5.0),
            candidate("c_thin", [pair()], slice_mm=1.0),
            candidate("a_thin", [pair()], slice_mm=1.0),
        ],
        [300.0],
    )
    assert ids(ranked) == ["a_thin", "c_thin", "b_thick"]


def test_sample_is_the_same_whatever_the_order_of_the_scans():
    scans = [MovingInput(f"/data/{index}.nii.gz", f"scan{index:02d}") for index in range(30)]
    chosen = choose_sample(scans, 12)
    assert len(chosen) == 12 and len({scan.case_id for scan in chosen}) == 12
    assert [scan.case_id for scan in choose_sample(scans[::-1], 12)] == [scan.case_id for scan in chosen][
        ::-1
    ]
    assert chosen != scans[:12]  # spread over the list, not its head
    assert choose_sample(scans[:5], 12) == scans[:5]


def test_judge_only_cases_write_a_transform_and_a_report_and_old_cohorts_still_resume():
    assert output_names("a", images=False) == {"transform": "a_transform.tfm", "report": "a_report.json"}
    assert "registered" in output_names("a")
    # a cohort's options read the same as before this option existed, so its finished cases resume
    assert "images" not in CaseOptions().to_dict() and "read_voxel_mm" not in CaseOptions().to_dict()
    assert CaseOptions(images=False, read_voxel_mm=6.0).to_dict()["read_voxel_mm"] == 6.0


def facts_of(image: sitk.Image):
    small = subsampled(LoadedImage(image, "scan", "scan"), 6.0)
    return scan_facts(small.image, analyze_background(small.image), image)


def test_coverage_facts_of_real_chests_whole_cut_and_halved():
    chest = sitk.ReadImage(str(shared_sample("nsclc_radiomics/LUNG1-001_ct.nii.gz")))
    whole = facts_of(chest)
    assert whole.fov_cut_share < 0.05 and whole.slice_mm == 3.0 and whole.size == (256, 256, 134)
    assert whole.body_extent_mm == pytest.approx(134 * 3.0, abs=12)
    assert facts_of(circle_cut(chest)).fov_cut_share > 0.25  # a reconstruction circle inside the body
    half_width = chest[: chest.GetSize()[0] // 2, :, :]  # the left half of the chest: cut by the image border
    assert facts_of(half_width).fov_cut_share > 0.2
    slab = facts_of(z_slab(chest, 0.0, 0.4))
    assert slab.fov_cut_share < 0.05 and slab.body_extent_mm < 0.45 * whole.body_extent_mm


# --- what the reference report tells the user (issue 22: generated mutants) ---------------------------


def test_the_reasons_a_user_reads_sentence_by_sentence():
    ranked = rank_candidates(
        [
            candidate(
                "wide",
                [pair(), pair(verdict="suspect", correlation=0.4, body=0.8, air=None)],
                extent=330.0,
                cut=0.04,
                slice_mm=1.5,
            ),
            candidate("narrow", [pair(correlation=0.5), pair(status="failed")], extent=240.0),
        ],
        [300.04, 312.34, 320.0],
    )
    wide, narrow = ranked
    # wide: share ok 1/2, correlation (0.6 + 0.4) / 2, body (0.85 + 0.8) / 2, air 0.6 (one pair has none)
    assert (wide["share_ok"], wide["correlation"], wide["body_dice"], wide["air_dice"]) == (
        0.5,
        0.5,
        0.825,
        0.6,
    )
    assert (
        wide["fit"] == 0.6062 and wide["coverage"] == 1.0 and wide["score"] == 0.6062
    )  # 0.60625, 4 decimals
    # narrow: the failed pair counts 0 in each figure; coverage 240 / 312.34 (the median), 4 decimals
    assert narrow["fit"] == 0.3688 and narrow["coverage"] == 0.7684 and narrow["score"] == 0.2834
    assert wide["sample_extent_mm"] == narrow["sample_extent_mm"] == 312.3
    assert wide["reasons"] == [
        "the best score, 0.606 (next: narrow, score 0.283)",
        "fit 0.606: 2 of 2 sample scans registered, 50% ok, "
        "HU correlation 0.50, body Dice 0.82, air Dice 0.60",
        "covers 100% of the sample along the body axis (330 mm of body, the sample's median 312 mm)",
        "its field of view does not cut the body (4% of the outline on the edge)",
        "slices 1.5 mm; padding: no padding",
    ]
    assert narrow["reasons"] == [
        "score 0.283",
        "fit 0.369: 1 of 2 sample scans registered, 50% ok, "
        "HU correlation 0.25, body Dice 0.42, air Dice 0.30",
        "covers 77% of the sample along the body axis (240 mm of body, the sample's median 312 mm)",
        "its field of view does not cut the body (0% of the outline on the edge)",
        "slices 3 mm; padding: no padding",
    ]
    (alone,) = rank_candidates([candidate("alone", [pair()])], [300.0])
    assert alone["reasons"][0] == f"the best score, {alone['score']:.3f}"  # no runner-up to name


def test_the_limits_are_inclusive_as_documented():
    """A cut of exactly ``FOV_CUT_SHARE`` ranks last ("at least"); a coverage of exactly ``MIN_COVERAGE``
    does not ("less than")."""
    good = [pair(correlation=0.95, body=0.99, air=0.95)]
    ranked = rank_candidates(
        [
            candidate("cut", good, cut=FOV_CUT_SHARE),
            candidate("half", good, extent=300.0 * MIN_COVERAGE),
            candidate("failed", [pair(status="failed")]),
            candidate("poor", [pair(verdict="suspect", correlation=0.2, body=0.7, air=0.2)]),
        ],
        [300.0],
    )
    assert ids(ranked) == ["half", "poor", "cut", "failed"]
    assert ranked[0]["ranked_last_because"] is None and ranked[0]["coverage"] == 0.5
    assert ranked[2]["ranked_last_because"] == (
        "its field of view cuts the body (10% of the body outline lies on the edge of the data: padding or "
        "the image border); every scan registered onto it would be cut there"
    )
    assert ranked[3]["ranked_last_because"] == "no sample scan registered onto it"
    assert not any("does not cut" in reason for reason in ranked[2]["reasons"])
    far = [candidate("far", good, cut=0.3), candidate("unmeasured", good, cut=None)]
    for row in rank_candidates(far, [300.0]):  # a cut not measured is not said to be fine either
        assert not any("does not cut" in reason for reason in row["reasons"]), row["id"]


def test_candidates_ranked_last_are_ordered_by_slices_then_id_whatever_their_missing_score():
    unreadable = {"id": "a_unreadable", "path": "/a", "facts": None, "problem": "cannot be read", "pairs": []}
    ranked = rank_candidates(
        [
            unreadable,
            candidate("c_not_ct", [], problem="is not CT"),
            candidate("b_failed", [pair(status="failed")]),
            candidate("d_good", [pair()]),
        ],
        [300.0],
    )
    assert ids(ranked) == ["d_good", "b_failed", "c_not_ct", "a_unreadable"]
    assert ranked[-1]["reasons"] == ["ranked last: it cannot be a fixed scan: cannot be read"]


def test_a_candidate_of_unknown_extent_scores_zero_and_ranks_after_those_of_known_extent():
    unknown = candidate("unknown", [pair(correlation=0.9, body=0.95, air=0.9)], extent=None)
    ranked = rank_candidates([unknown, candidate("known", [pair()])], [300.0])
    assert ids(ranked) == ["known", "unknown"]
    assert ranked[1]["coverage"] is None and ranked[1]["score"] == 0.0
    assert not any(reason.startswith("covers") for reason in ranked[1]["reasons"])
    (no_sample,) = rank_candidates([candidate("any", [pair()])], [])  # no sample extent measured
    assert no_sample["coverage"] is None and no_sample["sample_extent_mm"] is None
    assert no_sample["score"] == 0.0 and no_sample["ranked_last_because"] is None


def test_scores_equal_to_three_decimals_go_to_thinner_slices():
    """0.7621 and 0.7623 are the same score at the precision the report shows: the thinner slices win."""
    ranked = rank_candidates(
        [
            candidate("higher", [pair(correlation=0.6, body=0.85, air=0.5992)], slice_mm=5.0),
            candidate("thinner", [pair(correlation=0.6, body=0.85, air=0.5984)], slice_mm=1.0),
        ],
        [300.0],
    )
    assert [row["score"] for row in ranked] == [0.7621, 0.7623]
    assert ids(ranked) == ["thinner", "higher"]
