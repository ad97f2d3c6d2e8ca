"""Choose the reference scan: register a sample of the cohort onto every candidate and rank them.

``choose_reference`` is the whole job, from Python and behind ``ct-affine-register reference``:

1. check what can be checked before any work (arguments, the output folder and its lock, ranking
   files that are not this tool's, inputs that outputs would replace);
2. read every candidate once (``reference.candidates``): its coverage facts and a thumbnail; a candidate
   that cannot be read or cannot be a fixed scan is kept, ranked last with the reason;
3. pick the sample reproducibly (``reference.sample``) and register each sample scan onto each
   candidate on the cohort engine (``--jobs``/``--scheduler``, progress bar, resume, Ctrl-C):
   judge-only cases, that write a transform and a report each under ``OUT/pairs/``, no images;
4. rank (``reference.ranking``) and write reference.json, .csv and .html (``reference.report``).

At the default ``quality="ranking"`` scans are read subsampled to about ``RANKING_VOXEL_MM`` and
registered on two coarse levels without the last refinement: ``Testing/benchmarks/reference_cost.py``
shows it ranks the real scans here as full quality does, at a fraction of the cost.
Pure module (Dask only when asked for).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterable
from typing import Any, Optional, Union

from .._version import __version__
from ..cohort.backends import StopRequest
from ..cohort.case import CaseOptions, CaseTask, now_text
from ..cohort.dask_backend import scheduler_problem
from ..cohort.inputs import MovingInput, PathLike
from ..cohort.lock import acquire_lock
from ..cohort.outputs import check_inputs_not_outputs, check_summary_paths, output_names, prepare_out_dir
from ..cohort.progress import ProgressDisplay
from ..cohort.resume import DONE, RUN, plan_case
from ..cohort.run import (
    EXIT_BY_SIGNAL,
    Where,
    _check_jobs,
    _cohort_inputs,
    _known_results,
    _mode,
    _path_argument,
    _refuse_conflicts,
    execute_tasks,
)
from ..registration.options import RegistrationOptions
from .candidates import PAIRS_FOLDER, RANKING_VOXEL_MM, CandidateScan, read_candidates, sample_extents
from .defaults import DEFAULT_SAMPLE_SIZE, QUALITIES
from .ranking import RULE, rank_candidates
from .report import RANKING_MARKERS, RANKING_NAMES, write_ranking
from .sample import choose_sample

# The coarse registration that goes with scans read at ``RANKING_VOXEL_MM``: the verdict's figures
# are measured on a ~4-6 mm level anyway, and a ranking compares candidates, not tenths of a mm.
RANKING_REGISTRATION = dict(
    finest_spacing_mm=RANKING_VOXEL_MM,
    level_count=2,
    sampling_points=2000,
    polish_rounds=1,
    polish_sampling_points=3000,
    refine_to_optimum=False,
)


def choose_reference(
    candidates: Iterable[Union[PathLike, MovingInput]],
    out_dir: PathLike,
    *,
    sample: Optional[Iterable[Union[PathLike, MovingInput]]] = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    quality: str = "ranking",
    jobs: Optional[int] = None,
    client: Optional[Any] = None,
    scheduler: Optional[str] = None,
    in_process: Optional[bool] = None,
    progress: Optional[str] = None,
    overwrite: bool = False,
    stop: Optional[StopRequest] = None,
    allow_slice_gaps: bool = False,
) -> dict:
    """Rank ``candidates`` as the fixed (reference) scan of a cohort; returns the ranking (also
    written as ``out_dir``/reference.json, .csv and .html).

    A sample of ``sample`` (default: the candidates themselves, which finds the most central scan
    of one dataset) is registered onto every candidate; the ranking rule is in
    ``reference.ranking``. Rerunning into the same folder reuses the pairs already registered.

    Args:
        candidates: the scans that could be the reference: paths or ``MovingInput`` items.
        out_dir: the output folder (created if needed).
        sample: the scans that will be registered onto the reference (dataset B), or None.
        sample_size: how many of them to register onto each candidate (chosen reproducibly).
        quality: "ranking" (coarse, judge-only registrations) or "full" (the scans as they are,
            ``register``'s own settings; for comparison).
        jobs: local worker processes (default one per core), or Dask workers with "local".
        client: a ``distributed.Client`` to run the pairs on.
        scheduler: "tcp://HOST:PORT" or "local" (a local Dask cluster).
        in_process: run the pairs in this process.
        progress: None (silent), "auto", "bar", "lines" or "quiet".
        overwrite: redo every pair and replace ranking files not written by this tool.
        stop: a ``StopRequest`` another thread can set to stop the run.
        allow_slice_gaps: read DICOM series with missing or uneven slices onto an even grid.

    Returns:
        The ranking: ``recommended`` (``id``, ``path``, ``reasons``, or None), ``candidates`` (best
        first: ``rank``, ``score``, ``fit``, ``coverage``, fit figures, ``facts``, ``reasons``,
        ``ranked_last_because``), ``sample``, ``rule``, ``quality``, ``run`` and ``ranking_error``.

    Raises:
        InputError: nothing can start (unusable output folder, another run holds it, a ranking file
            that is not this tool's, a finished pair from other inputs); names the file.
        TypeError: an argument is of the wrong kind.
        ValueError: an argument has an unusable value.
        ImportError: Dask is asked for but not installed.
    """
    started, started_wall = time.perf_counter(), now_text()
    candidate_inputs = _cohort_inputs_named(candidates, "candidates")
    sample_inputs = candidate_inputs if sample is None else _cohort_inputs_named(sample, "sample")
    if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
        raise ValueError(f"sample_size must be a whole number of at least 1, not {sample_size!r}")
    if quality not in QUALITIES:
        raise ValueError(f"quality must be one of {QUALITIES}, not {quality!r}")
    where = Where(_check_jobs(jobs), client, scheduler, in_process)
    if client is not None and scheduler is not None:
        raise ValueError("give either client or scheduler, not both")
    if scheduler is not None and scheduler_problem(scheduler) is not None:
        raise ValueError(f"scheduler {scheduler!r}: {scheduler_problem(scheduler)}")
    options = case_options(quality, allow_slice_gaps)
    out_dir = prepare_out_dir(_path_argument(out_dir, "out_dir"))
    chosen = choose_sample(sample_inputs, sample_size)
    run_id = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{secrets.token_hex(3)}"
    with acquire_lock(out_dir, run_id) as lock:
        check_summary_paths(out_dir, overwrite, RANKING_NAMES, RANKING_MARKERS, "the ranking")
        check_inputs_not_outputs(
            [item.path for item in candidate_inputs + chosen],
            [os.path.join(out_dir, name) for name in RANKING_NAMES.values()],
            out_dir,
        )
        display = ProgressDisplay(0, 0, _mode(progress))
        if lock.note:
            display.say(f"note: {out_dir}: {lock.note}")
        scans = read_candidates(candidate_inputs, options, out_dir, display)
        extents = sample_extents(chosen, scans, options)
        display.close()
        plans, fixed_of = _plan_pairs(candidate_inputs, chosen, scans, out_dir, options, overwrite)
        _refuse_conflicts(plans)
        results = _known_results(plans)
        tasks = [
            _task(plan.case, fixed_of[plan.case.case_id], options, run_id)
            for plan in plans
            if plan.action == RUN
        ]
        stop = stop or StopRequest()
        display = ProgressDisplay(len(tasks), sum(plan.action == DONE for plan in plans), _mode(progress))
        done = sum(plan.action == DONE for plan in plans)
        counts = (
            f"{len(plans)} pairs ({len(chosen)} sample scans onto {len(candidate_inputs)} candidates): "
            f"{done} finished by an earlier run, {len(tasks)} to run"
        )
        first = next((scan.fixed for scan in scans.values() if scan.fixed is not None), None)
        described, lost = execute_tasks(tasks, first, where, display, stop, counts, results)
        ranking = _ranking(candidate_inputs, chosen, scans, extents, fixed_of, results, quality)
        ranking["run"] = {
            "id": run_id,
            "started": started_wall,
            "finished": now_text(),
            "seconds": round(time.perf_counter() - started, 3),
            "state": "stopped" if stop.is_set() else ("failed" if lost else "finished"),
            "stopped_by": stop.reason if stop.is_set() else None,
            "error": lost,
            "backend": described,
            "out_dir": os.path.abspath(out_dir),
        }
        ranking["ranking_error"] = write_ranking(out_dir, ranking)
    return ranking


def case_options(quality: str, allow_slice_gaps: bool = False) -> CaseOptions:
    """The cohort options of the ranking's registrations: judge-only (transform and report).

    Args:
        quality: "ranking" (subsampled scans, coarse registration) or "full".
        allow_slice_gaps: read DICOM series with gaps onto an even grid.

    Returns:
        The ``CaseOptions``.
    """
    if quality == "full":
        return CaseOptions(images=False, allow_slice_gaps=bool(allow_slice_gaps))
    registration = RegistrationOptions(**RANKING_REGISTRATION)
    return CaseOptions(
        registration=registration,
        images=False,
        read_voxel_mm=RANKING_VOXEL_MM,
        allow_slice_gaps=bool(allow_slice_gaps),
    )


def exit_status(ranking: dict) -> int:
    """0: a scan is recommended and every pair registered; 1: no recommendation, or a candidate or
    pair failed, or the ranking could not be written; 130/143/129 when stopped by a signal.

    Args:
        ranking: what ``choose_reference`` returned.

    Returns:
        The process exit status.
    """
    stopped_by = (ranking.get("run") or {}).get("stopped_by")
    if stopped_by in EXIT_BY_SIGNAL:
        return EXIT_BY_SIGNAL[stopped_by]
    candidates = ranking.get("candidates") or []
    failed = any(c.get("problem") or (c.get("pairs") or 0) > (c.get("registered") or 0) for c in candidates)
    bad = ranking.get("recommended") is None or failed or ranking.get("ranking_error")
    return 1 if bad else 0


# -- the pairs ----------------------------------------------------------------------------------


def _cohort_inputs_named(items, argument: str) -> list[MovingInput]:
    try:
        return _cohort_inputs(items)
    except (TypeError, ValueError) as error:
        raise type(error)(str(error).replace("moving", argument)) from None


def _plan_pairs(candidates, chosen, scans, out_dir, options, overwrite):
    """A cohort case per (sample scan, candidate): id ``SAMPLE_onto_CANDIDATE`` under OUT/pairs/."""
    pairs_dir = os.path.join(out_dir, PAIRS_FOLDER)
    os.makedirs(pairs_dir, exist_ok=True)
    plans, fixed_of = [], {}
    for candidate in candidates:
        scan = scans[candidate.case_id]
        if scan.problem is not None:
            continue
        for item in chosen:
            if os.path.realpath(item.path) == os.path.realpath(candidate.path):
                continue
            pair_id = pair_name(item.case_id, candidate.case_id)
            plans.append(
                plan_case(MovingInput(item.path, pair_id), pairs_dir, options, scan.fingerprint, overwrite)
            )
            fixed_of[pair_id] = scan
    return plans, fixed_of


def _task(pair: MovingInput, scan: CandidateScan, options: CaseOptions, run_id: str) -> CaseTask:
    return CaseTask(pair.case_id, pair.path, scan.out_dir, options, scan.path, scan.fingerprint, run_id)


def pair_name(sample_id: str, candidate_id: str) -> str:
    """The id (file stem under OUT/pairs/) of one sample scan registered onto one candidate.

    Args:
        sample_id: the sample scan's id.
        candidate_id: the candidate's id.

    Returns:
        ``SAMPLE_onto_CANDIDATE``.
    """
    return f"{sample_id}_onto_{candidate_id}"


def _pair_summary(pair: dict) -> dict:
    """One sample scan on one candidate, in short, for reference.json (its full report is named)."""
    quality = pair.get("quality") or {}
    figures = quality.get("figures") or {}
    return {
        "sample_id": pair.get("sample_id"),
        "report": f"{PAIRS_FOLDER}/{output_names(str(pair.get('id')), images=False)['report']}",
        "status": pair.get("status"),
        "verdict": quality.get("verdict"),
        **{name: figures.get(name) for name in ("correlation", "body_dice", "air_dice")},
        "error": pair.get("error"),
    }


def _ranking(candidates, chosen, scans, extents, fixed_of, results, quality) -> dict:
    rows = []
    for candidate in candidates:
        scan = scans[candidate.case_id]
        pairs = [
            {**results[pair_id], "sample_id": item.case_id}
            for item in chosen
            for pair_id in [pair_name(item.case_id, candidate.case_id)]
            if pair_id in fixed_of and pair_id in results
        ]
        rows.append(
            {
                "id": candidate.case_id,
                "path": os.path.abspath(candidate.path),
                "facts": None if scan.facts is None else scan.facts.to_dict(),
                "problem": scan.problem,
                "thumbnail": scan.thumbnail,
                "pairs": pairs,
                "pair_results": [_pair_summary(pair) for pair in pairs],
            }
        )
    ranked = rank_candidates(rows, [extents[item.case_id] for item in chosen if item.case_id in extents])
    best = ranked[0] if ranked and ranked[0]["ranked_last_because"] is None else None
    return {
        "schema": 1,
        "tool_version": __version__,
        "recommended": None
        if best is None
        else {key: best[key] for key in ("id", "path", "score", "reasons")},
        "rule": RULE,
        "quality": quality,
        "sample": [
            {
                "id": item.case_id,
                "path": os.path.abspath(item.path),
                "body_extent_mm": extents.get(item.case_id),
            }
            for item in chosen
        ],
        "candidates": ranked,
    }
