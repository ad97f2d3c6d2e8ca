"""Cohort review: a case far from the rest of its cohort is lowered to "suspect", and says why."""

from __future__ import annotations

import copy

from CTAffineRegisterLib.cohort.review import MIN_COHORT_SIZE, FigureRule, review_cohort


def _case(dice: float, verdict: str = "ok", status: str = "ok") -> dict:
    return {
        "status": status,
        "quality": {"verdict": verdict, "reason": "own checks passed", "figures": {"body_dice": dice}},
    }


def _cohort() -> list[dict]:
    dices = [0.95, 0.96, 0.94, 0.955, 0.965, 0.945, 0.95, 0.96, 0.952, 0.948]
    return [_case(dice) for dice in dices]


def test_an_outlier_of_an_ok_cohort_becomes_suspect_and_the_others_stay_ok():
    cases = _cohort() + [_case(0.80)]
    review_cohort(cases)
    outlier = cases[-1]["quality"]
    assert outlier["verdict"] == "suspect"
    assert outlier["own_verdict"] == "ok"
    assert outlier["cohort"]["outlier"] is True
    assert "cohort outlier" in outlier["reason"] and "body Dice 0.8" in outlier["reason"]
    assert outlier["cohort"]["scores"]["body_dice"] < -5
    assert all(case["quality"]["verdict"] == "ok" for case in cases[:-1])
    assert all(case["quality"]["cohort"]["outlier"] is False for case in cases[:-1])


def test_a_high_value_of_a_low_is_bad_figure_is_no_outlier():
    cases = _cohort() + [_case(0.999)]
    review_cohort(cases)
    assert cases[-1]["quality"]["verdict"] == "ok"
    assert cases[-1]["quality"]["cohort"]["scores"]["body_dice"] > 0


def _judged(correlation: float) -> dict:
    return {"status": "ok", "quality": {"verdict": "ok", "figures": {"correlation": correlation}}}


def test_deviations_are_counted_in_standard_deviations_of_the_cohort():
    """Correlations with a median of 0.8 and a MAD of 0.05 (a standard deviation of 0.074): 0.50 lies
    4 standard deviations below, inside the 5 allowed; 0.40 lies 5.4 below."""
    spread = [0.7, 0.75, 0.75, 0.8, 0.8, 0.8, 0.85, 0.85, 0.9]
    for value, flagged in ((0.5, False), (0.4, True)):
        cases = [_judged(correlation) for correlation in spread + [value]]
        review_cohort(cases)
        cohort = cases[-1]["quality"]["cohort"]
        assert cohort["outlier"] is flagged
        assert cohort["scores"]["correlation"] == round((value - 0.8) / (1.4826 * 0.05), 2)


def test_the_floor_keeps_near_identical_cohorts_from_flagging_tiny_differences():
    cases = [_case(0.95) for _ in range(10)] + [_case(0.94)]  # MAD is 0; 0.01 is within the floor
    review_cohort(cases)
    assert cases[-1]["quality"]["verdict"] == "ok"


def test_failed_and_unregistered_cases_are_neither_judged_nor_counted():
    cases = _cohort() + [_case(0.2, verdict="failed"), {"status": "failed", "error": "x"}]
    review_cohort(cases)
    assert cases[-2]["quality"]["verdict"] == "failed"  # never raised to ok, never lowered further
    assert "cohort" not in cases[-1]


def test_a_small_cohort_is_not_judged_and_says_so():
    cases = [_case(0.95) for _ in range(MIN_COHORT_SIZE - 1)] + [_case(0.3)]
    before = copy.deepcopy(cases)
    review_cohort(cases[: MIN_COHORT_SIZE - 1])
    assert all(case["quality"]["cohort"]["judged"] is False for case in cases[: MIN_COHORT_SIZE - 1])
    assert "too small" in cases[0]["quality"]["cohort"]["note"]
    assert cases[-1] == before[-1]


def test_a_cohort_of_exactly_the_minimum_size_is_judged():
    cases = [_case(dice) for dice in (0.95, 0.96, 0.94, 0.955, 0.965, 0.945, 0.95)] + [_case(0.80)]
    assert len(cases) == MIN_COHORT_SIZE
    review_cohort(cases)
    assert cases[-1]["quality"]["verdict"] == "suspect"
    assert [case["quality"]["cohort"]["outlier"] for case in cases] == [False] * 7 + [True]


def test_a_case_without_figures_gets_no_score_and_the_others_are_judged():
    bare = {"status": "ok", "quality": {"verdict": "ok", "reason": "own checks passed"}}
    cases = _cohort() + [bare, _case(0.80)]
    review_cohort(cases)
    assert bare["quality"]["cohort"] == {"judged": True, "outlier": False, "scores": {}, "notes": []}
    assert bare["quality"]["verdict"] == "ok" and cases[-1]["quality"]["verdict"] == "suspect"


def _scored(name: str, value: float) -> dict:
    return {"status": "ok", "quality": {"verdict": "ok", "reason": "fine", "figures": {name: value}}}


def test_the_reason_names_the_figure_the_direction_and_the_median():
    low = _cohort() + [_case(0.80)]
    review_cohort(low)
    assert low[-1]["quality"]["cohort"]["notes"] == [
        "body Dice 0.8 is 7.5 robust deviations below the cohort median 0.95"
    ]
    gains = [_scored("probe_gain", 0.0) for _ in range(9)] + [_scored("probe_gain", 0.2)]
    review_cohort(gains)
    assert gains[-1]["quality"]["reason"] == (
        "cohort outlier: gain of the best nearby move 0.2 is 20.0 robust deviations above the cohort "
        "median 0 (own checks passed: fine)"
    )
    assert gains[-1]["quality"]["verdict"] == "suspect"


def test_exactly_five_deviations_is_not_yet_an_outlier_and_rules_can_be_given():
    rules = {"low_is_bad": FigureRule("low", 0.25, "L"), "high_is_bad": FigureRule("high", 0.25, "H")}
    for name, edge in (("low_is_bad", -0.25), ("high_is_bad", 2.25)):  # (edge - 1.0) / 0.25 = -5 / +5
        cases = [_scored(name, 1.0) for _ in range(9)] + [_scored(name, edge)]
        review_cohort(cases, rules)
        assert abs(cases[-1]["quality"]["cohort"]["scores"][name]) == 5.0
        assert cases[-1]["quality"]["cohort"]["outlier"] is False
    # the given rules replace the default ones: body Dice is not looked at
    cases = _cohort() + [_case(0.10)]
    review_cohort(cases, rules)
    assert cases[-1]["quality"]["cohort"]["scores"] == {} and cases[-1]["quality"]["verdict"] == "ok"


def test_a_case_that_failed_is_not_judged_even_with_quality_figures():
    failed = {"status": "failed", "quality": {"verdict": "failed", "figures": {"body_dice": 0.1}}}
    cases = _cohort() + [failed]
    review_cohort(cases)
    assert "cohort" not in failed["quality"]
    assert cases[0]["quality"]["cohort"]["scores"]["body_dice"] == -0.05  # the failed one not counted


def test_an_outlier_on_two_figures_names_both_in_its_reason():
    def case(dice: float, gain: float) -> dict:
        figures = {"body_dice": dice, "probe_gain": gain}
        return {"status": "ok", "quality": {"verdict": "ok", "reason": "fine", "figures": figures}}

    cases = [case(dice, 0.0) for dice in [0.95, 0.96, 0.94, 0.955, 0.965, 0.945, 0.95, 0.96, 0.952]]
    cases.append(case(0.80, 0.2))
    review_cohort(cases)
    notes = cases[-1]["quality"]["cohort"]["notes"]
    assert len(notes) == 2
    assert (
        cases[-1]["quality"]["reason"] == f"cohort outlier: {notes[0]}; {notes[1]} (own checks passed: fine)"
    )
