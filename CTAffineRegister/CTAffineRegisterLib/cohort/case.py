"""One case of a cohort, wherever it runs: read the moving scan, register, write outputs, report.

The same function runs in the main process, in a local worker process and on a Dask worker, so a
case's files are bit-identical whichever way it ran. It knows nothing of backends: it gets a task
(plain, picklable data naming paths, never images), the analysed fixed scan, a ``cancel`` check and
a note of where it runs.

A case first claims its outputs by writing ``ID_report.json`` with status "running"; outputs are
then written one by one (each atomically) and the report is rewritten with the final status, the
outputs' sizes and the inputs' fingerprints last. So a report saying "ok" with files of the listed
sizes is a finished case, and any other state is one this tool started and may redo. The claim
also removes what an earlier, unfinished attempt left at the case's paths. A case that fails or is
cancelled removes only what it wrote itself (nothing at all if another run has taken the case
meanwhile) and leaves a report saying why. Pure module:
SimpleITK, numpy and the standard library.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from stat import S_ISREG
from typing import Callable, Optional

import SimpleITK as sitk

from .._version import __version__
from ..core.timing import StepTimer, rounded
from ..errors import (
    CaseStopped,
    InputError,
    LabelError,
    OutputExistsError,
    OutputWriteError,
    RegistrationCancelled,
    RegistrationError,
)
from ..io.images import LoadedImage, read_image, write_atomically, write_image, write_text, write_transform
from ..padding.analysis import BackgroundAnalysis, analyze_background
from ..pair.register import register_pair
from ..quality.picture import qc_picture, thumbnail
from ..quality.verdict import MIN_COVERAGE_MM
from ..registration.options import RegistrationOptions
from ..registration.preparation import warm_fixed_pyramid
from ..resample.labels import check_label_image, check_labels_overlap, read_label_map, resample_labels
from ..resample.scans import fill_problem
from .outputs import (
    check_not_full,
    output_error_reason,
    output_names,
    remove_files,
    stray_temporaries,
)
from .prefetch import prefetch_pending, take_prefetched

CASE_REPORT_FORMAT = "ct-affine-register case report"
# How much of each input's start and end its fingerprint hashes (a file scan; each file of a series).
SAMPLE_BYTES = 1 << 20
SLICE_SAMPLE_BYTES = 64 << 10
REPORT_SCHEMA = 1


@dataclass(frozen=True)
class CaseOptions:
    """Everything that changes a case's outputs. A case is resumed only if these are equal."""

    transform: str = "affine"
    fill: Optional[float] = None
    interpolator: str = "linear"
    output_format: str = "nii.gz"
    registration: Optional[RegistrationOptions] = field(default=None, compare=False)
    # A DICOM series with missing or uneven slices is read onto an even grid (gaps interpolated).
    allow_slice_gaps: bool = False
    # ITK/GDCM warnings on stderr while reading become report notes (the CLI's own stderr only).
    capture_reader_warnings: bool = field(default=False, compare=False)
    # Registrations made only to be judged (``reference`` ranks candidates by them): no registered
    # scan, validity mask or pictures, only the transform and the report...
    images: bool = True
    # ...and scans read subsampled to about this voxel size (mm), or None for the scans as they are.
    read_voxel_mm: Optional[float] = None

    def read(self, path: str):
        """``read_image`` with this run's reading choices (subsampled when ``read_voxel_mm`` is set).

        Args:
            path: the image file or series folder.

        Returns:
            The ``LoadedImage``.

        Raises:
            InputError: it cannot be read; names it.
        """
        loaded = read_image(
            path, allow_slice_gaps=self.allow_slice_gaps, capture_itk_warnings=self.capture_reader_warnings
        )
        return loaded if self.read_voxel_mm is None else subsampled(loaded, self.read_voxel_mm)

    def to_dict(self) -> dict:
        """Recorded in every case report; ``registration`` only when the caller changed the defaults,
        so a newer version with new default knobs still resumes the cases of an older one."""
        registration = None if self.registration is None else self.registration.to_dict()
        return {
            "transform": self.registration.transform if self.registration else self.transform,
            "fill": self.fill,
            "interpolator": self.interpolator,
            "output_format": self.output_format,
            "registration": registration,
            "allow_slice_gaps": self.allow_slice_gaps,
            # only when not the defaults: cohorts of earlier versions still resume
            **({} if self.images else {"images": False}),
            **({} if self.read_voxel_mm is None else {"read_voxel_mm": self.read_voxel_mm}),
        }


def subsampled(loaded: LoadedImage, voxel_mm: float) -> LoadedImage:
    """Every k-th voxel along each axis, so voxels are about ``voxel_mm``: values are kept exactly
    (no averaging), so padding stays padding and the padding finder sees what it sees at full size.

    Args:
        loaded: the scan as read.
        voxel_mm: the wanted voxel size (mm).

    Returns:
        The same ``LoadedImage`` with the subsampled image (and a note saying so).
    """
    image = loaded.image
    factors = [max(1, int(round(voxel_mm / spacing))) for spacing in image.GetSpacing()]
    if max(factors) == 1:
        return loaded
    small = sitk.Shrink(image, factors)
    spacing = "×".join(f"{value:g}" for value in image.GetSpacing())
    note = f"read subsampled to about {voxel_mm:g} mm voxels (from {spacing} mm) for ranking"
    return dataclasses.replace(loaded, image=small, notes=[*loaded.notes, note])


@dataclass(frozen=True)
class CaseTask:
    """What a worker needs to run one case: paths and options only, so it is cheap to send anywhere."""

    case_id: str
    moving_path: str
    out_dir: str
    options: CaseOptions
    fixed_path: str
    fixed_fingerprint: dict
    run_id: str
    labels_path: Optional[str] = None

    def names(self) -> dict:
        """The case's output file names, by role.

        Returns:
            Name by role (``output_names``).
        """
        labels = self.labels_path is not None
        return output_names(self.case_id, self.options.output_format, labels, self.options.images)

    def paths(self) -> dict:
        """The case's output paths, by role.

        Returns:
            Path by role.
        """
        return {role: os.path.join(self.out_dir, name) for role, name in self.names().items()}


@dataclass
class FixedScan:
    """The fixed scan read and analysed once per process, with the fingerprint of the file read."""

    loaded: LoadedImage
    analysis: BackgroundAnalysis
    fingerprint: dict
    # Seconds of reading and analysing it (``read_fixed``, ``analyse_fixed``), once per process.
    timings: dict = field(default_factory=dict)


_FIXED_CACHE: dict = {}
# A Dask worker with several threads runs several cases at once: the first reads, the others wait.
_FIXED_LOCK = threading.Lock()


def load_fixed(
    path: str,
    expected_fingerprint: Optional[dict] = None,
    options: Optional[CaseOptions] = None,
    after_read: Optional[Callable[[], None]] = None,
) -> FixedScan:
    """The analysed fixed scan, read once per process; ``InputError`` if it changed since planning.

    Thread-safe: cases running at once in one process (a Dask worker's threads) share one read.

    Args:
        path: the fixed scan.
        expected_fingerprint: its ``input_fingerprint`` when the run was planned, or None.
        options: the run's ``CaseOptions`` (how to read), or None.
        after_read: called once the scan is read, before it is analysed (a lone case's moving scan
            is then read beside the analysis), or None.

    Returns:
        The ``FixedScan`` (image, analysis, path).

    Raises:
        InputError: it cannot be read, or it changed since the run was planned.
    """
    fingerprint = input_fingerprint(path)
    if expected_fingerprint is not None and fingerprint != expected_fingerprint:
        raise InputError(path, "the fixed scan changed on disk after the run started")
    key = (os.path.realpath(path), json.dumps(fingerprint, sort_keys=True))
    with _FIXED_LOCK:
        cached = _FIXED_CACHE.get(key)
        if cached is None:
            timer = StepTimer()
            with timer.step("read_fixed"):
                loaded = (options or CaseOptions()).read(path)
            if after_read is not None:
                after_read()
            with timer.step("analyse_fixed"):
                analysis = analyze_background(loaded.image, loaded.dicom_padding)
            cached = FixedScan(loaded, analysis, fingerprint, timer.to_dict())
            _FIXED_CACHE.clear()  # one fixed scan per run: never keep an old one alive
            _FIXED_CACHE[key] = cached
    return cached


def remember_fixed(fixed: FixedScan) -> None:
    """Seed this process's cache with a fixed scan analysed elsewhere (a worker gets the main's).

    Args:
        fixed: the analysed fixed scan.
    """
    key = (os.path.realpath(fixed.loaded.path), json.dumps(fixed.fingerprint, sort_keys=True))
    with _FIXED_LOCK:
        _FIXED_CACHE.clear()
        _FIXED_CACHE[key] = fixed


def fixed_problem(fixed: FixedScan) -> Optional[str]:
    """Why no case can use this fixed scan, or None: checked before any case starts.

    Args:
        fixed: the analysed fixed scan.

    Returns:
        A sentence, or None.
    """
    size = fixed.loaded.image.GetSize()
    if min(size) < 2:
        dims = "×".join(str(n) for n in size)
        return f"has a single slice ({dims} voxels); the fixed scan must be a 3D volume"
    extents = [n * s for n, s in zip(size, fixed.loaded.image.GetSpacing())]
    if min(extents) < MIN_COVERAGE_MM:
        axis = extents.index(min(extents))
        return (
            f"is a slab {min(extents):.0f} mm thick ({size[axis]} voxels along axis {axis}): at least "
            f"{MIN_COVERAGE_MM:.0f} mm are needed to place a scan along every axis"
        )
    if fixed.analysis.kind == "not-ct":
        return fixed.analysis.summary
    return None


def input_fingerprint(path: Optional[str]) -> Optional[dict]:
    """Size, modification time and a content sample of a file, or of every file directly in a series
    folder.

    The sample (``sample``: a hash of the first and last ``SAMPLE_BYTES`` of a file, the whole file
    when it is smaller; ``SLICE_SAMPLE_BYTES`` of each file of a series) catches an edit that kept
    the size and had its modification time put back (``touch -r``, ``rsync -t --inplace``, tools
    that preserve times). Reading it costs at most 2 MiB per file scan, a fraction of reading the
    scan. An edit strictly between the sampled ends of a large file with its time restored is
    still not seen; ``--overwrite`` redoes such a case.

    Args:
        path: a file or series folder, or None.

    Returns:
        The fingerprint, or None for no path.
    """
    if path is None:
        return None
    real = os.path.realpath(path)
    try:
        stat = os.stat(path)
        if not os.path.isdir(path):
            sample = _content_sample(hashlib.sha256(), path, stat.st_size, SAMPLE_BYTES).hexdigest()[:16]
            return {
                "path": real,
                "kind": "file",
                "bytes": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sample": sample,
            }
        digest, content, count, total = hashlib.sha256(), hashlib.sha256(), 0, 0
        for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
            if entry.is_file():
                entry_stat = entry.stat()
                digest.update(f"{entry.name}\0{entry_stat.st_size}\0{entry_stat.st_mtime_ns}\n".encode())
                _content_sample(content, entry.path, entry_stat.st_size, SLICE_SAMPLE_BYTES)
                count, total = count + 1, total + entry_stat.st_size
    except OSError:
        return {"path": real, "kind": "missing"}
    return {
        "path": real,
        "kind": "folder",
        "files": count,
        "bytes": total,
        "digest": digest.hexdigest()[:16],
        "sample": content.hexdigest()[:16],
    }


def _content_sample(digest, path: str, size: int, part: int):
    """Add the first and last ``part`` bytes of a file (all of it when it is small) to ``digest``;
    a file that cannot be read adds a marker (its case fails on reading, naming why), and so does
    anything that is not a regular file: opening a named pipe would wait for a writer forever."""
    try:
        if not S_ISREG(os.stat(path).st_mode):
            digest.update(b"\0not a regular file\0")
            return digest
        with open(path, "rb") as handle:
            if size <= 2 * part:
                digest.update(handle.read())
            else:
                digest.update(handle.read(part))
                handle.seek(size - part)
                digest.update(handle.read(part))
    except OSError:
        digest.update(b"\0unreadable\0")
    return digest


def run_case(
    task: CaseTask,
    fixed: FixedScan,
    cancel: Optional[Callable[[], bool]] = None,
    where: Optional[dict] = None,
) -> dict:
    """Register one moving scan and write its outputs and report; returns the report (never raises
    for a problem of the case itself: it becomes ``status`` "failed" or "cancelled" with ``error``).

    Args:
        task: the case and the run's options.
        fixed: the analysed fixed scan.
        cancel: returns True to stop, or None.
        where: host and worker, for the report.

    Returns:
        The case report (also written as ``<id>_report.json``).
    """
    started_wall, started, timer = now_text(), time.perf_counter(), StepTimer()
    paths = task.paths()
    with timer.step("claim"):
        base = _report_base(task, fixed, where, started_wall)
    written: list[str] = []  # the outputs this very attempt wrote: the only ones its clean-up removes
    read_ahead: dict = {}  # a lone case's scan read beside the fixed scan's analysis: those seconds
    try:
        with timer.step("claim"):
            _claim(base, paths["report"])
            # What an earlier, unfinished attempt left at these paths (planning found it is ours to redo)
            remove_files(path for role, path in paths.items() if role != "report")
        _stop_if(cancel)
        if os.path.realpath(fixed.loaded.path) != os.path.realpath(task.fixed_path):
            # a run with several fixed scans (``reference``): this task's own, read once per process
            fixed = load_fixed(task.fixed_path, task.fixed_fingerprint, task.options)
        results = _register_and_write(task, fixed, cancel, paths, written, timer, read_ahead)
        report = {**base, "status": "ok", "error": None, **_trust(results["quality"]), **results}
    except (RegistrationCancelled, CaseStopped):
        report = {**base, "status": "cancelled", "error": f"{task.moving_path}: cancelled before it finished"}
    except (InputError, OutputExistsError, OutputWriteError) as error:  # these name their file
        report = {**base, "status": "failed", "error": str(error)}
    except (RegistrationError, ValueError) as error:
        report = {**base, "status": "failed", "error": f"{task.moving_path}: {error}"}
    except RuntimeError as error:  # a SimpleITK failure nothing above anticipated: still one line
        lines = [line.strip() for line in str(error).splitlines() if line.strip()] or ["unknown error"]
        error_text = f"{task.moving_path}: processing failed ({lines[-1][:200]})"
        report = {**base, "status": "failed", "error": error_text}
    except Exception as error:  # never let one case take its worker down; say what happened
        error_text = f"{task.moving_path}: unexpected {type(error).__name__} ({str(error)[:200]})"
        report = {**base, "status": "failed", "error": error_text}
    except BaseException:
        if not someone_elses(task):
            remove_files(written)
            remove_files(stray_temporaries(task.out_dir, task.names().values()))
        raise
    report["finished"] = now_text()
    report["timings"] = timer.to_dict()
    if read_ahead:  # not in timings: they ran before this call, beside the fixed scan's analysis
        report["read_ahead"] = rounded(read_ahead)
    report["seconds"] = round(time.perf_counter() - started, 3)
    if report["status"] != "ok":  # no half-made case: none of its outputs stay
        report.update({"outputs": {}, "output_bytes": {}, "trustworthy": False})
        report["trust_reason"] = report["error"]
        if someone_elses(task):  # another run took the case meanwhile: its files are not ours to touch
            report["report_error"] = f"{paths['report']}: left as it is (another run took this case)"
            return report
        remove_files(written)
    _write_final_report(report, paths["report"])
    return report


def someone_elses(task: CaseTask) -> bool:
    """Whether the case's report on disk is another run's live or finished work (not this run's claim
    and not an earlier unfinished attempt): then clean-up must leave every file of the case alone."""
    report = _report_on_disk(task)
    return (
        report is not None
        and report.get("run_id") != task.run_id
        and report.get("status") in ("ok", "running")
    )


def _report_on_disk(task: CaseTask) -> Optional[dict]:
    try:
        with open(task.paths()["report"], encoding="utf-8") as handle:
            report = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(report, dict) or report.get("format") != CASE_REPORT_FORMAT:
        return None
    return report


def _register_and_write(
    task: CaseTask, fixed: FixedScan, cancel, paths: dict, written: list, timer: StepTimer, read_ahead: dict
) -> dict:
    registration = _registration_options(task.options)
    if prefetch_pending(task.moving_path):  # meanwhile, the fixed side of the registration
        with timer.step("prepare_fixed"):
            warm_fixed_pyramid(fixed.loaded.image, fixed.analysis, registration)
    waiting = time.perf_counter()
    prefetched = take_prefetched(task.moving_path)  # a lone case's scan, read beside the fixed analysis
    if prefetched is None:
        with timer.step("read_moving"):
            moving, moving_analysis = task.options.read(task.moving_path), None
    else:  # its reading and analysis ran before this call: here only what was left to wait for
        timer.add("wait_moving", time.perf_counter() - waiting)
        moving, moving_analysis = prefetched.loaded, prefetched.analysis
        read_ahead.update(read_moving=prefetched.read_seconds, analyse_moving=prefetched.analyse_seconds)
    problem = fill_problem(task.options.fill, moving.image.GetPixelID())
    if problem is not None:
        raise InputError(task.moving_path, f"--fill {problem}")
    labels = None
    if task.labels_path:
        with timer.step("labels"):
            labels = _read_labels(task.labels_path, moving.image)
    options = task.options
    registering = time.perf_counter()
    try:
        result = register_pair(
            fixed.loaded.image,
            moving.image,
            transform=options.transform,
            fill=options.fill,
            moving_padding=moving.dicom_padding,
            interpolator=options.interpolator,
            options=registration,  # the knobs the fixed pyramid was warmed with
            fixed_analysis=fixed.analysis,
            moving_analysis=moving_analysis,
            cancel=cancel,
        )
    except BaseException:  # a failed or cancelled case still shows how long it tried
        timer.add("register", time.perf_counter() - registering)
        raise
    timer.update(result.report.get("timings", {}))
    _stop_if(cancel)
    writers = [("transform", lambda path: write_transform(result.transform, path, True))]
    if options.images:
        with timer.step("pictures"):
            picture = qc_picture(fixed.loaded.image, result.registered)
            small = thumbnail(picture)
        writers = [
            ("registered", lambda path: write_image(result.registered, path, True)),
            *writers,
            ("validmask", lambda path: write_image(result.valid_mask, path, True)),
            ("qc", lambda path: _write_png(picture, path)),
            ("qc_thumb", lambda path: _write_png(small, path)),
        ]
    if labels is not None:
        with timer.step("labels"):
            carried = resample_labels(labels, fixed.loaded.image, result.transform)
        writers.append(("labels", lambda path: write_image(carried, path, True)))
    for role, writer in writers:
        _stop_if(cancel)
        try:
            with timer.step(f"write_{role}"):
                writer(paths[role])
                check_not_full(paths[role])
        except (OSError, RuntimeError) as error:
            if os.path.exists(paths[role]):
                written.append(paths[role])
            raise OutputWriteError(paths[role], output_error_reason(error, paths[role])) from None
        written.append(paths[role])
    report = {
        key: value
        for key, value in result.report.items()
        if key not in ("status", "error", "seconds", "timings")
    }
    report["registration_seconds"] = result.report.get("seconds")
    if labels is not None:  # reading, checking, carrying and writing the label map: its share of the case
        report["labels_seconds"] = round(timer.steps["labels"] + timer.steps["write_labels"], 3)
    report["outputs"] = {role: os.path.basename(paths[role]) for role, _ in writers}
    report["output_bytes"] = {role: os.path.getsize(paths[role]) for role, _ in writers}
    report["notes"] = list(moving.notes)
    if moving.note:
        report["note"] = moving.note
    return report


def _registration_options(options: CaseOptions) -> RegistrationOptions:
    """The registration knobs ``register_pair`` will use for this run's cases."""
    return options.registration or RegistrationOptions(transform=options.transform)


def _claim(base: dict, path: str) -> None:
    """Write the "running" report that marks the case's outputs as this tool's work in progress."""
    try:
        write_text(json.dumps({**base, "status": "running"}, indent=2) + "\n", path, True)
    except OSError as error:
        raise OutputWriteError(path, output_error_reason(error, path)) from None


def _report_base(task: CaseTask, fixed: FixedScan, where: Optional[dict], started: str) -> dict:
    return {
        "format": CASE_REPORT_FORMAT,
        "schema": REPORT_SCHEMA,
        "tool_version": __version__,
        "id": task.case_id,
        "stem": task.case_id,
        "moving_path": task.moving_path,
        "labels_path": task.labels_path,
        "inputs": {
            "fixed": task.fixed_fingerprint,
            "moving": input_fingerprint(task.moving_path),
            "labels": input_fingerprint(task.labels_path),
        },
        "options": task.options.to_dict(),
        "where": {"host": socket.gethostname(), "pid": os.getpid(), "worker": None, **(where or {})},
        "run_id": task.run_id,
        "started": started,
    }


def _trust(quality: dict) -> dict:
    """A case whose own verdict is "failed" still has its outputs, flagged as not to be used unseen."""
    if quality.get("verdict") == "failed":
        reason = f"quality verdict failed: {quality.get('reason')}; outputs written but not to be trusted"
        return {"trustworthy": False, "trust_reason": reason}
    return {"trustworthy": True, "trust_reason": None}


def _write_final_report(report: dict, path: str) -> None:
    """The last write of a case. If even that fails (a full disk), the caller still gets the report."""
    try:
        write_text(json.dumps(report, indent=2) + "\n", path, True)
    except (OSError, OutputExistsError) as error:
        report["report_error"] = f"{path}: cannot write ({output_error_reason(error, path)})"


def _write_png(picture: sitk.Image, path: str) -> None:
    write_atomically(path, lambda temporary: sitk.WriteImage(picture, temporary, imageIO="PNGImageIO"), True)


def _read_labels(path: str, moving: sitk.Image) -> sitk.Image:
    """The case's label map (CSV ``labels`` column), checked against its scan before any work:
    integer labels, and lying in the scan's physical space (its own grid may differ)."""
    labels = read_label_map(path)
    try:
        check_label_image(labels)
        check_labels_overlap(labels, moving)
    except LabelError as error:
        raise InputError(path, error.reason) from None
    return labels


def _stop_if(cancel: Optional[Callable[[], bool]]) -> None:
    if cancel is not None and cancel():
        raise CaseStopped()


def now_text() -> str:
    """Local time with its UTC offset, to the second: when a case started or finished."""
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def record_lost_case(
    task: CaseTask, fixed: FixedScan, status: str, error: str, started: str, seconds: float, where: dict
) -> dict:
    """The report of a case whose worker vanished (killed, out of memory) or never answered a stop.

    Runs where the results are collected. When the case's report shows this run claimed it, every
    file at its output paths (and its temporary files) is this run's work: all are removed, so a
    killed case leaves no partial files. Otherwise the worker died before writing anything: no
    file is removed. The report is written unless another run has taken the case (then nothing of
    it is touched).

    Args:
        task: the lost case.
        fixed: the fixed scan.
        status: "failed" or "cancelled".
        error: what happened, for the report.
        started: when it started (ISO text).
        seconds: how long it ran.
        where: host and worker.

    Returns:
        The report (written unless another run has taken the case).
    """
    paths = task.paths()
    on_disk = _report_on_disk(task)
    foreign = someone_elses(task)
    if on_disk is not None and on_disk.get("run_id") == task.run_id:
        remove_files(path for role, path in paths.items() if role != "report")
        remove_files(stray_temporaries(task.out_dir, task.names().values()))
    report = {
        **_report_base(task, fixed, where, started),
        "status": status,
        "error": error,
        "outputs": {},
        "output_bytes": {},
        "trustworthy": False,
        "trust_reason": error,
        "finished": now_text(),
        "seconds": round(seconds, 3),
    }
    if foreign:
        report["report_error"] = f"{paths['report']}: left as it is (another run took this case)"
        return report
    _write_final_report(report, paths["report"])
    return report
