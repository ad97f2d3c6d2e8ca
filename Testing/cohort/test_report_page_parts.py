"""What a reviewer sees on report.html (cohort/report_page.py), part by part: the heading lines, the
order of the rows (what needs a look first), each row's badge, reason, picture, padding and time, and
the strip plot's dots, median and range. Fast: plain case dicts, no run."""

from __future__ import annotations

import re

from CTAffineRegisterLib.cohort.report_page import COLOURS, _plot, render_cohort_page


def _case(case_id, status="ok", verdict="ok", **extra):
    case = {"id": case_id, "status": status, "moving_path": f"/data/{case_id}.nii.gz"}
    if status == "ok":
        case["quality"] = {"verdict": verdict, "reason": f"{verdict} fit", "figures": {}}
    case.update(extra)
    return case


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr id=.*?</tr>", page)


def test_the_heading_names_the_fixed_scan_the_counts_and_the_run():
    summary = {
        "fixed": {"path": "/data/f<1>.nii.gz", "summary": "fov-padding -3024", "chosen_by": "reference run"},
        "counts": {"cases": 7},
        "summary_line": "5 registered: 5 ok, 0 suspect, 0 failed verdict; 2 failed",
        "run": {"state": "finished", "backend": "local", "seconds": 12.5, "finished": "today"},
        "cases": [],
    }
    page = render_cohort_page(summary)
    title = "Cohort QC: 7 scans onto /data/f&lt;1&gt;.nii.gz"
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    assert '<p class="meta">fixed: /data/f&lt;1&gt;.nii.gz &mdash; fov-padding -3024</p>' in page
    assert '<p class="meta" id="chosen-by">fixed scan chosen: reference run</p>' in page
    assert '<p class="meta" id="counts">5 registered: 5 ok, 0 suspect, 0 failed verdict; 2 failed</p>' in page
    assert '<p class="meta">run: finished, local, 12.5 s, finished today</p>' in page
    assert '<meta name="generator" content="ct-affine-register">' in page  # lets a rerun replace it
    assert page.startswith("<!DOCTYPE html>\n") and page.endswith("</body></html>\n")
    assert '<p class="meta">No registered case yet: nothing to plot.</p>' in page


def test_without_counts_or_fixed_scan_the_heading_still_reads():
    page = render_cohort_page({"cases": [_case("a"), _case("b")]})
    assert "<h1>Cohort QC: 2 scans onto the fixed scan</h1>" in page
    assert '<p class="meta">fixed:  &mdash; </p>' in page
    assert "fixed scan chosen: given by the user</p>" in page
    assert '<p class="meta" id="counts"></p>' in page
    assert '<p class="meta">run: , ,  s, finished </p>' in page


def test_rows_put_errors_failed_suspect_and_cancelled_before_ok_keeping_cohort_order():
    cases = [
        _case("ok1"),
        _case("cancel", status="cancelled", error="stopped"),
        _case("sus", verdict="suspect"),
        _case("odd", verdict="unheard-of"),  # an unknown verdict needs a look like a suspect one
        _case("bad", verdict="failed"),
        _case("err", status="failed", error="/data/err.nii.gz: no such file"),
        _case("ok2"),
    ]
    rows = _rows(render_cohort_page({"cases": cases}))
    order = [re.search(r'data-id="([^"]*)"', row).group(1) for row in rows]
    assert order == ["err", "bad", "sus", "odd", "cancel", "ok1", "ok2"]
    states = [re.search(r'data-state="([^"]*)"', row).group(1) for row in rows]
    assert states == ["error", "failed", "suspect", "suspect", "cancelled", "ok", "ok"]
    ranks = [re.search(r'data-verdict="([^"]*)"', row).group(1) for row in rows]
    assert ranks == ["0", "1", "2", "2", "3", "4", "4"]
    numbers = [re.search(r'data-order="([^"]*)"', row).group(1) for row in rows]
    assert numbers == ["6", "5", "3", "4", "2", "1", "7"]  # the cohort's own order, for sorting back
    assert "<td class=num>6</td>" in rows[0]


def test_a_row_shows_badge_reason_picture_padding_and_time():
    case = _case(
        "p 1",
        verdict="suspect",
        seconds=12.345,
        resumed=True,
        outputs={"qc": "p 1_qc.png", "qc_thumb": "p 1_qc_thumb.png"},
        moving={
            "kind": "fov-padding",
            "padding_value": -3024,
            "padding_fraction": 0.213,
            "fov": {"radius_mm": 124.0},
        },
    )
    (row,) = _rows(render_cohort_page({"cases": [case]}))
    assert f'<span class="badge" style="background:{COLOURS["suspect"]}">suspect</span>' in row
    assert "<td>suspect fit</td>" in row
    assert (
        '<a href="p%201_qc.png"><img class="thumb" loading="lazy" src="p%201_qc_thumb.png" '
        'alt="QC picture of p 1"></a>'
    ) in row
    assert (
        '<td><a href="p%201_report.json">p 1</a> (earlier run)<div class="path">/data/p 1.nii.gz</div></td>'
        in row
    )
    assert "<td>fov-padding -3024 (21%), FOV r=124 mm</td>" in row
    assert 'data-padding="fov-padding"' in row and 'data-seconds="12.345"' in row
    assert row.endswith('<td class="num">12.3</td></tr>')
    assert row.startswith('<tr id="case-p 1" ')


def test_a_row_without_outputs_padding_or_time_says_so_plainly():
    (row,) = _rows(render_cohort_page({"cases": [_case("a", seconds=None)]}))
    assert '<span class="nopicture">no picture</span>' in row
    assert 'data-seconds=""' in row and row.endswith('<td class="num"></td></tr>')
    assert 'data-padding=""' in row and "<td></td><td class=" in row
    assert "(earlier run)" not in row
    thumb_only = _case("b", outputs={"qc_thumb": "b_thumb.png"}, moving={"kind": "air-background"})
    (row,) = _rows(render_cohort_page({"cases": [thumb_only]}))
    assert '<a href="b_thumb.png"><img' in row  # no full picture: the thumbnail is the link
    assert "<td>air-background</td>" in row
    padded = _case("c", moving={"kind": "fov-padding", "padding_value": -2000})
    (row,) = _rows(render_cohort_page({"cases": [padded]}))
    assert "<td>fov-padding -2000</td>" in row


def test_a_reason_is_the_error_the_trust_reason_or_the_verdicts_with_cohort_notes():
    cohort_notes = {"notes": ["correlation low", "time long"]}
    cases = [
        _case("err", status="failed", error="/data/err: gone"),
        _case("can", status="cancelled"),
        _case("untrusted", verdict="failed", trustworthy=False, trust_reason="verdict failed: no overlap"),
        _case("noted"),
        _case("outlier", verdict="suspect"),
    ]
    cases[3]["quality"]["cohort"] = cohort_notes
    cases[4]["quality"].update(reason="cohort outlier: correlation", cohort=cohort_notes)
    rows = {
        re.search(r'data-id="([^"]*)"', row).group(1): row
        for row in _rows(render_cohort_page({"cases": cases}))
    }
    assert "<td>/data/err: gone</td>" in rows["err"]
    assert f'background:{COLOURS["error"]}">error</span></td><td>/data/err: gone</td>' in rows["err"]
    assert f'background:{COLOURS["cancelled"]}">cancelled</span></td><td></td>' in rows["can"]
    assert "<td>verdict failed: no overlap</td>" in rows["untrusted"]
    assert "<td>ok fit (cohort: correlation low; time long)</td>" in rows["noted"]
    assert "<td>cohort outlier: correlation</td>" in rows["outlier"]


def test_the_plot_has_a_strip_per_figure_and_for_the_time_with_median_and_range():
    cases = [
        _case("a", seconds=10),
        _case("b", verdict="suspect", seconds=None),
        _case("c", verdict="weird", seconds=30.0),
        _case("d", status="failed", seconds=1, quality={"figures": {"corr": 9.0}}),
    ]
    cases[0]["quality"]["figures"] = {"corr": 0.2, "flag": True, "name": "x"}
    cases[1]["quality"]["figures"] = {"corr": 0.6}
    cases[2]["quality"]["figures"] = {"corr": 0.4}
    svg = _plot(cases)
    assert svg.startswith('<svg id="figures" width="760" height="98" role="img" aria-label="figures">')
    assert svg.endswith("</svg>")
    strip = (
        '<text x="0" y="30">corr</text>'
        '<line x1="170" x2="740" y1="26" y2="26" stroke="#ccc"/>'
        '<line x1="455.0" x2="455.0" y1="16" y2="36" stroke="#555" stroke-dasharray="3,2"/>'
        '<text x="170" y="48">0.2</text><text x="740" y="48" text-anchor="end">0.6</text>'
        '<a href="#case-a"><circle cx="170.0" cy="26" r="5" fill="#2e7d32" fill-opacity="0.7">'
        "<title>a: 0.2</title></circle></a>"
        '<a href="#case-b"><circle cx="740.0" cy="26" r="5" fill="#ef6c00" fill-opacity="0.7">'
        "<title>b: 0.6</title></circle></a>"
        '<a href="#case-c"><circle cx="455.0" cy="26" r="5" fill="#ef6c00" fill-opacity="0.7">'
        "<title>c: 0.4</title></circle></a>"
    )
    assert strip in svg
    seconds = (
        '<text x="0" y="74">seconds per case</text>'
        '<line x1="170" x2="740" y1="70" y2="70" stroke="#ccc"/>'
        '<line x1="455.0" x2="455.0" y1="60" y2="80" stroke="#555" stroke-dasharray="3,2"/>'
        '<text x="170" y="92">10</text><text x="740" y="92" text-anchor="end">30</text>'
    )
    assert seconds in svg
    assert "flag" not in svg and "name" not in svg and "d: " not in svg  # not numbers; not registered


def test_a_figure_all_cases_share_sits_at_the_left_with_four_digits():
    cases = [_case("a", seconds=None), _case("b", seconds=None)]
    cases[0]["quality"]["figures"] = {"dice": 0.123456}
    cases[1]["quality"]["figures"] = {"dice": 0.123456}
    svg = _plot(cases)
    assert svg.count('cx="170.0"') == 2 and '<line x1="170.0" x2="170.0"' in svg
    assert '<text x="170" y="48">0.1235</text>' in svg and "<title>a: 0.1235</title>" in svg
    assert "seconds per case" not in svg and 'height="54"' in svg


def test_the_legend_names_every_colour():
    page = render_cohort_page({"cases": []})
    legend = re.search(r'<p class="meta" id="legend">(.*?)</p>', page).group(1)
    assert legend == " &nbsp; ".join(
        f'<span style="color:{COLOURS[state]}">&#9679;</span> {label}'
        for state, label in (
            ("ok", "ok"),
            ("suspect", "suspect"),
            ("failed", "failed verdict"),
            ("error", "error"),
            ("cancelled", "cancelled"),
        )
    )


def test_the_table_and_plot_carry_what_the_pages_script_and_style_need():
    page = render_cohort_page({"cases": [_case("a", seconds=1.0)]})
    lines = page.splitlines()
    headers = [
        '<table id="cases"><thead><tr>',
        '<th class="sortable" data-key="order" data-type="number">#</th>',
        '<th class="sortable" data-key="id" data-type="text">case</th>',
        "<th>QC picture</th>",
        '<th class="sortable" data-key="verdict" data-type="number" aria-sort="ascending">verdict</th>',
        "<th>reason</th>",
        '<th class="sortable" data-key="padding" data-type="text">padding</th>',
        '<th class="sortable" data-key="seconds" data-type="number">seconds</th>',
        "</tr></thead><tbody>",
    ]
    start = lines.index(headers[0])
    assert lines[start : start + len(headers)] == headers
    assert lines[start + len(headers)].startswith('<tr id="case-a" ')
    assert lines[start + len(headers) + 1] == "</tbody></table>"
    assert lines[start + len(headers) + 2].startswith("<script>") and lines[-1] == "</body></html>"
    assert "getElementById('cases')" in page and "</script>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in lines
    assert '<html lang="en"><head><meta charset="utf-8">' in lines
    assert "<title>Cohort QC: 1 scans onto the fixed scan</title><style>" in lines
    assert "</style></head><body>" in lines
    assert (
        '<h2>Quality figures</h2><p class="meta">One dot per registered case; the line is the cohort '
        "median. Click a dot to go to its row.</p>"
    ) in lines
    assert (
        '<h2>Cases</h2><p class="meta">Failed and suspect first. Click a column title to sort.</p>' in lines
    )
    assert any(line.startswith('<svg id="figures" ') for line in lines)


def test_a_badge_says_error_or_cancelled_whatever_verdict_the_case_carries():
    cases = [
        _case("e", status="failed", quality={"verdict": "ok"}, error="/data/e: gone"),
        _case("c", status="cancelled", quality={"verdict": "suspect"}),
    ]
    rows = _rows(render_cohort_page({"cases": cases}))
    assert f'<span class="badge" style="background:{COLOURS["error"]}">error</span>' in rows[0]
    assert f'<span class="badge" style="background:{COLOURS["cancelled"]}">cancelled</span>' in rows[1]


def test_a_badge_shows_an_unknown_verdict_in_its_own_words_and_a_missing_one_as_suspect():
    odd = _case("odd", verdict="borderline")
    missing = _case("missing")
    del missing["quality"]["verdict"]
    rows = {
        re.search(r'data-id="([^"]*)"', row).group(1): row
        for row in _rows(render_cohort_page({"cases": [odd, missing]}))
    }
    assert f'<span class="badge" style="background:{COLOURS["suspect"]}">borderline</span>' in rows["odd"]
    assert f'<span class="badge" style="background:{COLOURS["suspect"]}">suspect</span>' in rows["missing"]


def test_a_row_without_id_or_reason_leaves_them_empty():
    case = _case("x")
    del case["id"]
    del case["quality"]["reason"]
    (row,) = _rows(render_cohort_page({"cases": [case]}))
    assert row.startswith('<tr id="case-" ') and 'data-id=""' in row
    assert '<a href="_report.json"></a>' in row
    assert "</span></td><td></td><td>" in row  # an empty reason cell after the badge
    noted = _case("y")
    del noted["quality"]["reason"]
    noted["quality"]["cohort"] = {"notes": ["time long"]}
    (row,) = _rows(render_cohort_page({"cases": [noted]}))
    assert "<td> (cohort: time long)</td>" in row


def test_exact_cells_for_no_picture_no_earlier_run_and_padding_without_a_kind():
    case = _case("b", moving={"padding_value": -2000})
    (row,) = _rows(render_cohort_page({"cases": [case]}))
    assert '<td><span class="nopicture">no picture</span></td>' in row
    assert '<td><a href="b_report.json">b</a><div class="path">/data/b.nii.gz</div></td>' in row
    assert "<td> -2000</td>" in row


def test_a_summary_without_cases_is_a_page_with_none():
    page = render_cohort_page({})
    lines = page.splitlines()
    assert "<h1>Cohort QC: 0 scans onto the fixed scan</h1>" in lines
    assert '<meta name="generator" content="ct-affine-register">' in lines  # lets a rerun replace it
    assert _rows(page) == []


def test_the_plot_says_plainly_when_there_is_nothing_to_plot_and_links_a_dot_without_id():
    lines = render_cohort_page({"cases": [_case("e", status="failed")]}).splitlines()
    assert '<p class="meta">No registered case yet: nothing to plot.</p>' in lines
    case = _case("x", seconds=None)
    del case["id"]
    case["quality"]["figures"] = {"dice": 0.5}
    assert '<a href="#case-"><circle ' in _plot([case]) and "<title>: 0.5</title>" in _plot([case])
