"""Register a cohort (every scan of dataset B onto one reference scan of dataset A), resumably.

``run_cohort`` is the whole job, from Python and behind ``ct-affine-register register``:

1. check everything that can be checked before any work (arguments, label maps that are scans,
   output folder and its lock (one run per folder: ``cohort.lock``), summary files, the fixed
   scan, inputs that outputs would replace, ``fill`` against the outputs' pixel types);
2. plan each case: done by an earlier run (skipped), to run, or refused (``cohort.resume``);
3. run the cases on a backend (this process, local worker processes, or Dask), writing each
   case's outputs and ``ID_report.json`` as soon as it finishes (``cohort.case``);
4. rebuild report.json, report.csv and report.html from the case reports (``cohort.summary``).

Ctrl-C, SIGTERM and SIGHUP stop it cleanly: queued cases do not start, running ones are cancelled and
remove what they wrote, and the summary lists them as "cancelled". Pure module (Dask is imported
only when a Dask client or scheduler is given).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, Optional, Union

import SimpleITK as sitk

from ..core.timing import StepTimer, add_up
from ..errors import InputError, SchedulerLost
from ..io.images import IMAGE_SUFFIXES
from ..registration.options import TRANSFORM_TYPES, RegistrationOptions
from ..resample.scans import INTERPOLATORS, fill_problem
from .backends import InProcessBackend, ProcessPoolBackend, StopRequest
from .case import (
    CaseOptions,
    CaseTask,
    FixedScan,
    fixed_problem,
    input_fingerprint,
    load_fixed,
    now_text,
)
from .dask_backend import DaskBackend, connect, scheduler_problem, start_local_cluster
from .inputs import (
    MovingInput,
    PathLike,
    check_labels_are_not_scans,
    inputs_from_paths,
    item_list,
    unique_ids,
)
from .lock import acquire_lock
from .outputs import (
    OUTPUT_FORMATS,
    SUMMARY_NAMES,
    check_inputs_not_outputs,
    check_summary_paths,
    output_names,
    prepare_out_dir,
)
from .prefetch import MovingPrefetch, begin_prefetch, end_prefetch
from .progress import ProgressDisplay, choose_mode
from .resume import BLOCKED, CONFLICT, DONE, RUN, CasePlan, plan_case
from .summary import build_summary, write_summary

EXIT_BY_SIGNAL = {"SIGINT": 130, "SIGTERM": 143, "SIGHUP": 129}
# Signals that stop a run cleanly: Ctrl-C, `kill`/a batch system, the terminal closed (not on Windows).
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


def run_cohort(
    fixed: PathLike,
    moving: Iterable[Union[PathLike, MovingInput]],
    out_dir: PathLike,
    *,
    jobs: Optional[int] = None,
    client: Optional[Any] = None,
    scheduler: Optional[str] = None,
    transform: str = "affine",
    fill: Optional[float] = None,
    interpolator: str = "linear",
    output_format: str = "nii.gz",
    overwrite: bool = False,
    options: Optional[RegistrationOptions] = None,
    progress: Optional[str] = None,
    in_process: Optional[bool] = None,
    stop: Optional[StopRequest] = None,
    allow_slice_gaps: bool = False,
    capture_reader_warnings: bool = False,
    fixed_chosen_by: Optional[str] = None,
) -> dict:
    """Register every ``moving`` scan onto ``fixed`` into ``out_dir``; returns the cohort summary.

    ``moving``: paths (named after their files) or ``MovingInput`` (see ``cohort.inputs`` for list
    files and folders). Where cases run: ``client`` (a ``distributed.Client``) or ``scheduler``
    ("tcp://HOST:PORT", or "local" for a local Dask cluster of ``jobs`` workers) sends them to Dask;
    otherwise ``jobs`` local worker processes (default one per core), or this process when
    ``jobs`` is 1 or ``in_process`` is true (or, by default, when only one case is to run).
    ``progress``: None (silent), "auto", "bar", "lines" or "quiet" (only error lines). ``stop`` lets
    a caller (another thread) stop the run.
    ``allow_slice_gaps`` reads DICOM series with missing or uneven slices onto an even grid;
    ``capture_reader_warnings`` turns ITK's stderr warnings into report notes (a program's own stderr
    only: never inside Slicer's process with its main window).

    Raises ``InputError`` (names the file) when nothing can start (also when another live run holds
    ``out_dir``'s lock), ``TypeError``/``ValueError`` for
    bad arguments, ``ImportError`` when Dask is asked for but missing. Problems of single cases never
    raise: they are in the summary (``cases[i]["status"]`` "failed", ``error``).

    Args:
        fixed: the fixed scan (image file or DICOM series folder).
        moving: the moving scans: paths or ``MovingInput`` items.
        out_dir: the output folder (created if needed).
        jobs: local worker processes (default one per core), or Dask workers with "local".
        client: a ``distributed.Client`` to run the cases on.
        scheduler: "tcp://HOST:PORT" or "local" (a local Dask cluster).
        transform: "rigid", "similarity" or "affine".
        fill: the value where a result has no real moving data; None: each moving scan's air level.
        interpolator: "linear", "bspline" or "nearest".
        output_format: "nii.gz", "nii", "nrrd" or "mha".
        overwrite: redo cases whose outputs exist instead of refusing them.
        options: every registration knob (``RegistrationOptions``).
        progress: None, "auto", "bar", "lines" or "quiet".
        in_process: run the cases in this process; None: only when one case is to run and ``jobs``
            is not given; False: never.
        stop: a ``StopRequest`` another thread can set to stop the run.
        allow_slice_gaps: read DICOM series with missing or uneven slices onto an even grid.
        capture_reader_warnings: turn ITK's stderr warnings into report notes (not in Slicer).
        fixed_chosen_by: how the fixed scan was chosen, in words, for the report (``register
            --fixed-from`` names the ``reference`` ranking); None: given by the user.

    Returns:
        The cohort summary (also written as report.json/.csv/.html): ``cases`` (one dict per case,
        with ``status``, ``error``, verdict and figures), counts and the run's settings.

    Raises:
        InputError: nothing can start (unreadable fixed scan, unusable output folder); names the file.
        TypeError: ``moving`` is one path instead of a collection, or another argument is wrong.
        ValueError: an argument has an unusable value.
        ImportError: Dask is asked for but not installed.
    """
    started, started_wall = time.perf_counter(), now_text()
    cases = _cohort_inputs(moving)
    case_options = _case_options(transform, fill, interpolator, output_format, options)
    case_options = dataclasses.replace(
        case_options,
        allow_slice_gaps=bool(allow_slice_gaps),
        capture_reader_warnings=bool(capture_reader_warnings),
    )
    jobs = _check_jobs(jobs)
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None:
        problem = scheduler_problem(scheduler)
        if problem is not None:
            raise ValueError(f"scheduler {scheduler!r}: {problem}")
    fixed_path = _path_argument(fixed, "fixed")
    check_labels_are_not_scans(fixed_path, cases)
    out_dir = prepare_out_dir(_path_argument(out_dir, "out_dir"))
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
    where = Where(jobs, client, scheduler, in_process)
    with acquire_lock(out_dir, run_id) as lock, _lone_case_read_ahead(cases, case_options, where) as prefetch:
        return _run_locked(
            fixed_path,
            cases,
            out_dir,
            case_options,
            where,
            overwrite,
            progress,
            stop,
            _Started(started, started_wall, run_id, lock.note, fixed_chosen_by),
            prefetch,
        )


@dataclasses.dataclass(frozen=True)
class Where:
    """Where the cases run: ``jobs`` local processes, a Dask ``client`` or ``scheduler``, or this process."""

    jobs: Optional[int]
    client: object
    scheduler: Optional[str]
    in_process: Optional[bool]


@dataclasses.dataclass(frozen=True)
class _Started:
    perf: float
    wall: str
    run_id: str
    lock_note: Optional[str]
    fixed_chosen_by: Optional[str] = None


@contextmanager
def _lone_case_read_ahead(
    cases: list[MovingInput], case_options: CaseOptions, where: Where
) -> Iterator[Optional[MovingPrefetch]]:
    """A lone case that runs in this process has its moving scan read and analysed beside the fixed
    scan's analysis (``cohort.prefetch``): the prefetch while the run lasts, else None."""
    lone = len(cases) == 1 and _in_this_process(1, where)
    prefetch = begin_prefetch(cases[0].path, case_options.read, input_fingerprint) if lone else None
    try:
        yield prefetch
    finally:
        end_prefetch(prefetch)


def _run_locked(
    fixed_path: str,
    cases: list[MovingInput],
    out_dir: str,
    case_options: CaseOptions,
    where: Where,
    overwrite: bool,
    progress: Optional[str],
    stop: Optional[StopRequest],
    started: _Started,
    prefetch: Optional[MovingPrefetch],
) -> dict:
    """The run itself, while this run holds the output folder's lock."""
    run_id = started.run_id
    timer = StepTimer()
    check_summary_paths(out_dir, overwrite)
    fixed_scan = _load_fixed_timed(fixed_path, case_options, timer, prefetch)
    with timer.step("plan"):
        problem = fixed_problem(fixed_scan)
        if problem is not None:
            raise InputError(fixed_path, problem)
        _check_paths(fixed_path, cases, case_options, out_dir)
        _check_fill(cases, case_options.fill)
        plans = [plan_case(case, out_dir, case_options, fixed_scan.fingerprint, overwrite) for case in cases]
    _refuse_conflicts(plans)
    tasks = [
        CaseTask(
            plan.case.case_id,
            plan.case.path,
            out_dir,
            case_options,
            fixed_path,
            fixed_scan.fingerprint,
            run_id,
            plan.case.labels,
        )
        for plan in plans
        if plan.action == RUN
    ]
    results = _known_results(plans)
    stop = stop or StopRequest()
    display = ProgressDisplay(len(tasks), sum(p.action == DONE for p in plans), _mode(progress))
    if started.lock_note:
        display.say(f"note: {out_dir}: {started.lock_note}")
    display.say(f"fixed {fixed_path}: {fixed_scan.analysis.summary}")
    for plan in plans:
        if plan.action == BLOCKED:
            display.case_finished(results[plan.case.case_id])

    done_before = sum(plan.action == DONE for plan in plans)
    counts = f"{len(cases)} cases: {done_before} finished by an earlier run, {len(tasks)} to run"
    described, lost = execute_tasks(tasks, fixed_scan, where, display, stop, counts, results, timer)

    header = _header(fixed_path, fixed_scan, case_options, overwrite, out_dir, run_id, started.wall)
    header["fixed"]["chosen_by"] = started.fixed_chosen_by or "given by the user"
    header["run"].update(
        {
            "finished": now_text(),
            "seconds": round(time.perf_counter() - started.perf, 3),
            "lock_note": started.lock_note,
            "state": "stopped" if stop.is_set() else ("failed" if lost else "finished"),
            "stopped_by": stop.reason if stop.is_set() else None,
            "error": lost,
            "backend": described,
            "timings": timer.to_dict(),
            "case_timings": add_up([results[task.case_id].get("timings") or {} for task in tasks]),
        }
    )
    with timer.step("summary"):
        summary = build_summary([results[case.case_id] for case in cases], header)
        summary["summary_error"] = write_summary(out_dir, summary)
    # Writing the summary is timed after report.json is written: only the returned summary has it.
    summary["run"]["timings"] = timer.to_dict()
    return summary


def _load_fixed_timed(
    fixed_path: str, case_options: CaseOptions, timer: StepTimer, prefetch: Optional[MovingPrefetch] = None
) -> FixedScan:
    """``load_fixed``, its seconds in ``timer``: reading and analysing when this call did them,
    else (the scan was already in this process's cache) the call as a whole, as ``read_fixed``.
    A ``prefetch`` starts reading the moving scan as soon as the fixed scan has been read."""
    loading = time.perf_counter()
    after_read = None if prefetch is None else prefetch.start
    try:
        fixed_scan = load_fixed(fixed_path, options=case_options, after_read=after_read)
    finally:
        if prefetch is not None:
            prefetch.start()  # already cached, or failed: never keep the helper thread waiting
    elapsed = time.perf_counter() - loading
    inside = sum(fixed_scan.timings.values())
    if fixed_scan.timings and inside <= elapsed + 0.002:  # read now (the figures are rounded to 1 ms)
        timer.update(fixed_scan.timings)
        timer.add("plan", elapsed - inside)  # the fingerprint
    else:
        timer.add("read_fixed", elapsed)
    return fixed_scan


def execute_tasks(
    tasks: list[CaseTask],
    fixed_scan: FixedScan,
    where: Where,
    display: ProgressDisplay,
    stop: StopRequest,
    counts: str,
    results: dict,
    timer: Optional[StepTimer] = None,
) -> tuple[str, Optional[str]]:
    """Run the tasks on the backend ``where`` asks for, with the progress display, stopping cleanly on
    Ctrl-C/SIGTERM/SIGHUP; shared by ``run_cohort`` and ``reference`` (whose tasks have several
    fixed scans: each task names its own, ``fixed_scan`` is the one workers start with).

    Args:
        tasks: the cases to run.
        fixed_scan: the analysed fixed scan (of the first task).
        where: the backend choice.
        display: the progress display (closed here).
        stop: the stop request.
        counts: the line said before the run ("12 cases: ... to run"); the backend is added.
        results: case id → report; every task's report is put here (a stub if it never ran).
        timer: where the run's steps are timed (the backend's run as "cases"), or None.

    Returns:
        (how the cases ran, in words; why the run could not go on, or None).
    """

    def on_done(task: CaseTask, report: dict) -> None:
        results[task.case_id] = report
        display.case_finished(report)

    backend, described, lost = None, "nothing to run", None
    try:
        with _stopped_by_signals(stop):
            if tasks:
                backend = _backend(tasks, where)
                described = backend.describe()
            display.say(f"{counts} ({described})")
            if backend is not None and not stop.is_set():
                with timer.step("cases") if timer is not None else nullcontext():
                    backend.run(tasks, fixed_scan, on_done, stop)
    except SchedulerLost as error:
        lost = str(error)
    finally:
        display.close()
        if where.scheduler not in (None, "local") and backend is not None:
            backend.close_quietly()
    for task in tasks:
        results.setdefault(task.case_id, _not_started(task) if lost is None else _unfinished(task, lost))
    return described, lost


def exit_status(summary: dict) -> int:
    """0: every case registered with no "failed" verdict; 1: a case failed, or its verdict is
    "failed", or the summary could not be written; 130/143/129: stopped by Ctrl-C / SIGTERM / SIGHUP.

    Args:
        summary: what ``run_cohort`` returned.

    Returns:
        The process exit status for that run.
    """
    stopped_by = (summary.get("run") or {}).get("stopped_by")
    if stopped_by in EXIT_BY_SIGNAL:
        return EXIT_BY_SIGNAL[stopped_by]
    counts = summary["counts"]
    bad = counts["failed"] or counts["cancelled"] or counts["verdicts"]["failed"]
    return 1 if bad or summary.get("summary_error") else 0


# -- checks before any work ---------------------------------------------------------------------


def _cohort_inputs(moving) -> list[MovingInput]:
    items = item_list(moving, "moving")
    if all(isinstance(item, MovingInput) for item in items) and items:
        return unique_ids(items)
    return inputs_from_paths(items, "moving")


def _case_options(transform, fill, interpolator, output_format, options) -> CaseOptions:
    if transform not in TRANSFORM_TYPES:
        raise ValueError(f"transform must be one of {TRANSFORM_TYPES}, not {transform!r}")
    if interpolator not in INTERPOLATORS:
        raise ValueError(f"interpolator must be one of {sorted(INTERPOLATORS)}, not {interpolator!r}")
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    if fill is not None:
        if isinstance(fill, bool) or not isinstance(fill, (int, float)):
            raise TypeError(f"fill must be a number or None, not {type(fill).__name__}")
        if fill != fill or fill in (float("inf"), float("-inf")):
            raise ValueError(f"fill must be a finite number, not {fill}")
        fill = fill if isinstance(fill, int) else float(fill)  # whole numbers exact (int64 scans)
    if options is not None and not isinstance(options, RegistrationOptions):
        raise TypeError(f"options must be RegistrationOptions, not {type(options).__name__}")
    return CaseOptions(transform, fill, interpolator, output_format, options)


def _check_jobs(jobs) -> Optional[int]:
    if jobs is None:
        return None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a whole number of at least 1, not {jobs!r}")
    return jobs


def _path_argument(value, name: str) -> str:
    if not isinstance(value, str) and not hasattr(value, "__fspath__"):
        raise TypeError(f"{name} must be a path, not {type(value).__name__}")
    return os.fspath(value)


def _check_paths(fixed_path: str, cases: list[MovingInput], options: CaseOptions, out_dir: str) -> None:
    inputs = [fixed_path] + [case.path for case in cases] + [case.labels for case in cases if case.labels]
    outputs = [os.path.join(out_dir, name) for name in SUMMARY_NAMES.values()]
    for case in cases:
        names = output_names(case.case_id, options.output_format, case.labels is not None, options.images)
        outputs += [os.path.join(out_dir, name) for name in names.values()]
    check_inputs_not_outputs(inputs, outputs, out_dir)


def _check_fill(cases: list[MovingInput], fill: Optional[float]) -> None:
    """Refuse a fill some output cannot hold, reading only image headers (DICOM folders are checked
    per case, before their registration)."""
    if fill is None:
        return
    reader = sitk.ImageFileReader()
    for case in cases:
        if not os.path.isfile(case.path) or not case.path.lower().endswith(IMAGE_SUFFIXES):
            continue
        try:
            reader.SetFileName(case.path)
            reader.ReadImageInformation()
        except RuntimeError:
            continue  # an unreadable file fails as its own case, with its own reason
        pixel_id = reader.GetPixelID()
        problem = fill_problem(fill, pixel_id)
        if problem is not None:
            raise InputError(case.path, f"--fill {problem}")


def _refuse_conflicts(plans: list[CasePlan]) -> None:
    conflicts = [plan for plan in plans if plan.action == CONFLICT]
    if conflicts:
        more = f" ({len(conflicts)} finished cases like this)" if len(conflicts) > 1 else ""
        report, _, reason = conflicts[0].reason.partition(": ")
        raise InputError(report, f"{reason}{more}; use --overwrite to redo them, or another --out")


# -- running ------------------------------------------------------------------------------------


def _backend(tasks: list[CaseTask], where: Where):
    client, scheduler = where.client, where.scheduler
    from_jobs = where.jobs or (os.cpu_count() or 1)
    if client is not None:
        return DaskBackend(client)
    if scheduler is not None:
        if scheduler == "local":
            local_client, cluster = start_local_cluster(min(from_jobs, len(tasks)))
            return DaskBackend(local_client, cluster)
        return DaskBackend(connect(scheduler))
    if _in_this_process(len(tasks), where):
        return InProcessBackend()
    return ProcessPoolBackend(min(from_jobs, len(tasks)))


def _in_this_process(count: int, where: Where) -> bool:
    """Whether ``count`` cases run in this process: asked for (``in_process``, ``jobs`` 1), or a lone
    case with neither given; never on Dask."""
    if where.client is not None or where.scheduler is not None:
        return False
    # A lone case gains nothing from a worker: starting one (an interpreter, the imports, the fixed
    # scan sent over) is about a second of a few-second call, and the result is the same.
    jobs, in_process = where.jobs, where.in_process
    return bool(in_process) or jobs == 1 or (jobs is None and in_process is None and count == 1)


@contextmanager
def _stopped_by_signals(stop: StopRequest):
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed) ask the run to stop (a second one forces),
    instead of a traceback or a death that leaves no summary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum, frame) -> None:
        stop.request(signal.Signals(signum).name)

    previous = {number: signal.signal(number, on_signal) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _mode(progress: Optional[str]) -> str:
    if progress is None:
        return "silent"
    if progress == "auto":
        return choose_mode(False)
    return progress


def _known_results(plans: list[CasePlan]) -> dict:
    """Results this run does not compute: finished cases (their own report) and refused ones."""
    results = {}
    for plan in plans:
        if plan.action == DONE:
            results[plan.case.case_id] = {**plan.previous, "resumed": True}
        elif plan.action == BLOCKED:
            results[plan.case.case_id] = _case_stub(plan.case, "failed", plan.reason)
    return results


def _not_started(task: CaseTask) -> dict:
    return _case_stub(
        MovingInput(task.moving_path, task.case_id, task.labels_path),
        "cancelled",
        f"{task.moving_path}: not started (the run was stopped)",
    )


def _unfinished(task: CaseTask, lost: str) -> dict:
    """A case whose result never came back: its files are left as they are (a worker may still be
    finishing it); its own report does not say "ok", so rerunning the command runs it again."""
    return _case_stub(
        MovingInput(task.moving_path, task.case_id, task.labels_path),
        "cancelled",
        f"{task.moving_path}: not finished: {lost}; rerun the same command to continue",
    )


def _case_stub(case: MovingInput, status: str, error: Optional[str]) -> dict:
    return {
        "id": case.case_id,
        "stem": case.case_id,
        "moving_path": case.path,
        "labels_path": case.labels,
        "status": status,
        "error": error,
        "trustworthy": False,
        "trust_reason": error,
        "outputs": {},
    }


def _header(fixed_path, fixed_scan: FixedScan, options: CaseOptions, overwrite, out_dir, run_id, started):
    fixed = {"path": fixed_path, **fixed_scan.analysis.to_dict(), "fingerprint": fixed_scan.fingerprint}
    fixed["notes"] = list(fixed_scan.loaded.notes)
    if fixed_scan.loaded.note:
        fixed["note"] = fixed_scan.loaded.note
    return {
        "out_dir": os.path.abspath(out_dir),
        "fixed": fixed,
        "settings": {**options.to_dict(), "overwrite": overwrite},
        "run": {"id": run_id, "started": started},
    }
