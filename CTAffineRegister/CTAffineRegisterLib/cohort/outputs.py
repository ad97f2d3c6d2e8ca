"""Where a cohort's files go, and the checks that keep a run from destroying anything.

Every check here runs before the first registration: an output folder that is a file, lies under
a file or cannot be written, a summary path that is a folder or belongs to someone else, and an
output that is, or would replace, one of the inputs. Each failure is one ``InputError`` naming
the file. Also here: finding the temporary files a killed writer left, so nothing hidden stays
behind. Pure module: the standard library only.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from typing import Optional

from ..errors import InputError

OUTPUT_FORMATS = ("nii.gz", "nii", "nrrd", "mha")
DEFAULT_OUTPUT_FORMAT = "nii.gz"
SUMMARY_NAMES = {"json": "report.json", "csv": "report.csv", "html": "report.html"}
# First bytes that mark a summary file as written by this tool (so a rerun may rebuild it).
SUMMARY_MARKERS = {
    "json": '"format": "ct-affine-register cohort report"',
    "csv": "id,input,status,",
    "html": '<meta name="generator" content="ct-affine-register">',
}
CASE_REPORT_SUFFIX = "_report.json"


def output_names(
    case_id: str, output_format: str = DEFAULT_OUTPUT_FORMAT, labels: bool = False, images: bool = True
) -> dict:
    """File names of one case's outputs, by role; ``report`` (the per-case report) is written last.

    Args:
        case_id: the case's id (the outputs' stem).
        output_format: "nii.gz", "nii", "nrrd" or "mha".
        labels: include the carried label map.
        images: include the registered scan, validity mask and pictures; False (a registration
            made only to be judged, as ``reference`` does) names the transform and report only.

    Returns:
        File name by role (registered, transform, validmask, qc, ..., report).

    Raises:
        ValueError: an unknown output format.
    """
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"output_format must be one of {OUTPUT_FORMATS}, not {output_format!r}")
    names = {
        "registered": f"{case_id}_registered.{output_format}",
        "transform": f"{case_id}_transform.tfm",
        "validmask": f"{case_id}_validmask.{output_format}",
        "qc": f"{case_id}_qc.png",
        "qc_thumb": f"{case_id}_qc_thumb.png",
    }
    if not images:
        names = {"transform": names["transform"]}
    elif labels:
        names["labels"] = f"{case_id}_labels.{output_format}"
    names["report"] = case_id + CASE_REPORT_SUFFIX
    return names


def prepare_out_dir(out_dir: str) -> str:
    """Create the output folder if needed and prove it writable; ``InputError`` otherwise.

    Args:
        out_dir: the output folder.

    Returns:
        ``out_dir``.

    Raises:
        InputError: it cannot be created or written to.
    """
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise InputError(out_dir, "is a file; --out must be a folder")
    blocking = _file_above(out_dir)
    if blocking is not None:
        raise InputError(out_dir, f"lies under {blocking}, which is a file; --out must be a folder")
    try:
        os.makedirs(out_dir, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".ct-affine-register-probe.", dir=out_dir)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise InputError(out_dir, f"output folder cannot be written ({_os_reason(error)})") from None
    return out_dir


def check_summary_paths(
    out_dir: str,
    overwrite: bool,
    names: Optional[dict] = None,
    markers: Optional[dict] = None,
    what: str = "the cohort summary",
) -> None:
    """report.json/.csv/.html are rebuilt on every run: refuse folders, and files this tool did not write.

    Args:
        out_dir: the output folder.
        overwrite: the user allows replacing outputs.
        names: file name by kind; None: the cohort summary's (``reference`` passes its ranking's).
        markers: the first bytes that mark each kind as this tool's; None: the cohort summary's.
        what: what is written there, for the message.

    Raises:
        InputError: a summary path is a folder, or (without ``overwrite``) a file this tool did not write.
    """
    for kind, name in (names or SUMMARY_NAMES).items():
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            raise InputError(path, f"is a folder; {what} is written there")
        if os.path.exists(path) and not overwrite and not is_own_summary(path, kind, markers):
            reason = "already exists and was not written by ct-affine-register (use --overwrite)"
            raise InputError(path, reason)


def is_own_summary(path: str, kind: str, markers: Optional[dict] = None) -> bool:
    """Whether a summary file was written by this tool (its marker near the start): only those are replaced.

    Args:
        path: report.json, .csv or .html.
        kind: "json", "csv" or "html".
        markers: the marker by kind; None: the cohort summary's.

    Returns:
        True if its marker is found; False otherwise or when it cannot be read.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return (markers or SUMMARY_MARKERS)[kind] in handle.read(4096)
    except OSError:
        return False


def check_inputs_not_outputs(input_paths: Iterable[str], output_paths: Iterable[str], out_dir: str) -> None:
    """Refuse a run where an output path is an input, or would replace one (even with --overwrite).

    Compared by real path and by inode, so a symbolic or hard link to an input counts as the input.
    The output folder must not be, or lie inside, an input series folder either.

    Args:
        input_paths: every input of the run.
        output_paths: every output it would write.
        out_dir: the output folder.

    Raises:
        InputError: an output would be or replace an input, or the folder is inside an input's.
    """
    inputs = {}
    real_out = os.path.realpath(out_dir)
    for path in input_paths:
        if path is None:
            continue
        real = os.path.realpath(path)
        inputs[real] = path
        identity = _inode(path)
        if identity is not None:
            inputs[identity] = path
        if os.path.isdir(path) and (real_out == real or real_out.startswith(real.rstrip(os.sep) + os.sep)):
            raise InputError(out_dir, f"lies inside the input folder {path}; outputs would change an input")
    for output in output_paths:
        for key in (os.path.realpath(output), _inode(output)):
            if key is not None and key in inputs:
                raise InputError(output, f"is the input {inputs[key]}; writing it would destroy an input")


def stray_temporaries(out_dir: str, names: Iterable[str]) -> list[str]:
    """Temporary files (``.NAME.xxxxxxxx...``) that an interrupted atomic write of NAME left behind.

    Args:
        out_dir: the output folder.
        names: the output names to look for.

    Returns:
        Their paths.
    """
    prefixes = tuple(f".{name}." for name in names)
    try:
        entries = os.listdir(out_dir)
    except OSError:
        return []
    return [os.path.join(out_dir, entry) for entry in entries if entry.startswith(prefixes)]


def remove_files(paths: Iterable[str]) -> None:
    """Remove files, best effort: what cannot be removed is found by the next run's checks.

    Args:
        paths: the files.
    """
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            pass  # best effort: a file we cannot remove is reported by the next run's checks


def output_error_reason(error: BaseException, path: str) -> str:
    """Why writing ``path`` failed, in words, including a full disk that SimpleITK does not name.

    Args:
        error: what writing raised.
        path: the output being written.

    Returns:
        The reason, for a report.
    """
    if isinstance(error, OSError):
        return _os_reason(error)
    text = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = (text or ["unknown error"])[-1][:200]
    try:
        free = os.statvfs(os.path.dirname(os.path.abspath(path))).f_bavail
    except (OSError, AttributeError):
        free = None
    if free == 0:
        return f"no space left on the device ({reason})"
    return reason


def check_not_full(path: str) -> None:
    """Raise ``OSError(ENOSPC)`` when the file system holding ``path`` is full after writing it.

    SimpleITK's NIfTI writer does not report a full disk: it leaves a truncated file and returns
    normally. A file system left with no free block right after a write almost surely cut it, so
    the output is refused instead of being kept as if it were whole.

    Args:
        path: a file just written.

    Raises:
        OSError: ENOSPC, the file system is full.
    """
    try:
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except (OSError, AttributeError):  # no statvfs (Windows): nothing to check
        return
    geteuid = getattr(os, "geteuid", None)
    full = stats.f_bavail == 0 and (geteuid is None or geteuid() != 0 or stats.f_bfree == 0)
    if full:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


def _os_reason(error: OSError) -> str:
    if error.errno == errno.ENOSPC:
        return "no space left on the device"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied" if error.errno != errno.EROFS else "read-only file system"
    return error.strerror or str(error)


def _file_above(path: str) -> Optional[str]:
    """The first existing ancestor of ``path`` that is a file, if any."""
    current = os.path.dirname(os.path.abspath(path))
    while True:
        if os.path.exists(current):
            return None if os.path.isdir(current) else current
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent


def _inode(path: str) -> Optional[tuple[int, int]]:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)
