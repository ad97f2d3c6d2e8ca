"""Side-by-side benchmark: this project, the seed recipe, elastix and greedy on known-answer CT pairs.

Run from the project root::

    /tmp/venv/bin/python Testing/benchmarks/compare.py            # full run, 3 repeats
    /tmp/venv/bin/python Testing/benchmarks/compare.py --quick    # smoke run: 2 small cases, 1 repeat

For every case and tool it prints mean and max TRE over body points, ring voxels (output voxels
below -1100 HU where the fixed scan holds real data), wall time (median of ``--repeats`` runs),
peak memory and ratios to elastix. Tools run as separate processes, one at a time, in an order
that rotates between repeats so that no tool always runs first (cold caches) or last.
This is a script that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases as case_builder  # noqa: E402
import metrics  # noqa: E402
import peers  # noqa: E402


@dataclass
class Score:
    """One run of one tool on one case, scored."""

    wall_s: float
    core_s: Optional[float]
    peak_mb: float
    tre_mean: Optional[float]
    tre_max: Optional[float]
    ring: Optional[int]
    error: Optional[str] = None


@dataclass
class Summary:
    """A tool's figures on one case across repeats: medians, and the largest peak memory."""

    tool: str
    runs: int
    failures: int
    wall_s: Optional[float]
    core_s: Optional[float]
    peak_mb: Optional[float]
    tre_mean: Optional[float]
    tre_max: Optional[float]
    ring: Optional[float]
    error: Optional[str]


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 small cases, 1 repeat")
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per tool and case (default 3; 1 with --quick)"
    )
    parser.add_argument("--tools", nargs="+", default=None, help="subset of: ours seed elastix greedy")
    parser.add_argument(
        "--cases", nargs="+", default=None, help="only cases whose name contains one of these"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every run's figures to this file")
    parser.add_argument("--markdown", type=Path, default=None, help="also write a summary table for the docs")
    parser.add_argument("--workdir", type=Path, default=None, help="keep case files and tool outputs here")
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    return args


def select_tools(names: Optional[list[str]]) -> tuple[list, list[str]]:
    """Available tools (in the requested order) and a note for each one skipped or run differently."""
    tools, skipped = [], []
    for tool in peers.all_tools():
        if names and tool.name not in names:
            continue
        ok, reason = tool.available()
        if ok:
            tools.append(tool)
            if reason:
                skipped.append(f"{tool.name}: {reason}")
        else:
            skipped.append(f"{tool.name}: skipped, {reason}")
    return tools, skipped


def write_case(case: case_builder.Case, directory: Path) -> tuple[Path, Path]:
    """Uncompressed .mha files, so no tool pays for decompression the others do not."""
    directory.mkdir(parents=True, exist_ok=True)
    fixed, moving = directory / "fixed.mha", directory / "moving.mha"
    sitk.WriteImage(case.fixed, str(fixed), useCompression=False)
    sitk.WriteImage(case.moving, str(moving), useCompression=False)
    return fixed, moving


def score_run(run: peers.ToolRun, case: case_builder.Case) -> Score:
    if run.error is not None:
        return Score(run.wall_s, None, run.peak_mb, None, None, None, run.error)
    tre_mean, tre_max = metrics.target_registration_error(
        run.transform, case.true_transform, case.body_points
    )
    ring = metrics.ring_voxels(run.registered, case.fixed_valid)
    return Score(run.wall_s, run.core_s, run.peak_mb, tre_mean, tre_max, ring)


def run_case(case: case_builder.Case, tools: list, repeats: int, workdir: Path) -> dict[str, list[Score]]:
    """Every tool ``repeats`` times; repeat r starts with tool r (mod n) so the order alternates."""
    fixed, moving = write_case(case, workdir / case.name)
    scores: dict[str, list[Score]] = {tool.name: [] for tool in tools}
    for repeat in range(repeats):
        shift = repeat % len(tools)
        for tool in tools[shift:] + tools[:shift]:
            run = tool.run(fixed, moving, workdir / case.name / f"{tool.name}-{repeat}")
            scores[tool.name].append(score_run(run, case))
    return scores


def _median(values: list) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(tool: str, scores: list[Score]) -> Summary:
    good = [s for s in scores if s.error is None]
    errors = [s.error for s in scores if s.error is not None]
    return Summary(
        tool=tool,
        runs=len(scores),
        failures=len(errors),
        wall_s=_median([s.wall_s for s in good]),
        core_s=_median([s.core_s for s in good]),
        peak_mb=max((s.peak_mb for s in good), default=None),
        tre_mean=_median([s.tre_mean for s in good]),
        tre_max=_median([s.tre_max for s in good]),
        ring=_median([s.ring for s in good]),
        error=errors[0] if errors else None,
    )


def initial_tre(case: case_builder.Case) -> float:
    """TRE of doing nothing (identity): how far the case starts from the answer."""
    return metrics.target_registration_error(
        sitk.Transform(3, sitk.sitkIdentity), case.true_transform, case.body_points
    )[0]


# --------------------------------------------------------------------------------------------
# Printing


COLUMNS = (
    f"{'tool':<8} {'TRE mean':>8} {'TRE max':>8} {'ring vox':>9} {'time s':>7} {'core s':>7} "
    f"{'peak MB':>8} {'time/elx':>8} {'mem/elx':>8} {'dTRE/elx':>8}"
)


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _ratio(value: Optional[float], reference: Optional[float]) -> Optional[float]:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def format_row(summary: Summary, elastix: Optional[Summary]) -> str:
    if summary.wall_s is None:
        return f"{summary.tool:<8} FAILED ({summary.failures}/{summary.runs}): {summary.error}"
    reference = elastix if elastix is not None and elastix.wall_s is not None else None
    time_ratio = _ratio(summary.wall_s, reference.wall_s) if reference else None
    memory_ratio = _ratio(summary.peak_mb, reference.peak_mb) if reference else None
    tre_delta = summary.tre_mean - reference.tre_mean if reference else None
    row = (
        f"{summary.tool:<8} {summary.tre_mean:8.2f} {summary.tre_max:8.2f} {summary.ring:9.0f} "
        f"{summary.wall_s:7.2f} {_fmt(summary.core_s, '7.2f'):>7} {summary.peak_mb:8.0f} "
        f"{_fmt(time_ratio, '8.2f'):>8} {_fmt(memory_ratio, '8.2f'):>8} {_fmt(tre_delta, '+8.2f'):>8}"
    )
    if summary.failures:
        row += f"  ({summary.failures} of {summary.runs} runs failed: {summary.error})"
    return row


def print_case(case: case_builder.Case, summaries: list[Summary]) -> None:
    elastix = next((s for s in summaries if s.tool == "elastix"), None)
    print(f"\n== {case.name}")
    print(f"   {case.description}")
    print(
        f"   TRE before registration (identity): {initial_tre(case):.2f} mm; "
        f"{len(case.body_points)} body points"
    )
    print("   " + COLUMNS)
    for summary in summaries:
        print("   " + format_row(summary, elastix))
    sys.stdout.flush()


def print_overall(all_summaries: dict[str, list[Summary]]) -> None:
    """Per tool over all cases: worst TRE, total ring voxels, geometric-mean time ratio to elastix."""
    print("\n== all cases")
    print(
        f"   {'tool':<8} {'worst mean TRE':>14} {'worst max TRE':>13} {'ring vox total':>14} "
        f"{'time/elx (geo mean)':>20}"
    )
    per_tool: dict[str, list[tuple[Summary, Optional[Summary]]]] = {}
    for summaries in all_summaries.values():
        elastix = next((s for s in summaries if s.tool == "elastix" and s.wall_s is not None), None)
        for summary in summaries:
            per_tool.setdefault(summary.tool, []).append((summary, elastix))
    for tool, pairs in per_tool.items():
        done = [s for s, _ in pairs if s.wall_s is not None]
        ratios = [s.wall_s / e.wall_s for s, e in pairs if s.wall_s is not None and e is not None]
        geo = statistics.geometric_mean(ratios) if ratios else None
        worst_mean = max((s.tre_mean for s in done), default=None)
        worst_max = max((s.tre_max for s in done), default=None)
        rings = sum(s.ring for s in done) if done else None
        failed = len(pairs) - len(done)
        print(
            f"   {tool:<8} {_fmt(worst_mean, '14.2f'):>14} {_fmt(worst_max, '13.2f'):>13} "
            f"{_fmt(rings, '14.0f'):>14} {_fmt(geo, '20.2f'):>20}"
            + (f"  ({failed} case(s) failed)" if failed else "")
        )


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def markdown_table(all_summaries: dict[str, list[Summary]]) -> str:
    """One row per case: each tool's mean TRE (mm), ring voxels and median time (s)."""
    tools = list(dict.fromkeys(s.tool for summaries in all_summaries.values() for s in summaries))
    lines = [
        "| case | " + " | ".join(f"{t}: TRE mm / ring vox / time s" for t in tools) + " |",
        "|---|" + "---|" * len(tools),
    ]
    for case, summaries in all_summaries.items():
        by_tool = {s.tool: s for s in summaries}
        cells = []
        for tool in tools:
            s = by_tool.get(tool)
            if s is None or s.wall_s is None:
                cells.append("failed" if s is not None else "-")
            else:
                cells.append(f"{s.tre_mean:.2f} / {s.ring:.0f} / {s.wall_s:.1f}")
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def print_header(tools: list, skipped: list[str], repeats: int, workdir: Path) -> None:
    try:
        from importlib.metadata import version

        ours = version("ctaffineregister")
    except Exception:  # noqa: BLE001 - version is informative only
        ours = "?"
    elastix = next((t for t in peers.all_tools() if t.name == "elastix"), None)
    print("CTAffineRegister benchmark", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    print(
        f"machine: {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SimpleITK {sitk.Version.VersionString()}"
    )
    print(
        f"versions: ctaffineregister {ours}; elastix {elastix.version() if elastix else '-'} "
        f"(-threads 2, default affine map); {peers.greedy_version()} (-threads 2)"
    )
    print(f"tools: {', '.join(t.name for t in tools)}; repeats: {repeats} (order rotates per repeat)")
    print(f"load average at start: {_load()} (other processes on this machine skew times)")
    print(f"Python + SimpleITK + numpy import alone: {peers.python_baseline_mb(workdir):.0f} MB peak RSS")
    for note in skipped:
        print("  " + note)
    print(
        "time s: median wall time of the whole child process (read, register, resample, write); core s: "
        "in-process register+resample only;\npeak MB: max RSS of the child process (Python tools include "
        "the interpreter, see above); TRE and ring: medians over repeats; "
        "dTRE/elx: mean TRE minus elastix's (mm)."
    )


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    tools, skipped = select_tools(args.tools)
    if not tools:
        print("no tool available:", *skipped, sep="\n  ")
        return 1
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ctar-bench-"))
    print_header(tools, skipped, args.repeats, workdir)
    records: list[dict] = []
    all_summaries: dict[str, list[Summary]] = {}
    try:
        for case in case_builder.build_cases(quick=args.quick, only=args.cases):
            scores = run_case(case, tools, args.repeats, workdir)
            summaries = [summarise(name, runs) for name, runs in scores.items()]
            all_summaries[case.name] = summaries
            print_case(case, summaries)
            for name, runs in scores.items():
                records += [
                    {"case": case.name, "tool": name, "repeat": i, **asdict(s)} for i, s in enumerate(runs)
                ]
        print_overall(all_summaries)
        print(f"\nload average at end: {_load()}")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(records, indent=1))
    if args.markdown:
        args.markdown.write_text(markdown_table(all_summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
