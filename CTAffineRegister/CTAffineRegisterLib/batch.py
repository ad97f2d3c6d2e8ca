"""Register many moving scans to one fixed scan, in parallel worker processes, writing files.

One bad case never stops the others: each case ends as a report entry with status "ok" or
"failed" and a one-line error. A case's outputs are all computed before any is written, so a
failure leaves nothing half-made; each file is written atomically and nothing existing is
replaced without ``overwrite``. Pure module: SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

import SimpleITK as sitk

from .background import BackgroundAnalysis, analyze_background
from .imageio import (
    InputError,
    LoadedImage,
    OutputExistsError,
    ensure_writable,
    output_stem,
    read_image,
    write_atomically,
    write_image,
    write_text,
    write_transform,
)
from .pipeline import register_pair
from .qc import write_qc_picture
from .registration import ProgressEvent, RegistrationCancelled, RegistrationError, RegistrationOptions

OUTPUT_SUFFIXES = ("_registered.nii.gz", "_transform.tfm", "_validmask.nii.gz", "_qc.png")
REPORT_NAME = "report.json"


@dataclass
class BatchSettings:
    """What the user chose for a batch; defaults are the command line's defaults."""

    out_dir: str
    transform: str = "affine"
    fill: Optional[float] = None
    interpolator: str = "linear"
    overwrite: bool = False
    jobs: Optional[int] = None
    quiet: bool = False
    options: Optional[RegistrationOptions] = field(default=None, repr=False)


def default_jobs(case_count: int) -> int:
    """One case per core: the registration itself runs on one thread so that it is reproducible."""
    return max(1, min(case_count, os.cpu_count() or 1))


def output_paths(out_dir: str, stem: str) -> dict[str, str]:
    names = ("registered", "transform", "validmask", "qc")
    return {name: os.path.join(out_dir, stem + suffix) for name, suffix in zip(names, OUTPUT_SUFFIXES)}


def unique_stems(moving_paths: list[str]) -> list[str]:
    """Output stems, made unique when two inputs share a name (scan.nii.gz in two folders)."""
    stems, seen = [], {}
    for path in moving_paths:
        stem = output_stem(path)
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}_{count + 1}")
    return stems


def run_batch(fixed_path: str, moving_paths: list[str], settings: BatchSettings) -> dict:
    """Run every case; returns the report (also written as report.json). Raises InputError for the fixed."""
    started = time.perf_counter()
    report_path = os.path.join(settings.out_dir, REPORT_NAME)
    ensure_writable(report_path, settings.overwrite)
    fixed = read_image(fixed_path)
    fixed_analysis = analyze_background(fixed.image, fixed.dicom_padding)
    if fixed_analysis.kind == "not-ct":
        raise InputError(fixed_path, fixed_analysis.summary)
    _say(settings, f"fixed {fixed_path}: {fixed_analysis.summary}")
    os.makedirs(settings.out_dir, exist_ok=True)

    stems = unique_stems(moving_paths)
    jobs = settings.jobs or default_jobs(len(moving_paths))
    jobs = max(1, min(jobs, len(moving_paths)))
    if jobs == 1:
        cases = [
            _run_case(fixed, fixed_analysis, path, stem, settings) for path, stem in zip(moving_paths, stems)
        ]
    else:
        cases = _run_parallel(fixed, fixed_analysis, moving_paths, stems, settings, jobs)

    report = {
        "fixed": {"path": fixed_path, **fixed_analysis.to_dict()},
        "settings": {
            "transform": settings.transform,
            "fill": settings.fill,
            "interpolator": settings.interpolator,
            "jobs": jobs,
        },
        "cases": cases,
        "succeeded": sum(1 for case in cases if case["status"] == "ok"),
        "failed": sum(1 for case in cases if case["status"] != "ok"),
        "seconds": round(time.perf_counter() - started, 3),
    }
    write_text(json.dumps(report, indent=2) + "\n", report_path, settings.overwrite)
    return report


def _run_parallel(fixed, fixed_analysis, moving_paths, stems, settings, jobs) -> list[dict]:
    """Worker processes get the fixed scan once; 'spawn' is safe with SimpleITK's thread pools."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=_init_worker,
        initargs=(fixed, fixed_analysis, threads),
    ) as pool:
        futures = [
            pool.submit(_run_case_in_worker, path, stem, settings) for path, stem in zip(moving_paths, stems)
        ]
        cases = []
        for path, stem, future in zip(moving_paths, stems, futures):
            try:
                cases.append(future.result())
            except Exception as error:  # a worker that died (out of memory, killed) fails its case only
                cases.append(_failed_case(path, stem, f"worker process failed: {error}", 0.0))
        return cases


_WORKER_STATE: dict = {}


def _init_worker(fixed: LoadedImage, fixed_analysis: BackgroundAnalysis, threads: int) -> None:
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    _WORKER_STATE["fixed"] = fixed
    _WORKER_STATE["fixed_analysis"] = fixed_analysis


def _run_case_in_worker(moving_path: str, stem: str, settings: BatchSettings) -> dict:
    return _run_case(_WORKER_STATE["fixed"], _WORKER_STATE["fixed_analysis"], moving_path, stem, settings)


def _run_case(
    fixed: LoadedImage,
    fixed_analysis: BackgroundAnalysis,
    moving_path: str,
    stem: str,
    settings: BatchSettings,
) -> dict:
    started = time.perf_counter()
    paths = output_paths(settings.out_dir, stem)
    try:
        for path in paths.values():
            ensure_writable(path, settings.overwrite)
        moving = read_image(moving_path)
        _say(settings, f"[{stem}] read {moving_path}")
        result = register_pair(
            fixed.image,
            moving.image,
            transform=settings.transform,
            fill=settings.fill,
            moving_padding=moving.dicom_padding,
            interpolator=settings.interpolator,
            options=settings.options,
            fixed_analysis=fixed_analysis,
            progress=_stage_printer(settings, stem),
        )
        _say(settings, f"[{stem}] moving: {result.report['moving']['summary']}")
        _write_case(fixed.image, result, paths, settings.overwrite)
    except (InputError, OutputExistsError) as error:  # these name their file already
        _say(settings, f"[{stem}] FAILED: {error}")
        return _failed_case(moving_path, stem, str(error), time.perf_counter() - started)
    except (RegistrationError, RegistrationCancelled, ValueError) as error:
        message = f"{moving_path}: {error}"
        _say(settings, f"[{stem}] FAILED: {message}")
        return _failed_case(moving_path, stem, message, time.perf_counter() - started)
    except RuntimeError as error:  # SimpleITK failures not anticipated above: still one clear line
        message = f"{moving_path}: processing failed ({str(error).strip().splitlines()[-1][:200]})"
        _say(settings, f"[{stem}] FAILED: {message}")
        return _failed_case(moving_path, stem, message, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    quality = result.report["quality"]
    _say(settings, f"[{stem}] done in {seconds:.1f} s, quality {quality.get('verdict')}")
    return {
        "moving_path": moving_path,
        "stem": stem,
        **result.report,
        "outputs": {name: os.path.basename(path) for name, path in paths.items()},
        "seconds": round(seconds, 3),
        **({"note": moving.note} if moving.note else {}),
    }


def _write_case(fixed: sitk.Image, result, paths: dict[str, str], overwrite: bool) -> None:
    """Write all four outputs; if one fails, remove the ones this call already wrote."""
    written = []
    try:
        write_image(result.registered, paths["registered"], overwrite)
        written.append(paths["registered"])
        write_transform(result.transform, paths["transform"], overwrite)
        written.append(paths["transform"])
        write_image(result.valid_mask, paths["validmask"], overwrite)
        written.append(paths["validmask"])
        write_atomically(
            paths["qc"], lambda temporary: write_qc_picture(fixed, result.registered, temporary), overwrite
        )
    except BaseException:
        for path in written:
            if os.path.exists(path):
                os.unlink(path)
        raise


def _failed_case(moving_path: str, stem: str, error: str, seconds: float) -> dict:
    return {
        "moving_path": moving_path,
        "stem": stem,
        "status": "failed",
        "error": error,
        "seconds": round(seconds, 3),
    }


def _stage_printer(settings: BatchSettings, stem: str) -> Optional[Callable[[ProgressEvent], None]]:
    """One stderr line per stage and level, not per iteration: readable in a log of hundreds of cases."""
    if settings.quiet:
        return None
    last = {}

    def report(event: ProgressEvent) -> None:
        key = (event.stage, event.level)
        if last.get("key") != key:
            last["key"] = key
            print(f"[{stem}] {event.stage} level {event.level}", file=sys.stderr, flush=True)

    return report


def _say(settings: BatchSettings, message: str) -> None:
    if not settings.quiet:
        print(message, file=sys.stderr, flush=True)
