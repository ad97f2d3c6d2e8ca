"""report.html: one static page to review a cohort, offline, with nothing to install.

Failed and suspect cases come first; every row shows the case's QC thumbnail (a link to the full
picture), its verdict and reason, the padding findings and the time, and the table sorts by any of
them. Above it, a strip plot of every numeric quality figure shows each case as a dot, so an
outlier stands out at a glance (after MRIQC's group reports). The page references only files next
to it (thumbnails, pictures, per-case reports) and holds its own style and script: it opens from
disk with no network. Pure module: the standard library only.
"""

from __future__ import annotations

import html
import statistics
from urllib.parse import quote

# Sort rank of a row: what needs a look first.
RANK = {"error": 0, "failed": 1, "suspect": 2, "cancelled": 3, "ok": 4}
COLOURS = {
    "error": "#7b1fa2",
    "failed": "#c62828",
    "suspect": "#ef6c00",
    "cancelled": "#757575",
    "ok": "#2e7d32",
}
PLOT_WIDTH, PLOT_LEFT, PLOT_RIGHT, STRIP_HEIGHT = 760, 170, 20, 44

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; } h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
.meta { color: #555; margin: .1em 0; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; position: sticky; top: 0; }
th.sortable { cursor: pointer; user-select: none; } th.sortable:hover { background: #e4e4e4; }
th[aria-sort=ascending]::after { content: " \\25B2"; } th[aria-sort=descending]::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 9px; color: #fff; font-weight: 600; }
.path { color: #666; font-size: 12px; word-break: break-all; }
.thumb { width: 256px; height: auto; display: block; background: #000; }
.nopicture { color: #999; font-style: italic; }
svg text { font: 12px system-ui, sans-serif; fill: #333; }
"""

# Sorting: click a header; Shift is not needed. #sort=KEY or #sort=KEY-desc in the address sorts on
# load, so a sorted view can be bookmarked or shared.
_SCRIPT = """
(function () {
  var table = document.getElementById('cases');
  var body = table.tBodies[0];
  function value(row, key, type) {
    var text = row.getAttribute('data-' + key) || '';
    if (type === 'number') { var n = parseFloat(text); return isNaN(n) ? Infinity : n; }
    return text.toLowerCase();
  }
  function sortBy(key, descending) {
    var header = table.querySelector('th[data-key="' + key + '"]');
    if (!header) { return; }
    var type = header.getAttribute('data-type');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, key, type), y = value(b, key, type);
      var order = x < y ? -1 : x > y ? 1 : 0;
      if (descending) { order = -order; }
      var first = parseInt(a.getAttribute('data-order'), 10);
      return order || (first - parseInt(b.getAttribute('data-order'), 10));
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.querySelectorAll('th[data-key]'), function (th) {
      th.removeAttribute('aria-sort');
    });
    header.setAttribute('aria-sort', descending ? 'descending' : 'ascending');
  }
  Array.prototype.forEach.call(table.querySelectorAll('th[data-key]'), function (th) {
    th.addEventListener('click', function () {
      sortBy(th.getAttribute('data-key'), th.getAttribute('aria-sort') === 'ascending');
    });
  });
  Array.prototype.forEach.call(document.querySelectorAll('img.thumb'), function (img) {
    img.addEventListener('error', function () {
      var note = document.createElement('span');
      note.className = 'nopicture';
      note.textContent = 'picture missing';
      img.parentNode.replaceChild(note, img);
    });
  });
  var wanted = /^#sort=([a-z_]+?)(-desc)?$/.exec(window.location.hash);
  if (wanted) { sortBy(wanted[1], Boolean(wanted[2])); }
})();
"""


def render_cohort_page(summary: dict) -> str:
    """The whole page as text, from a summary built by ``cohort.summary.build_summary``.

    Args:
        summary: what ``build_summary`` returned.

    Returns:
        The HTML text.
    """
    cases = summary.get("cases", [])
    ordered = sorted(enumerate(cases), key=lambda item: (RANK[_state(item[1])], item[0]))
    fixed = summary.get("fixed") or {}
    counts = summary.get("counts") or {}
    run = summary.get("run") or {}
    title = f"Cohort QC: {counts.get('cases', len(cases))} scans onto {fixed.get('path', 'the fixed scan')}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="generator" content="ct-affine-register">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">fixed: {_e(fixed.get("path"))} &mdash; {_e(fixed.get("summary"))}</p>',
        f'<p class="meta" id="chosen-by">fixed scan chosen: '
        f"{_e(fixed.get('chosen_by', 'given by the user'))}</p>",
        f'<p class="meta" id="counts">{_e(summary.get("summary_line", ""))}</p>',
        f'<p class="meta">run: {_e(run.get("state"))}, {_e(run.get("backend"))}, '
        f"{_e(run.get('seconds'))} s, finished {_e(run.get('finished'))}</p>",
        '<h2>Quality figures</h2><p class="meta">One dot per registered case; the line is the cohort '
        "median. Click a dot to go to its row.</p>",
        _legend(),
        _plot(cases),
        '<h2>Cases</h2><p class="meta">Failed and suspect first. Click a column title to sort.</p>',
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
    parts += [_row(index, case) for index, case in ordered]
    parts += ["</tbody></table>", f"<script>{_SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _row(index: int, case: dict) -> str:
    state = _state(case)
    quality = case.get("quality") or {}
    case_id = str(case.get("id", ""))
    outputs = case.get("outputs") or {}
    moving = case.get("moving") or {}
    padding_kind = moving.get("kind") or ""
    seconds = case.get("seconds")
    if state in ("error", "cancelled"):
        reason = case.get("error") or ""
    else:
        reason = quality.get("reason") or ""
        notes = (quality.get("cohort") or {}).get("notes") or []
        if case.get("trustworthy") is False and case.get("trust_reason"):
            reason = case["trust_reason"]
        if notes and not reason.startswith("cohort outlier"):
            reason += " (cohort: " + "; ".join(notes) + ")"
    label = {"error": "error", "cancelled": "cancelled"}.get(state, quality.get("verdict", state))
    badge = f'<span class="badge" style="background:{COLOURS[state]}">{_e(label)}</span>'
    if outputs.get("qc_thumb"):
        picture = (
            f'<a href="{_u(outputs.get("qc", outputs["qc_thumb"]))}"><img class="thumb" loading="lazy" '
            f'src="{_u(outputs["qc_thumb"])}" alt="QC picture of {_e(case_id)}"></a>'
        )
    else:
        picture = '<span class="nopicture">no picture</span>'
    report_link = f"{case_id}_report.json"
    extra = " (earlier run)" if case.get("resumed") else ""
    return (
        f'<tr id="case-{_e(case_id)}" data-order="{index + 1}" data-id="{_e(case_id)}" '
        f'data-verdict="{RANK[state]}" data-padding="{_e(padding_kind)}" '
        f'data-seconds="{"" if seconds is None else seconds}" data-state="{state}">'
        f"<td class=num>{index + 1}</td>"
        f'<td><a href="{_u(report_link)}">{_e(case_id)}</a>{_e(extra)}'
        f'<div class="path">{_e(case.get("moving_path"))}</div></td>'
        f"<td>{picture}</td><td>{badge}</td><td>{_e(reason)}</td>"
        f"<td>{_e(_padding_text(moving))}</td>"
        f'<td class="num">{"" if seconds is None else f"{float(seconds):.1f}"}</td></tr>'
    )


def _plot(cases: list[dict]) -> str:
    """An SVG strip per numeric figure (and the time per case): dots coloured by verdict."""
    registered = [case for case in cases if case.get("status") == "ok"]
    names = sorted({name for case in registered for name, value in _figures(case).items()})
    strips = [(name, [(case, _figures(case).get(name)) for case in registered]) for name in names]
    strips.append(("seconds per case", [(case, case.get("seconds")) for case in registered]))
    strips = [(name, [(case, v) for case, v in points if _is_number(v)]) for name, points in strips]
    strips = [(name, points) for name, points in strips if points]
    if not strips:
        return '<p class="meta">No registered case yet: nothing to plot.</p>'
    height = STRIP_HEIGHT * len(strips) + 10
    inner = PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT
    parts = [f'<svg id="figures" width="{PLOT_WIDTH}" height="{height}" role="img" aria-label="figures">']
    for row, (name, points) in enumerate(strips):
        values = [float(value) for _, value in points]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        top = 10 + row * STRIP_HEIGHT
        middle = top + STRIP_HEIGHT / 2 - 6

        def x_of(value: float, low=low, span=span) -> float:
            return PLOT_LEFT + inner * (value - low) / span

        median_x = x_of(statistics.median(values))
        parts.append(f'<text x="0" y="{middle + 4:.0f}">{_e(name)}</text>')
        right = PLOT_LEFT + inner
        parts.append(
            f'<line x1="{PLOT_LEFT}" x2="{right}" y1="{middle:.0f}" y2="{middle:.0f}" stroke="#ccc"/>'
        )
        parts.append(
            f'<line x1="{median_x:.1f}" x2="{median_x:.1f}" y1="{middle - 10:.0f}" y2="{middle + 10:.0f}" '
            'stroke="#555" stroke-dasharray="3,2"/>'
        )
        parts.append(f'<text x="{PLOT_LEFT}" y="{middle + 22:.0f}">{_number(low)}</text>')
        parts.append(f'<text x="{right}" y="{middle + 22:.0f}" text-anchor="end">{_number(high)}</text>')
        for case, value in points:
            case_id = str(case.get("id", ""))
            colour = COLOURS[_state(case)]
            parts.append(
                f'<a href="#case-{_e(case_id)}"><circle cx="{x_of(float(value)):.1f}" cy="{middle:.0f}" '
                f'r="5" fill="{colour}" fill-opacity="0.7"><title>{_e(case_id)}: {_number(value)}</title>'
                "</circle></a>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _legend() -> str:
    names = {
        "ok": "ok",
        "suspect": "suspect",
        "failed": "failed verdict",
        "error": "error",
        "cancelled": "cancelled",
    }
    items = [f'<span style="color:{COLOURS[state]}">&#9679;</span> {label}' for state, label in names.items()]
    return f'<p class="meta" id="legend">{" &nbsp; ".join(items)}</p>'


def _state(case: dict) -> str:
    status = case.get("status")
    if status == "failed":
        return "error"
    if status != "ok":
        return "cancelled"
    verdict = (case.get("quality") or {}).get("verdict")
    return verdict if verdict in ("ok", "suspect", "failed") else "suspect"


def _padding_text(moving: dict) -> str:
    if not moving:
        return ""
    text = str(moving.get("kind") or "")
    if moving.get("padding_value") is not None:
        text += f" {moving['padding_value']}"
        if moving.get("padding_fraction") is not None:
            text += f" ({100 * float(moving['padding_fraction']):.0f}%)"
    fov = moving.get("fov") or {}
    if fov.get("radius_mm") is not None:
        text += f", FOV r={fov['radius_mm']:g} mm"
    return text


def _figures(case: dict) -> dict:
    figures = (case.get("quality") or {}).get("figures") or {}
    return {name: value for name, value in figures.items() if _is_number(value)}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _number(value) -> str:
    return f"{float(value):.4g}"


def _e(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _u(name: str) -> str:
    return html.escape(quote(str(name)), quote=True)
