"""Judge each case against the rest of its cohort: one result far from all the others is worth a look.

A case's own verdict uses thresholds that must hold for any pair. In a cohort registered onto one
fixed scan the other cases show what is normal for *this* fixed scan and *this* dataset, so a
figure many robust deviations away from the cohort's median marks a case even when its own
verdict passed. Robust statistics (median, MAD) keep a few bad cases from hiding each other.

Pure module: the standard library only. Works on the JSON-able case reports, so a summary can be
rebuilt from per-case report files at any time.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

# Below this many judged cases the cohort says too little about what is normal.
MIN_COHORT_SIZE = 8
# Robust z-score (in scaled MADs) beyond which a figure marks the case as a cohort outlier.
OUTLIER_SCORE = 5.0
# 1.4826 × MAD estimates the standard deviation of normally distributed figures.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class FigureRule:
    """Which direction of a quality figure is bad, and the smallest spread worth calling a deviation.

    The floor keeps a cohort of near-identical cases (phantoms, one scanner) from calling a tiny,
    harmless difference an outlier when its MAD is almost zero.
    """

    bad_when: str  # "low" or "high"
    floor: float
    label: str


# Figures of ``quality["figures"]`` judged against the cohort; others are ignored.
FIGURE_RULES: dict[str, FigureRule] = {
    "correlation": FigureRule("low", 0.03, "HU correlation"),
    "probe_gain": FigureRule("high", 0.01, "gain of the best nearby move"),
    "flip_gain": FigureRule("high", 0.02, "gain of the best flipped placement"),
    "air_dice": FigureRule("low", 0.03, "air Dice"),
    "body_dice": FigureRule("low", 0.02, "body Dice"),
}


def review_cohort(cases: list[dict], rules: dict[str, FigureRule] | None = None) -> list[dict]:
    """Add ``quality["cohort"]`` to every judged case and lower an "ok" outlier to "suspect".

    ``cases`` are report entries (``status`` and ``quality`` with ``verdict``, ``reason`` and
    ``figures``); they are changed in place and returned. The case's own verdict is kept as
    ``quality["own_verdict"]`` so the cohort's part stays visible.

    Args:
        cases: per-case report entries (changed in place).
        rules: the figures reviewed and how; None: the default rules.

    Returns:
        ``cases``.
    """
    rules = FIGURE_RULES if rules is None else rules
    judged = [case for case in cases if case.get("status") == "ok" and isinstance(case.get("quality"), dict)]
    if len(judged) < MIN_COHORT_SIZE:
        for case in judged:
            case["quality"]["cohort"] = {
                "judged": False,
                "note": f"cohort of {len(judged)} registered cases is too small to judge outliers "
                f"(at least {MIN_COHORT_SIZE} needed)",
            }
        return cases
    centres = {name: _centre_and_spread(_values(judged, name), rule) for name, rule in rules.items()}
    for case in judged:
        quality = case["quality"]
        scores, notes = {}, []
        for name, rule in rules.items():
            value = quality.get("figures", {}).get(name)
            centre = centres[name]
            if value is None or centre is None:
                continue
            median, spread = centre
            score = (float(value) - median) / spread
            scores[name] = round(score, 2)
            if (rule.bad_when == "low" and score < -OUTLIER_SCORE) or (
                rule.bad_when == "high" and score > OUTLIER_SCORE
            ):
                notes.append(
                    f"{rule.label} {_plain(value)} is {abs(score):.1f} robust deviations "
                    f"{'below' if rule.bad_when == 'low' else 'above'} the cohort median {_plain(median)}"
                )
        quality.setdefault("own_verdict", quality.get("verdict"))
        quality["cohort"] = {"judged": True, "outlier": bool(notes), "scores": scores, "notes": notes}
        if notes and quality.get("verdict") == "ok":
            quality["verdict"] = "suspect"
            own = quality.get("reason")
            quality["reason"] = f"cohort outlier: {'; '.join(notes)} (own checks passed: {own})"
    return cases


def _values(cases: Iterable[dict], name: str) -> list[float]:
    values = []
    for case in cases:
        value = case["quality"].get("figures", {}).get(name)
        if value is not None:
            values.append(float(value))
    return values


def _centre_and_spread(values: list[float], rule: FigureRule) -> tuple[float, float] | None:
    if len(values) < MIN_COHORT_SIZE:
        return None
    median = statistics.median(values)
    mad = statistics.median(abs(value - median) for value in values)
    return median, max(MAD_TO_SIGMA * mad, rule.floor)


def _plain(value: float) -> str:
    return f"{float(value):.3g}"
