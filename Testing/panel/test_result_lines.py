"""The panel's status lines for odd reports (panel/result_lines.py): a report without a verdict or with
one the panel does not know, an error without words, segmentations asked for and carried or not, a
quality that is not a mapping. Plain data in, the exact lines out."""

from __future__ import annotations

from CTAffineRegisterLib.panel.result_lines import summary_lines


def test_verdicts_missing_or_unknown_are_counted_and_named():
    results = [
        ("A", {"status": "ok", "quality": {"reason": "no checks ran"}}),
        ("B", {"status": "ok", "quality": {"verdict": "maybe"}}),
        ("C", {"status": "ok", "quality": "not a mapping"}),
        ("D", {"status": "ok", "quality": {"verdict": "ok"}}),
    ]
    assert summary_lines(results) == [
        "4 registered: 1 ok verdict, 3 without a verdict.",
        "A: no verdict – no checks ran",
        "B: maybe",
        "C: no verdict",
        "D: ok",
    ]


def test_an_error_without_words_and_segmentations_carried_or_not():
    results = [
        ("A", {"status": "ok", "quality": {"verdict": "ok"}, "segmentations": []}),
        (
            "B",
            {
                "status": "ok",
                "quality": {"verdict": "suspect", "reason": "r"},
                "segmentations": [{"carried": "lungs (B)"}, {"carried": "heart (B)"}],
            },
        ),
        ("C", {"status": "failed", "error": ""}),
        ("D", {"status": "failed"}),
    ]
    assert summary_lines(results) == [
        "2 registered: 1 ok, 1 suspect verdict; 2 not registered.",
        "A: ok",
        "A: no segmentation has it as reference geometry; none carried",
        "B: suspect – r",
        "B: segmentations carried: 'lungs (B)', 'heart (B)'",
        "C: not registered – unknown error",
        "D: not registered – unknown error",
    ]


def test_only_reports_without_a_verdict():
    results = [
        ("A", {"status": "ok"}),
        ("B", {"status": "ok", "quality": {}}),
        ("C", {"status": "cancelled"}),
    ]
    assert summary_lines(results)[0] == "2 registered: 2 without a verdict; 1 cancelled."
