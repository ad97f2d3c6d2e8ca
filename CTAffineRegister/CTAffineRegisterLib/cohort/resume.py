"""Rerunning a cohort into the same folder continues it: what is finished stays, the rest runs.

Each case's ``ID_report.json`` says what this tool did for it. Before any work, every case is
put in one of four groups:

- **done**: its report says "ok", every output it lists is there with the size it recorded, and
  the inputs (path, size, modification time and a hash of the first and last MiB of the moving
  scan, the fixed scan and the labels; see ``case_runner.input_fingerprint``)
  and the options are those of this run. It is skipped and reported as it was.
- **run**: no trace of it (new), or this tool started it and did not finish (its report says
  "failed", "cancelled" or "running", or an output is missing or has another size). Its files
  are this tool's own unfinished work, so they are replaced without ``--overwrite``.
- **conflict**: finished, but from other inputs or options. Redoing it would replace finished
  results, so the run is refused unless ``--overwrite`` is given.
- **blocked**: files are at its output paths but no report of this tool claims them. They are
  someone else's: the case fails at once (without registering) unless ``--overwrite``.

This is how resuming keeps the promise that nothing is replaced without ``--overwrite``: without
it, the only files ever replaced are those of a case this tool started and never finished.
Pure module: the standard library only.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from typing import Optional

from .case import CASE_REPORT_FORMAT, CaseOptions, input_fingerprint
from .inputs import MovingInput
from .outputs import output_names

DONE, RUN, CONFLICT, BLOCKED = "done", "run", "conflict", "blocked"


@dataclass
class CasePlan:
    """What this run does with one case, and why."""

    case: MovingInput
    action: str
    previous: Optional[dict] = None  # the existing report (the result itself for a done case)
    reason: Optional[str] = None  # for conflict and blocked: one line naming the file


def plan_case(
    case: MovingInput, out_dir: str, options: CaseOptions, fixed_fingerprint: dict, overwrite: bool
) -> CasePlan:
    """What to do with one case on this run: run it, skip it (done), or refuse it (conflict, blocked).

    An earlier report of this tool with complete outputs from the same inputs and options is done;
    one from other inputs or options is a conflict; files this tool did not write block the case.
    With ``overwrite`` every case runs.

        Args:
            case: the case.
            out_dir: the output folder.
            options: this run's ``CaseOptions``.
            fixed_fingerprint: the fixed scan's ``input_fingerprint``.
            overwrite: the user allows replacing outputs.

        Returns:
            The ``CasePlan`` (action, earlier report, reason).
    """
    names = output_names(case.case_id, options.output_format, case.labels is not None, options.images)
    report_path = os.path.join(out_dir, names["report"])
    previous, foreign = read_case_report(report_path)
    if overwrite:
        return CasePlan(case, RUN, previous)
    if foreign:
        return CasePlan(case, BLOCKED, None, f"{report_path}: already exists (use --overwrite to replace it)")
    if previous is None:
        existing = [name for role, name in names.items() if os.path.exists(os.path.join(out_dir, name))]
        if existing:
            path = os.path.join(out_dir, existing[0])
            return CasePlan(case, BLOCKED, None, f"{path}: already exists (use --overwrite to replace it)")
        return CasePlan(case, RUN)
    if previous.get("status") != "ok":
        return CasePlan(case, RUN, previous)
    difference = _difference(previous, case, options, fixed_fingerprint)
    if difference is not None:
        return CasePlan(case, CONFLICT, previous, f"{report_path}: finished from {difference}")
    if not outputs_complete(previous, out_dir, names):
        return CasePlan(case, RUN, previous)
    return CasePlan(case, DONE, previous)


def read_case_report(path: str) -> tuple[Optional[dict], bool]:
    """(report, foreign): the report if this tool wrote it; foreign when something else is there.

    Args:
        path: a case report path.

    Returns:
        (report or None, foreign).
    """
    if not os.path.lexists(path):
        return None, False
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None, True
    if not isinstance(report, dict) or report.get("format") != CASE_REPORT_FORMAT:
        return None, True
    return report, False


def outputs_complete(report: dict, out_dir: str, names: dict) -> bool:
    """Every output this run expects is listed in the report and on disk with the recorded size.

    Args:
        report: the earlier run's case report.
        out_dir: the output folder.
        names: this run's output names (``output_names``).

    Returns:
        True when nothing needs redoing.
    """
    listed, sizes = report.get("outputs") or {}, report.get("output_bytes") or {}
    for role, name in names.items():
        if role == "report":
            continue
        if listed.get(role) != name:
            return False
        try:
            if os.path.getsize(os.path.join(out_dir, name)) != sizes.get(role):
                return False
        except OSError:
            return False
    return True


def _difference(
    previous: dict, case: MovingInput, options: CaseOptions, fixed_fingerprint: dict
) -> Optional[str]:
    """What differs between a finished case and this run, in words, or None."""
    recorded = previous.get("inputs") or {}
    current = {
        "fixed": fixed_fingerprint,
        "moving": input_fingerprint(case.path),
        "labels": input_fingerprint(case.labels),
    }
    for role in ("moving", "fixed", "labels"):
        was, now = _plain(recorded.get(role)), _comparable(recorded.get(role), current[role])
        if was != now:
            return f"another {role} input ({_change(was, now)})"
    wanted, made = _plain(options.to_dict()), _plain(previous.get("options"))
    if made != wanted:
        made = made or {}
        changed = sorted(key for key in set(wanted) | set(made) if made.get(key) != wanted.get(key))
        details = ", ".join(f"{key} {made.get(key)!r} now {wanted.get(key)!r}" for key in changed)
        return f"other options ({details})"
    return None


def _plain(value):
    """The same value as it reads back from JSON, so a float written as -1000.0 compares equal."""
    return json.loads(json.dumps(value, sort_keys=True))


def _comparable(recorded: Optional[dict], current: Optional[dict]) -> Optional[dict]:
    """``current`` as an older report recorded it: one written before fingerprints had a content
    ``sample`` is compared without it, so an upgrade does not turn finished cases into conflicts."""
    current = _plain(current)
    if isinstance(recorded, dict) and isinstance(current, dict) and "sample" not in recorded:
        current.pop("sample", None)
    return current


def _change(was: Optional[dict], now: Optional[dict]) -> str:
    """What changed between two fingerprints, in words: the path, or what differs at the same path."""
    if (
        not was
        or not now
        or was.get("path") != now.get("path")
        or "missing" in (was.get("kind"), now.get("kind"))
    ):
        return f"{_describe(was)}; now {_describe(now)}"
    changes = []
    if was.get("kind") != now.get("kind"):
        changes.append(f"was a {was.get('kind')}, now a {now.get('kind')}")
    if was.get("files") != now.get("files"):
        changes.append(f"{was.get('files')} files, now {now.get('files')}")
    if was.get("bytes") != now.get("bytes"):
        changes.append(f"{was.get('bytes')} bytes, now {now.get('bytes')}")
    if was.get("mtime_ns") != now.get("mtime_ns"):
        changes.append(f"modified {_when(was.get('mtime_ns'))}, now {_when(now.get('mtime_ns'))}")
    if was.get("digest") != now.get("digest") and not changes:
        changes.append("a file in it was renamed, resized or modified")
    if was.get("sample") != now.get("sample"):
        same = " (same size and modification time)" if not changes else ""
        changes.append(f"its content changed{same}")
    return f"{was.get('path')}: {', '.join(changes) or 'changed'}"


def _when(mtime_ns) -> str:
    if not isinstance(mtime_ns, int):
        return "unknown"
    return datetime.datetime.fromtimestamp(mtime_ns / 1e9).isoformat(sep=" ", timespec="microseconds")


def _describe(fingerprint: Optional[dict]) -> str:
    if not fingerprint:
        return "none"
    if fingerprint.get("kind") == "missing":
        return f"{fingerprint.get('path')} missing"
    return f"{fingerprint.get('path')}, {fingerprint.get('bytes')} bytes"
