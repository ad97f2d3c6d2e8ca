"""The ``ct-affine-register`` command: inspect, register, reference, check, apply, demo.

Each subcommand imports what it needs when it runs (``--help`` and ``--version`` load no SimpleITK,
``check`` no optimiser): start-up is a fixed cost of every call.

Exit status: 0 all good, 1 when any input or case failed or a result's verdict is "failed" (the
others were still done), 2 for usage errors (argparse's convention) or when nothing could be
started; ``register`` stopped by Ctrl-C gives 130, by SIGTERM 143, by SIGHUP (terminal closed) 129.
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import os
import sys
from typing import Optional

from .._version import __version__
from ..cohort.outputs import OUTPUT_FORMATS
from ..core.timing import add_up, format_table, process_seconds
from ..errors import InputError, OutputExistsError
from .reference_command import add_reference_parser

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Optional[list[str]] = None) -> int:
    """``ct-affine-register``: parse the arguments and run the subcommand; a bad input is one ``error:`` line.

    Args:
        argv: the arguments; None: ``sys.argv[1:]``.

    Returns:
        The exit status: 0 success, 2 bad input or options before any work; the others are each
        subcommand's (see the README's command-line section).
    """
    parser = _parser()
    arguments = parser.parse_args(argv)
    arguments.started_after = process_seconds()  # start-up and the parser, for --verbose
    if getattr(arguments, "scheduler", None) not in (None, "local") and arguments.jobs is not None:
        parser.error("--jobs cannot be used with --scheduler ADDRESS: the cluster's workers decide")
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return arguments.handler(arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ct-affine-register",
        description="Padding-aware affine registration of CT scans: no gray borders, no gray rings.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command")

    inspect = commands.add_parser("inspect", help="say what is padding, what is air, in each scan")
    inspect.add_argument("paths", nargs="+", metavar="PATH", help="image files or DICOM series folders")
    inspect.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    add_input_options(inspect)
    inspect.set_defaults(handler=_inspect)

    register = commands.add_parser(
        "register",
        help="register moving scans (a cohort) onto one fixed scan",
        description="Register every moving scan onto the fixed scan. Rerunning the same command with "
        "the same --out continues the cohort: finished cases are kept, the rest run.",
    )
    fixed = register.add_mutually_exclusive_group(required=True)
    fixed.add_argument("--fixed", metavar="PATH", help="the reference scan (dataset A)")
    fixed.add_argument(
        "--fixed-from",
        metavar="JSON",
        help="the scan recommended by 'ct-affine-register reference' (its OUT/reference.json)",
    )
    sources = register.add_mutually_exclusive_group(required=True)
    sources.add_argument(
        "--moving", nargs="+", metavar="PATH", help="scans to register (files or DICOM folders)"
    )
    sources.add_argument(
        "--moving-list",
        metavar="FILE",
        help="a file with one path per line, or a CSV with a 'path' column and optional 'id' and 'labels'",
    )
    sources.add_argument(
        "--moving-root", metavar="DIR", help="every image file and DICOM series below DIR is a case"
    )
    register.add_argument(
        "--moving-labels",
        nargs="+",
        metavar="PATH",
        help="a label map of each --moving scan, in the same order: carried to the fixed grid as "
        "S_labels.<format>, label values and pixel type kept",
    )
    register.add_argument("--out", required=True, metavar="DIR", help="output folder")
    _add_registration_options(register)
    register.add_argument(
        "--output-format",
        choices=OUTPUT_FORMATS,
        default="nii.gz",
        help="file format of the registered scan, validity mask and labels (default nii.gz)",
    )
    register.add_argument(
        "--jobs",
        type=_whole_number(1),
        default=None,
        help="cases in parallel on this machine (default: one per core; a lone case runs in this process); "
        "1 runs them in this process",
    )
    register.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://HOST:PORT of its scheduler, or 'local' for a local cluster "
        "of --jobs single-threaded workers (needs the [dask] extra)",
    )
    register.add_argument(
        "--overwrite", action="store_true", help="redo every case and replace existing outputs"
    )
    register.add_argument(
        "--quiet", action="store_true", help="no progress on stderr, only errors and the summary"
    )
    register.add_argument(
        "--verbose",
        action="store_true",
        help="at the end, print where the time went: seconds per step (reading, analysing, registering, "
        "resampling, writing each output, pictures, summary)",
    )
    add_input_options(register)
    register.set_defaults(handler=_register)

    _add_check_parser(commands)
    add_reference_parser(commands, _whole_number, add_input_options)

    demo = commands.add_parser("demo", help="register a generated pair and print the accuracy")
    demo.add_argument("--out", default="ct-affine-register-demo", metavar="DIR", help="output folder")
    demo.add_argument(
        "--seed", type=_whole_number(0), default=0, help="seed of the generated pair (0 or more)"
    )
    demo.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    demo.set_defaults(handler=_demo)
    _add_apply_parser(commands)
    return parser


def add_input_options(parser: argparse.ArgumentParser) -> None:
    """How inputs are read, shared by ``inspect`` and ``register`` (same-named ``read_image`` keywords).

    Args:
        parser: the subcommand's parser.
    """
    parser.add_argument(
        "--allow-slice-gaps",
        action="store_true",
        help="accept a DICOM series with missing or unevenly spaced slices: each slice is put at its true "
        "position and the gaps are interpolated (default: such a series is refused)",
    )


def _add_registration_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transform", choices=("affine", "rigid", "similarity"), default="affine")
    parser.add_argument(
        "--fill",
        type=_fill_value,
        default=None,
        help="value for output voxels without data (default: moving air)",
    )
    parser.add_argument("--interpolator", choices=("linear", "bspline"), default="linear")


def _add_check_parser(commands) -> None:
    check = commands.add_parser(
        "check", help="the verdict on any fixed→moving transform (ours, elastix, ANTs, Slicer ...)"
    )
    check.add_argument("--fixed", required=True, metavar="PATH", help="the fixed (reference) scan")
    check.add_argument("--moving", required=True, metavar="PATH", help="the moving scan")
    check.add_argument(
        "--transform",
        required=True,
        metavar="PATH",
        help="fixed→moving transform: .tfm/.txt/.h5/.mat (ITK, Slicer, ANTs) or elastix TransformParameters",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(handler=_check)


def _check(arguments: argparse.Namespace) -> int:
    """Exit 0 for "ok" and "suspect", 1 for "failed" (as ``register``), 2 when an input is bad."""
    from ..pair.check import check_files, format_check

    try:
        result = check_files(arguments.fixed, arguments.moving, arguments.transform)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result, indent=2) if arguments.json else format_check(result))
    return EXIT_FAILED if result["verdict"] == "failed" else EXIT_OK


def _whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``, refused with a message saying so."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number, {minimum} or more, not {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, not {value}")
        return value

    return parse


def _fill_value(text: str):
    """A finite number, as a float unless it is a whole number a float cannot hold: then an exact
    ``int`` (an int64 scan's fill may need all 64 bits; 9007199254740993 would become ...992)."""
    value = _finite_float(text)
    exact = decimal.Decimal(text.strip())
    if exact == exact.to_integral_value() and abs(exact) < 2**64 and int(exact) != value:
        return int(exact)  # a whole number a float would change, within what an integer output holds
    return value


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text!r}")
    return value


def _inspect(arguments: argparse.Namespace) -> int:
    from ..io.images import read_image
    from ..padding.analysis import analyze_background

    rows, failed = [], False
    for path in arguments.paths:
        try:
            # Read even a series with slice gaps, to show what it holds; refused below unless allowed.
            loaded = read_image(path, allow_slice_gaps=True, capture_itk_warnings=True)
            analysis = analyze_background(loaded.image, loaded.dicom_padding)
        except InputError as error:
            print(f"error: {error}", file=sys.stderr)
            rows.append({"path": path, "error": error.reason})
            failed = True
            continue
        if loaded.slice_problem is not None and not arguments.allow_slice_gaps:
            print(
                f"error: {path}: DICOM series has {loaded.slice_problem}; "
                "register refuses it unless given --allow-slice-gaps",
                file=sys.stderr,
            )
            failed = True
        findings = analysis.to_dict()
        rows.append(
            {
                "path": path,
                **{key: findings[key] for key in ("corner_median", "padding_value", "padding_fraction")},
                **{key: findings[key] for key in ("fov", "air_value", "kind", "summary")},
                "notes": list(loaded.notes),
                **({"note": loaded.note} if loaded.note else {}),
            }
        )
    if arguments.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)
    return EXIT_FAILED if failed else EXIT_OK


def _print_table(rows: list[dict]) -> None:
    """One line per scan; each note on its own indented line below it, so none is hidden."""
    good = [row for row in rows if "error" not in row]
    if not good:
        return
    width = max(len(row["path"]) for row in good)
    print(f"{'path':<{width}}  {'corners':>7}  {'padding':>7}  {'air':>6}  summary")
    for row in good:
        padding = "-" if row["padding_value"] is None else str(row["padding_value"])
        numbers = f"{row['corner_median']:>7}  {padding:>7}  {row['air_value']:>6}"
        print(f"{row['path']:<{width}}  {numbers}  {row['summary']}")
        for note in row["notes"]:
            print(f"  note: {note}")


def _register(arguments: argparse.Namespace) -> int:
    from ..cohort.run import exit_status, run_cohort

    imported = process_seconds()  # what the command imports is start-up too
    problem = _moving_labels_problem(arguments) or _scheduler_problem(arguments.scheduler)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        fixed, chosen_by = arguments.fixed, None
        if arguments.fixed_from is not None:
            from ..reference.report import read_recommendation

            fixed, chosen_by = read_recommendation(arguments.fixed_from)
        moving = _moving_inputs(arguments)
        summary = run_cohort(
            fixed,
            moving,
            arguments.out,
            jobs=arguments.jobs,
            scheduler=arguments.scheduler,
            transform=arguments.transform,
            fill=arguments.fill,
            interpolator=arguments.interpolator,
            output_format=arguments.output_format,
            overwrite=arguments.overwrite,
            progress="quiet" if arguments.quiet else "auto",
            allow_slice_gaps=arguments.allow_slice_gaps,
            capture_reader_warnings=True,
            fixed_chosen_by=chosen_by,
        )
    except (InputError, OutputExistsError, ImportError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C while checking the inputs or writing the summary
        print("stopped by SIGINT; rerun the same command to continue", file=sys.stderr)
        return 130
    where = "not written" if summary["summary_error"] else os.path.join(arguments.out, "report.html")
    print(f"{summary['summary_line']}; report: {where}")
    if summary["summary_error"]:
        print(f"error: {summary['summary_error']}", file=sys.stderr)
    if summary["run"].get("error"):  # the run could not go on (the Dask scheduler was lost)
        unfinished = summary["counts"]["cancelled"]
        print(
            f"error: {summary['run']['error']}; {_count(unfinished, 'case')} not finished: "
            "rerun the same command to continue",
            file=sys.stderr,
        )
    stopped_by = summary["run"].get("stopped_by")
    if stopped_by:
        cancelled = summary["counts"]["cancelled"]
        message = f"stopped by {stopped_by}: {cancelled} cases cancelled; rerun the same command to continue"
        print(message, file=sys.stderr)
    if arguments.verbose:
        print(step_table(summary, process_seconds(), imported))
    return exit_status(summary)


def step_table(summary: dict, wall: Optional[float] = None, startup: Optional[float] = None) -> str:
    """``--verbose``'s table: the run's steps (reading and analysing the fixed scan, planning, the
    cases, the summary) with the cases' own steps summed below "cases", after the start-up.

    Args:
        summary: what ``run_cohort`` returned.
        wall: seconds since the process started, or None.
        startup: seconds from the process's start to the command's first work (interpreter, imports,
            parsing), or None (then no start-up line).

    Returns:
        The table's lines.
    """
    run = summary.get("run") or {}
    steps = dict(run.get("timings") or {})
    if startup is not None:
        steps = {"start-up": startup, **steps}
    cases = dict(run.get("case_timings") or {})
    besides = float(steps.get("cases", 0.0)) - sum(cases.values())
    if cases and besides > 0.0005:  # cases one after another: what they spent outside their steps
        cases["other (workers, hand-over)"] = besides
    inner = {"cases": cases}
    # a lone case's moving scan, read and analysed on the second core while the fixed scan was analysed
    ahead = add_up([case["read_ahead"] for case in summary.get("cases", []) if case.get("read_ahead")])
    if ahead:
        inner = {"analyse_fixed": {f"{name} (beside it)": value for name, value in ahead.items()}, **inner}
    ran = sum(1 for case in summary.get("cases", []) if case.get("timings") and not case.get("resumed"))
    title = f"step (cases: sum over {_count(ran, 'case')})"
    return format_table(steps, wall, inner=inner, title=title)


def _moving_labels_problem(arguments: argparse.Namespace) -> Optional[str]:
    """Why --moving-labels cannot be paired with the moving scans, or None (checked before any work)."""
    labels = arguments.moving_labels
    if labels is None:
        return None
    if arguments.moving is None:
        given = "--moving-list" if arguments.moving_list is not None else "--moving-root"
        return (
            f"--moving-labels goes with --moving, not {given}; "
            "give label maps in a CSV list's 'labels' column instead"
        )
    if len(labels) != len(arguments.moving):
        return (
            f"--moving-labels gives {_count(len(labels), 'label map')} for "
            f"{_count(len(arguments.moving), '--moving scan')}; "
            "give one per scan, in the same order (scans without labels: use a CSV --moving-list)"
        )
    return None


def _scheduler_problem(address: Optional[str]) -> Optional[str]:
    """Why ``--scheduler`` cannot be used, or None (checked before any work; Dask not imported)."""
    if address is None:
        return None
    from ..cohort.dask_backend import scheduler_problem

    problem = scheduler_problem(address)
    return None if problem is None else f"--scheduler {address!r}: {problem}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _moving_inputs(arguments: argparse.Namespace) -> list:
    from ..cohort.inputs import inputs_from_list_file, inputs_from_paths, inputs_from_root

    if arguments.moving_list is not None:
        return inputs_from_list_file(arguments.moving_list)
    if arguments.moving_root is not None:
        return inputs_from_root(arguments.moving_root, exclude=arguments.out)
    return inputs_from_paths(arguments.moving, labels=arguments.moving_labels)


def _demo(arguments: argparse.Namespace) -> int:
    from .demo import run_demo

    try:
        return run_demo(arguments.out, seed=arguments.seed, overwrite=arguments.overwrite)
    except (OutputExistsError, InputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE


# --- apply: resample images with an existing transform -------------------------------------------


def _add_apply_parser(commands) -> None:
    apply = commands.add_parser(
        "apply", help="put scans or label maps on the fixed grid with an existing transform file"
    )
    apply.add_argument("--fixed", required=True, metavar="PATH", help="the scan whose grid the outputs take")
    apply.add_argument(
        "--transform",
        required=True,
        metavar="FILE",
        help="fixed→input transform, as register writes it: .tfm/.txt/.h5/.mat (ITK, Slicer, ANTs; "
        "non-linear ones too) or elastix TransformParameters (linear)",
    )
    apply.add_argument("--input", required=True, nargs="+", metavar="PATH", help="images to resample")
    apply.add_argument("--out", required=True, metavar="DIR", help="output folder")
    apply.add_argument(
        "--labels", action="store_true", help="the inputs are label maps: label interpolation, values kept"
    )
    apply.add_argument(
        "--fill",
        type=_fill_value,
        default=None,
        help="value for output voxels without data (default: input air)",
    )
    apply.add_argument("--interpolator", choices=("linear", "bspline"), default=None)
    apply.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    apply.set_defaults(handler=_apply)


def _apply(arguments: argparse.Namespace) -> int:
    if arguments.labels and (arguments.fill is not None or arguments.interpolator is not None):
        print(
            "error: --fill and --interpolator are for scans; label maps get label interpolation",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from ..pair.apply import apply_files, describe_result

    try:
        results = apply_files(
            arguments.fixed,
            arguments.transform,
            arguments.input,
            arguments.out,
            labels=arguments.labels,
            overwrite=arguments.overwrite,
            fill=arguments.fill,
            interpolator=arguments.interpolator or "linear",
            on_result=lambda result: print(
                describe_result(result), file=sys.stdout if result["status"] == "ok" else sys.stderr
            ),
        )
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK if all(result["status"] == "ok" for result in results) else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
