"""``ct-affine-register reference``: rank candidate reference scans and recommend one.

Candidates and sample are given like ``register``'s moving scans (paths, a list file or a root
folder). Exit status: 0 a scan is recommended and every pair registered; 1 no recommendation, or a
candidate or pair failed (the rest were still ranked); 2 bad input or options before any work;
130/143/129 when stopped by Ctrl-C / SIGTERM / SIGHUP (rerun the same command to continue).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Optional

from ..errors import InputError, OutputExistsError
from ..reference.defaults import DEFAULT_SAMPLE_SIZE, QUALITIES

EXIT_USAGE = 2


def add_reference_parser(
    commands, whole_number: Callable[[int], Callable[[str], int]], add_input_options
) -> None:
    """Add the ``reference`` subcommand to the ``ct-affine-register`` parser.

    Args:
        commands: the subparsers object of the main parser.
        whole_number: the main parser's argparse type factory for whole numbers.
        add_input_options: adds the reading options shared with ``register``.
    """
    reference = commands.add_parser(
        "reference",
        help="choose the reference (fixed) scan: rank candidates by how well a sample fits onto each",
        description="Register a sample of the cohort onto every candidate (coarse, judge-only "
        "registrations on the cohort engine) and rank the candidates by how well the sample fits and by "
        "what each covers. Writes reference.json, reference.csv and reference.html into --out; "
        "'register --fixed-from OUT/reference.json' then uses the recommended scan. Rerunning the "
        "same command continues: pairs already registered are kept.",
    )
    _add_scan_group(reference, "candidates", "the scans that could be the reference", required=True)
    _add_scan_group(reference, "sample", "the scans to register onto it (default: the candidates)")
    reference.add_argument(
        "--sample-size",
        type=whole_number(1),
        default=DEFAULT_SAMPLE_SIZE,
        help="sample scans registered onto each candidate, chosen reproducibly "
        f"(default {DEFAULT_SAMPLE_SIZE})",
    )
    reference.add_argument(
        "--quality",
        choices=QUALITIES,
        default="ranking",
        help="ranking: scans subsampled to about 6 mm, coarse registration (default); full: as register does",
    )
    reference.add_argument("--out", required=True, metavar="DIR", help="output folder")
    reference.add_argument(
        "--jobs",
        type=whole_number(1),
        default=None,
        help="pairs in parallel on this machine (default: one per core); 1 runs them in this process",
    )
    reference.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:PORT, or 'local' (needs the [dask] extra)",
    )
    reference.add_argument(
        "--overwrite", action="store_true", help="redo every pair and replace existing ranking files"
    )
    reference.add_argument(
        "--quiet", action="store_true", help="no progress on stderr, only errors and the ranking"
    )
    add_input_options(reference)
    reference.set_defaults(handler=run_reference_command)


def _add_scan_group(parser: argparse.ArgumentParser, name: str, what: str, required: bool = False) -> None:
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument(f"--{name}", nargs="+", metavar="PATH", help=f"{what} (files or DICOM folders)")
    group.add_argument(
        f"--{name}-list", metavar="FILE", help="a file with one path per line, or a CSV with 'path'"
    )
    group.add_argument(f"--{name}-root", metavar="DIR", help="every image file and DICOM series below DIR")


def run_reference_command(arguments: argparse.Namespace) -> int:
    """Run ``reference`` from parsed arguments: print the ranking table and the recommendation.

    Args:
        arguments: the parsed command line.

    Returns:
        The exit status (see the module's docstring).
    """
    from ..reference.run import choose_reference, exit_status

    try:
        candidates = _scans(arguments, "candidates")
        sample = _scans(arguments, "sample")
        ranking = choose_reference(
            candidates,
            arguments.out,
            sample=sample,
            sample_size=arguments.sample_size,
            quality=arguments.quality,
            jobs=arguments.jobs,
            scheduler=arguments.scheduler,
            progress="quiet" if arguments.quiet else "auto",
            overwrite=arguments.overwrite,
            allow_slice_gaps=arguments.allow_slice_gaps,
        )
    except (InputError, OutputExistsError, ImportError, ConnectionError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("stopped by SIGINT; rerun the same command to continue", file=sys.stderr)
        return 130
    print(ranking_table(ranking))
    if ranking.get("ranking_error"):
        print(f"error: {ranking['ranking_error']}", file=sys.stderr)
    run = ranking.get("run") or {}
    if run.get("stopped_by") or run.get("error"):
        why = run.get("error") or f"stopped by {run['stopped_by']}"
        print(f"{why}; the ranking is incomplete: rerun the same command to continue", file=sys.stderr)
    return exit_status(ranking)


def ranking_table(ranking: dict) -> str:
    """The ranking as a table, then the recommendation with its reasons.

    Args:
        ranking: what ``choose_reference`` returned.

    Returns:
        The text (no trailing newline).
    """
    rows = ranking.get("candidates") or []
    width = max([len("candidate")] + [len(str(row["id"])) for row in rows])
    lines = [f"{'rank':>4}  {'candidate':<{width}}  {'score':>6}  {'fit':>6}  {'cover':>6}  {'cut':>5}  note"]
    for row in rows:
        facts = row.get("facts") or {}
        cut = facts.get("fov_cut_share")
        cut_text = "-" if cut is None else f"{cut:.0%}"
        note = f"ranked last: {row['ranked_last_because']}" if row.get("ranked_last_because") else ""
        lines.append(
            f"{row['rank']:>4}  {row['id']:<{width}}  {_number(row.get('score')):>6}  "
            f"{_number(row.get('fit')):>6}  {_number(row.get('coverage')):>6}  {cut_text:>5}  {note}"
        )
    recommended = ranking.get("recommended")
    out_dir = (ranking.get("run") or {}).get("out_dir", "")
    if recommended is None:
        lines.append("no candidate can be recommended (see the reasons above)")
    else:
        lines.append(f"recommended: {recommended['id']} ({recommended['path']})")
        lines += [f"  - {reason}" for reason in recommended.get("reasons") or []]
        lines.append(
            f"use it: ct-affine-register register --fixed-from {os.path.join(out_dir, 'reference.json')} ..."
        )
    if not ranking.get("ranking_error"):
        lines.append(f"ranking: {os.path.join(out_dir, 'reference.html')}")
    return "\n".join(lines)


def _scans(arguments: argparse.Namespace, name: str) -> Optional[list]:
    from ..cohort.inputs import inputs_from_list_file, inputs_from_paths, inputs_from_root

    listed = getattr(arguments, f"{name}_list")
    root = getattr(arguments, f"{name}_root")
    if listed is not None:
        return inputs_from_list_file(listed)
    if root is not None:
        return inputs_from_root(root, exclude=arguments.out)
    paths = getattr(arguments, name)
    return None if paths is None else inputs_from_paths(paths)


def _number(value) -> str:
    return "-" if value is None else f"{float(value):.3f}"
