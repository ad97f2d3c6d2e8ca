"""reference.json, reference.csv and reference.html: the ranking for people and for ``--fixed-from``.

The page is the cohort page's sibling (same style and sorting script, ``cohort.report_page``): one
row per candidate with a thumbnail of the scan, its rank, score, fit figures, coverage facts and
the reasons. ``read_recommendation`` is how ``register --fixed-from`` reads the recommended scan
back, refusing anything that is not a ranking this tool wrote. Pure module: the standard library.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Optional

from ..cohort.report_page import _SCRIPT, _STYLE, _e, _u
from ..cohort.summary import _cell
from ..errors import InputError
from ..io.images import write_text

RANKING_FORMAT = "ct-affine-register reference ranking"
RANKING_SCHEMA = 1
RANKING_NAMES = {"json": "reference.json", "csv": "reference.csv", "html": "reference.html"}
# First bytes that mark a ranking file as this tool's (a rerun may rebuild it; anything else is refused).
RANKING_MARKERS = {
    "json": f'"format": "{RANKING_FORMAT}"',
    "csv": "rank,id,",
    "html": '<meta name="generator" content="ct-affine-register reference">',
}
CSV_COLUMNS = [
    "rank",
    "id",
    "path",
    "recommended",
    "score",
    "fit",
    "coverage",
    "share_ok",
    "correlation",
    "body_dice",
    "air_dice",
    "pairs",
    "registered",
    "fov_cut_share",
    "body_extent_mm",
    "sample_extent_mm",
    "slice_mm",
    "padding_kind",
    "ranked_last_because",
    "reasons",
]


def write_ranking(out_dir: str, ranking: dict) -> Optional[str]:
    """Write reference.json, .csv and .html atomically; None, or the line naming what failed.

    Args:
        out_dir: the output folder.
        ranking: what ``choose_reference`` built.

    Returns:
        None, or one line naming the file that could not be written and why.
    """
    for kind, render in (("json", json_text), ("csv", csv_text), ("html", render_ranking_page)):
        path = os.path.join(out_dir, RANKING_NAMES[kind])
        try:
            write_text(render(ranking), path, True)
        except OSError as error:
            return f"{path}: cannot write the ranking ({error.strerror or error})"
    return None


def json_text(ranking: dict) -> str:
    """The ranking as JSON (``format`` first, so its first bytes say whose file it is).

    Args:
        ranking: what ``choose_reference`` built.

    Returns:
        The JSON text.
    """
    return json.dumps({"format": RANKING_FORMAT, **ranking}, indent=2) + "\n"


def csv_text(ranking: dict) -> str:
    """One row per candidate, best first.

    Args:
        ranking: what ``choose_reference`` built.

    Returns:
        The CSV text.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    recommended = (ranking.get("recommended") or {}).get("id")
    for candidate in ranking["candidates"]:
        facts = candidate.get("facts") or {}
        row = {**{key: candidate.get(key) for key in CSV_COLUMNS}, **{key: facts.get(key) for key in facts}}
        row["recommended"] = candidate["id"] == recommended
        row["reasons"] = "; ".join(candidate.get("reasons") or [])
        writer.writerow({column: _cell(row.get(column)) for column in CSV_COLUMNS})
    return buffer.getvalue()


def read_recommendation(path: str) -> tuple[str, str]:
    """The recommended scan of a ranking (``register --fixed-from``), and how it was chosen, in words.

    Args:
        path: a reference.json written by ``reference`` (or its folder).

    Returns:
        (the recommended scan's path, a sentence naming the ranking and its reasons).

    Raises:
        InputError: the file is missing, unreadable, not a ranking of this tool, names no
            recommendation, or the recommended scan is gone; names the file.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, RANKING_NAMES["json"])
    try:
        with open(path, encoding="utf-8") as handle:
            ranking = json.load(handle)
    except FileNotFoundError:
        raise InputError(path, "does not exist; run 'ct-affine-register reference' first") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot be read ({getattr(error, 'strerror', None) or error})") from None
    except ValueError:
        raise InputError(
            path, "is not JSON; expected the reference.json of 'ct-affine-register reference'"
        ) from None
    if not isinstance(ranking, dict) or ranking.get("format") != RANKING_FORMAT:
        raise InputError(path, "is not a ranking written by 'ct-affine-register reference'")
    recommended = ranking.get("recommended")
    if not isinstance(recommended, dict) or not isinstance(recommended.get("path"), str):
        raise InputError(path, "recommends no scan (every candidate failed); see its reasons")
    scan = recommended["path"]
    if not os.path.exists(scan):
        raise InputError(path, f"recommends {scan}, which no longer exists")
    reasons = "; ".join(recommended.get("reasons") or [])
    count = len(ranking.get("candidates") or [])
    chosen = f"recommended by {os.path.abspath(path)} (rank 1 of {count}: {reasons})"
    return scan, chosen


def render_ranking_page(ranking: dict) -> str:
    """reference.html: one row per candidate (thumbnail, rank, score, figures, facts, reasons).

    Args:
        ranking: what ``choose_reference`` built.

    Returns:
        The HTML text.
    """
    candidates = ranking.get("candidates") or []
    recommended = ranking.get("recommended") or {}
    run = ranking.get("run") or {}
    title = f"Reference choice: {len(candidates)} candidates, a sample of {len(ranking.get('sample') or [])}"
    choice = (
        f"recommended: <strong>{_e(recommended.get('id'))}</strong> ({_e(recommended.get('path'))})"
        if recommended
        else "no candidate can be recommended"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        RANKING_MARKERS["html"],
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta" id="recommended">{choice}</p>',
        f'<p class="meta" id="rule">rule: {_e(ranking.get("rule"))}</p>',
        f'<p class="meta">quality: {_e(ranking.get("quality"))}; run: {_e(run.get("state"))}, '
        f"{_e(run.get('backend'))}, {_e(run.get('seconds'))} s</p>",
        '<h2>Candidates</h2><p class="meta">Best first. Click a column title to sort.</p>',
        '<table id="cases"><thead><tr>',
        '<th class="sortable" data-key="order" data-type="number" aria-sort="ascending">rank</th>',
        '<th class="sortable" data-key="id" data-type="text">candidate</th>',
        "<th>scan</th>",
        '<th class="sortable" data-key="score" data-type="number">score</th>',
        '<th class="sortable" data-key="fit" data-type="number">fit</th>',
        '<th class="sortable" data-key="coverage" data-type="number">coverage</th>',
        '<th class="sortable" data-key="cut" data-type="number">FOV cut</th>',
        '<th class="sortable" data-key="slice" data-type="number">slice mm</th>',
        "<th>reasons</th>",
        "</tr></thead><tbody>",
    ]
    parts += [_row(candidate, candidate.get("id") == recommended.get("id")) for candidate in candidates]
    parts += ["</tbody></table>", f"<script>{_SCRIPT}</script>", "</body></html>", ""]
    return "\n".join(parts)


def _row(candidate: dict, best: bool) -> str:
    facts = candidate.get("facts") or {}
    last = candidate.get("ranked_last_because")
    colour = "#c62828" if last else ("#2e7d32" if best else "#555")
    label = "not usable" if last else ("recommended" if best else f"#{candidate.get('rank')}")
    badge = f'<span class="badge" style="background:{colour}">{_e(label)}</span>'
    thumb = candidate.get("thumbnail")
    picture = (
        f'<img class="thumb" loading="lazy" src="{_u(thumb)}" alt="scan {_e(candidate.get("id"))}">'
        if thumb
        else '<span class="nopicture">no picture</span>'
    )
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in candidate.get("reasons") or [])
    return (
        f'<tr id="candidate-{_e(candidate.get("id"))}" data-order="{candidate.get("rank")}" '
        f'data-id="{_e(candidate.get("id"))}" data-score="{_data(candidate.get("score"))}" '
        f'data-fit="{_data(candidate.get("fit"))}" data-coverage="{_data(candidate.get("coverage"))}" '
        f'data-cut="{_data(facts.get("fov_cut_share"))}" data-slice="{_data(facts.get("slice_mm"))}" '
        f'data-state="{"last" if last else "ranked"}">'
        f'<td class="num">{candidate.get("rank")}</td>'
        f'<td>{_e(candidate.get("id"))} {badge}<div class="path">{_e(candidate.get("path"))}</div></td>'
        f"<td>{picture}</td>"
        f'<td class="num">{_number(candidate.get("score"))}</td>'
        f'<td class="num">{_number(candidate.get("fit"))}</td>'
        f'<td class="num">{_number(candidate.get("coverage"))}</td>'
        f'<td class="num">{_number(facts.get("fov_cut_share"))}</td>'
        f'<td class="num">{_number(facts.get("slice_mm"))}</td>'
        f"<td><ul>{reasons}</ul></td></tr>"
    )


def _data(value) -> str:
    return "" if value is None else _e(value)


def _number(value) -> str:
    return "" if value is None else f"{float(value):.3g}"
