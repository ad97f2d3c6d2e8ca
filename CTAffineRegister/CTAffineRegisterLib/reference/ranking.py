"""The ranking rule: which candidate is the best reference for this cohort, and why.

A candidate is judged on two things, both documented in ``docs/how-to/choose-reference.md``:

1. **How well the sample fits onto it** (the verdict's figures of every sample scan registered
   onto it): the share of "ok" verdicts, the mean HU correlation, the mean body Dice and the mean
   air Dice. Each is a number from 0 to 1 (a negative correlation counts 0), a sample scan that
   did not register counts 0 in each, and one with too little air to compare is left out of the
   air Dice; the **fit** is their plain mean. No weights were tuned: each
   figure is evidence of a different kind (the verdict's own judgement, intensities, outline,
   inner anatomy) and none is known to matter more.
2. **What it covers.** The fit figures are measured only where both scans hold data, so a short
   candidate looks as good as a long one on what it shows while every scan loses what lies beyond
   it. The **coverage** is the candidate's body extent along the body axis over the median of the
   sample's (at most 1), and the **score** is fit × coverage: a candidate covering 80 % of what the
   sample covers keeps 80 % of its fit.

Some candidates are ranked after all others whatever their score, each with its reason:

- its field of view cuts the body: at least ``FOV_CUT_SHARE`` of the body's in-plane outline lies
  on the edge of the real data (padding or the image border) instead of on air; every registered
  scan would be cut the same way;
- it covers less than ``MIN_COVERAGE`` of the sample's extent along the body axis (half a chest);
- it cannot be a fixed scan (unreadable, not CT, too thin), or no sample scan registered onto it.

Ties of the score (to 3 decimals) go to thinner slices, then to the id. Pure module: the standard
library only.
"""

from __future__ import annotations

import statistics
from typing import Optional

# A body outline with this share on the edge of the real data is cut by the field of view. A body
# inside its field of view has almost none (arms or couch touching the circle: 0-4 % on the real
# chests here); a circle or crop through the chest puts 25-50 % of the outline on the cut.
FOV_CUT_SHARE = 0.10
# Below this share of the sample's body extent, a candidate shows too little to be a reference.
MIN_COVERAGE = 0.5
FIT_FIGURES = ("share_ok", "correlation", "body_dice", "air_dice")
RULE = (
    "score = fit × coverage; fit = mean of (share of ok verdicts, mean HU correlation, mean body Dice, "
    "mean air Dice) over the sample registered onto the candidate (a scan that did not register counts 0); "
    f"coverage = the candidate's body extent along the body axis / the sample's median (at most 1). "
    f"Ranked last whatever the score: a field of view that cuts the body (≥ {FOV_CUT_SHARE:.0%} of the "
    f"body outline on the edge of the data), coverage under {MIN_COVERAGE:.0%}, a scan that cannot be a "
    "fixed scan, or no sample scan registered. Ties: thinner slices, then id."
)


def rank_candidates(candidates: list[dict], sample_extents: list[float]) -> list[dict]:
    """Order the candidates by the rule above; each gets ``rank``, ``score``, ``fit``, ``coverage``,
    the fit figures, ``ranked_last_because`` (None for the rest) and ``reasons`` (sentences).

    Args:
        candidates: one dict per candidate: ``id``, ``path``, ``facts`` (``ScanFacts.to_dict()``, or
            None when unreadable), ``problem`` (why it cannot be a fixed scan, or None) and ``pairs``
            (the case reports of the sample scans registered onto it).
        sample_extents: the sample scans' body extents along the body axis (mm).

    Returns:
        New dicts, best first.
    """
    reference_extent = statistics.median(sample_extents) if sample_extents else None
    judged = [_judge(candidate, reference_extent) for candidate in candidates]
    ordered = sorted(
        judged,
        key=lambda item: (
            item["ranked_last_because"] is not None,
            -round(item["score"] or 0.0, 3),
            (item.get("facts") or {}).get("slice_mm") or float("inf"),
            item["id"],
        ),
    )
    for rank, item in enumerate(ordered, start=1):
        item["rank"] = rank
        item["reasons"] = _reasons(item, rank, ordered)
    return ordered


def fit_figures(pairs: list[dict]) -> dict:
    """The fit of a sample onto one candidate: share ok, mean correlation, body Dice, air Dice.

    Args:
        pairs: the case reports of the sample scans registered onto the candidate.

    Returns:
        ``pairs``, ``registered``, the four figures (None when there is no pair) and ``fit``.
    """
    registered = [pair for pair in pairs if pair.get("status") == "ok"]
    figures: dict = {"pairs": len(pairs), "registered": len(registered)}
    if not pairs:
        return {**figures, **{name: None for name in FIT_FIGURES}, "fit": None}
    verdicts = [(pair.get("quality") or {}).get("verdict") for pair in registered]
    figures["share_ok"] = sum(verdict == "ok" for verdict in verdicts) / len(pairs)
    for name in ("correlation", "body_dice", "air_dice"):
        known = [value for value in (_figure(pair, name) for pair in registered) if value is not None]
        if not known and name == "air_dice":  # no air to compare anywhere: not evidence either way
            figures[name] = None
            continue
        # a pair that did not register counts 0; one without this figure (too little air) is left out
        counted = len(known) + len(pairs) - len(registered)
        figures[name] = sum(max(0.0, value) for value in known) / max(1, counted)
    present = [figures[name] for name in FIT_FIGURES if figures[name] is not None]
    figures["fit"] = sum(present) / len(present)
    return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in figures.items()}


def _figure(pair: dict, name: str) -> Optional[float]:
    value = ((pair.get("quality") or {}).get("figures") or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _judge(candidate: dict, reference_extent: Optional[float]) -> dict:
    item = {key: value for key, value in candidate.items() if key != "pairs"}
    item.update(fit_figures(candidate.get("pairs") or []))
    facts = candidate.get("facts") or {}
    extent = facts.get("body_extent_mm")
    coverage = None
    if extent is not None and reference_extent:
        coverage = min(1.0, extent / reference_extent)
    item["coverage"] = None if coverage is None else round(coverage, 4)
    item["sample_extent_mm"] = None if reference_extent is None else round(reference_extent, 1)
    item["score"] = None if item["fit"] is None else round(item["fit"] * (coverage or 0.0), 4)
    item["ranked_last_because"] = _last_because(item, facts, coverage, extent, reference_extent)
    return item


def _last_because(item: dict, facts: dict, coverage, extent, reference_extent) -> Optional[str]:
    if item.get("problem"):
        return f"it cannot be a fixed scan: {item['problem']}"
    cut = facts.get("fov_cut_share")
    if cut is not None and cut >= FOV_CUT_SHARE:
        return (
            f"its field of view cuts the body ({cut:.0%} of the body outline lies on the edge of the "
            "data: padding or the image border); every scan registered onto it would be cut there"
        )
    if coverage is not None and coverage < MIN_COVERAGE:
        return (
            f"it covers only {coverage:.0%} of the sample along the body axis "
            f"({extent:.0f} mm of body, the sample's median {reference_extent:.0f} mm)"
        )
    if not item.get("registered"):
        return "no sample scan registered onto it"
    return None


def _reasons(item: dict, rank: int, ordered: list[dict]) -> list[str]:
    facts = item.get("facts") or {}
    reasons = []
    if item["ranked_last_because"]:
        reasons.append(f"ranked last: {item['ranked_last_because']}")
    elif rank == 1:
        runner_up = next((other for other in ordered[1:] if other["ranked_last_because"] is None), None)
        than = "" if runner_up is None else f" (next: {runner_up['id']}, score {runner_up['score']:.3f})"
        reasons.append(f"the best score, {item['score']:.3f}{than}")
    else:
        reasons.append(f"score {item['score']:.3f}")
    if item.get("pairs"):
        parts = [f"{item['registered']} of {item['pairs']} sample scans registered"]
        if item.get("share_ok") is not None:
            parts.append(f"{item['share_ok']:.0%} ok")
        for name, label in (
            ("correlation", "HU correlation"),
            ("body_dice", "body Dice"),
            ("air_dice", "air Dice"),
        ):
            if item.get(name) is not None:
                parts.append(f"{label} {item[name]:.2f}")
        reasons.append(
            "fit " + ("-" if item["fit"] is None else f"{item['fit']:.3f}") + ": " + ", ".join(parts)
        )
    if facts:
        if item.get("coverage") is not None:
            reasons.append(
                f"covers {item['coverage']:.0%} of the sample along the body axis "
                f"({facts['body_extent_mm']:.0f} mm of body, "
                f"the sample's median {item['sample_extent_mm']:.0f} mm)"
            )
        cut = facts.get("fov_cut_share")
        if cut is not None and cut < FOV_CUT_SHARE:
            reasons.append(f"its field of view does not cut the body ({cut:.0%} of the outline on the edge)")
        reasons.append(f"slices {facts['slice_mm']:g} mm; padding: {facts['padding']}")
    return reasons
