"""Which scans make up a cohort, and the name each case's outputs carry.

Three ways to say which moving scans to register: paths on the command line, a list file (one path
per line, or a CSV with a ``path`` column and optional ``id`` and ``labels`` columns), or a folder
whose every image file and DICOM series below it is a case. Every case gets an id, the stem of its
output files, that is unique in the cohort before any work starts and the same on every run with
the same inputs, so a rerun finds its earlier results. Pure module: the standard library only.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional, Union

from ..errors import InputError
from ..io.file_integrity import special_file_reason
from ..io.images import IMAGE_SUFFIXES

PathLike = Union[str, "os.PathLike[str]"]

# Joins the parts of a path below --moving-root into one id: a/b/scan.nii.gz -> a__b__scan.
ROOT_ID_SEPARATOR = "__"
# Files below --moving-root that are DICOM slices without a .dcm suffix are found by their preamble.
DICOM_MAGIC_OFFSET, DICOM_MAGIC = 128, b"DICM"
# An id that is empty once its image suffix and leading dots are gone (a file named ".nii.gz").
UNNAMED_ID = "unnamed"


@dataclass(frozen=True)
class MovingInput:
    """One case of the cohort: the moving scan, the stem of its outputs, an optional label map.

    Attributes:
        path: the moving scan (image file or DICOM series folder).
        case_id: the stem of the case's outputs, unique in the cohort.
        labels: its label map, or None.
    """

    path: str
    case_id: str
    labels: Optional[str] = None


def case_id_from_name(name: str) -> str:
    """The file or folder name without its image suffix, never hidden, never empty.

    A file named just ``.nii.gz`` would otherwise give hidden outputs (``.nii.gz_registered...``).

    Args:
        name: a file or folder name.

    Returns:
        The id.
    """
    base = os.path.basename(os.path.normpath(str(name)))
    lower = base.lower()
    for suffix in IMAGE_SUFFIXES:
        if lower.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.lstrip(".") or UNNAMED_ID


def inputs_from_paths(
    paths: Iterable[PathLike], argument: str = "moving", labels: Optional[Iterable[PathLike]] = None
) -> list[MovingInput]:
    """Cases named after their file or folder; duplicates of a name get ``_2``, ``_3``...

    ``paths`` must be a collection of paths, not one path: a string would be taken character by
    character, so it is refused (``TypeError`` naming ``argument``) before any work. ``labels``, when
    given, holds one label map per path in the same order (``--moving-labels``); another count is a
    ``ValueError`` (pairing them some other way would carry one scan's labels with another's transform).

    Args:
        paths: the moving scans (files or DICOM series folders).
        argument: the argument's name for messages ("moving", "--moving").
        labels: one label map per path, in the same order, or None.

    Returns:
        One ``MovingInput`` per path, ids unique.

    Raises:
        TypeError: ``paths`` is a single path (a string) rather than a collection.
        ValueError: ``labels`` does not hold one label map per path.
    """
    paths = _path_list(paths, argument)
    if labels is None:
        label_paths: list[Optional[str]] = [None] * len(paths)
    else:
        label_paths = list(_path_list(labels, "labels"))
        if len(label_paths) != len(paths):
            raise ValueError(
                f"{len(label_paths)} label map(s) for {len(paths)} {argument} scan(s); "
                "give one per scan, in the same order"
            )
    return unique_ids(
        [MovingInput(path, case_id_from_name(path), label) for path, label in zip(paths, label_paths)]
    )


def check_labels_are_not_scans(fixed: PathLike, cases: Iterable[MovingInput]) -> None:
    """Refuse a label map path that names the fixed scan or a moving scan (the same file or a link to it).

    Such a "label map" is a mistake in the arguments (a shifted list, a scan given twice): refused
    with ``InputError`` before any work rather than failing case by case as "not a label map".

    Args:
        fixed: the fixed scan.
        cases: the cases, with their label maps.

    Raises:
        InputError: a label map is the fixed scan or a moving scan.
    """
    cases = list(cases)
    if all(case.labels is None for case in cases):
        return  # nothing to compare: no file looked at, however large the cohort
    scans = {}
    for role, path in [("the fixed scan", os.fspath(fixed))] + [
        (f"the moving scan of case {case.case_id}", case.path) for case in cases
    ]:
        for key in _file_keys(path):
            scans.setdefault(key, (role, path))
    for case in cases:
        if case.labels is None:
            continue
        for key in _file_keys(case.labels):
            if key in scans:
                role, path = scans[key]
                same = "" if os.path.normpath(path) == os.path.normpath(case.labels) else f" ({path})"
                raise InputError(
                    case.labels,
                    f"is {role}{same}, not a label map; check which label map goes with which scan",
                )


def inputs_from_list_file(list_path: PathLike) -> list[MovingInput]:
    """Cases from a list file: one path per line (``#`` comments and blank lines skipped), or a CSV
    whose header has a ``path`` column and optionally ``id`` and ``labels``.

    Relative paths are relative to the list file's folder, so a list travels with its data.
    An ``id`` given in the CSV is used as it is; two equal ids are an error, not renamed.

    Args:
        list_path: the list file (plain text or CSV).

    Returns:
        One ``MovingInput`` per line or row, in file order.

    Raises:
        InputError: the file is missing, a folder or unreadable, lists no scan, has a row without a path
            or an id used twice; names the file (and the line).
    """
    list_path = os.fspath(list_path)
    if os.path.isdir(list_path):
        raise InputError(list_path, "is a folder; --moving-list takes a text or CSV file")
    if os.path.exists(list_path) and special_file_reason(list_path) is not None:  # a pipe: open() would hang
        raise InputError(list_path, special_file_reason(list_path))
    try:
        with open(list_path, encoding="utf-8-sig", newline="") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        raise InputError(list_path, "no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(list_path, f"cannot be read ({error})") from None
    base = os.path.dirname(os.path.abspath(list_path))
    header = _csv_header(lines)
    cases = _csv_cases(list_path, lines, header, base) if header else _plain_cases(lines, base)
    if not cases:
        raise InputError(list_path, "lists no moving scans")
    return unique_ids(cases)


def inputs_from_root(root: PathLike, exclude: Optional[PathLike] = None) -> list[MovingInput]:
    """Every image file and every DICOM series folder below ``root``, named by its relative path.

    ``a/b/scan.nii.gz`` becomes ``a__b__scan`` and a series folder ``p1/ct/`` becomes ``p1__ct``.
    Hidden files and folders are skipped, and so is ``exclude`` (the output folder, when it lies
    below the root), so a rerun does not take its own outputs for inputs. The walk is sorted, so
    ids are the same on every run. Links to folders are followed like links to files (a root of
    ``pA -> /data/p01/`` links is common), except a link back into a folder the walk is already
    inside, which would never end.

    Args:
        root: the folder to walk.
        exclude: a folder below it to leave out (the output folder).

    Returns:
        One ``MovingInput`` per image file or series folder, sorted, ids unique.

    Raises:
        InputError: ``root`` is not a usable folder, or it holds no image files or DICOM series.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        reason = "no such folder" if not os.path.exists(root) else "is not a folder"
        raise InputError(root, f"{reason}; --moving-root takes a folder")
    excluded = os.path.realpath(os.fspath(exclude)) if exclude is not None else None
    cases = []
    inside = {root: (os.path.realpath(root),)}  # each folder: the real folders the walk is inside
    for folder, subfolders, files in os.walk(root, followlinks=True):
        chain = inside.pop(folder, (os.path.realpath(folder),))
        kept = []
        for name in sorted(subfolders):
            real = os.path.realpath(os.path.join(folder, name))
            if name.startswith(".") or real == excluded or real in chain:
                continue  # hidden, the output folder, or a link loop
            inside[os.path.join(folder, name)] = chain + (real,)
            kept.append(name)
        subfolders[:] = kept
        visible = sorted(name for name in files if not name.startswith("."))
        images = [name for name in visible if _has_image_suffix(name) and not name.lower().endswith(".dcm")]
        for name in images:
            path = os.path.join(folder, name)
            cases.append(MovingInput(path, _root_id(os.path.relpath(path, root))))
        if folder != root and _holds_dicom(folder, visible):
            cases.append(MovingInput(folder, _root_id(os.path.relpath(folder, root))))
    if not cases:
        raise InputError(root, "holds no image files or DICOM series")
    return unique_ids(cases)


def unique_ids(cases: list[MovingInput]) -> list[MovingInput]:
    """Make ids unique (ignoring case, for case-insensitive file systems) in the given order.

    A repeated id gets the first free ``_2``, ``_3``... that is not also some other case's own id:
    ``a/scan, b/scan, c/scan_2`` give ``scan, scan_3, scan_2``, so no two cases share a file.

    Args:
        cases: the cases, in order.

    Returns:
        The cases with unique ids.
    """
    own = {case.case_id.lower() for case in cases}
    used: set[str] = set()
    result = []
    for case in cases:
        candidate, number = case.case_id, 1
        while candidate.lower() in used or (number > 1 and candidate.lower() in own):
            number += 1
            candidate = f"{case.case_id}_{number}"
        used.add(candidate.lower())
        result.append(case if candidate == case.case_id else MovingInput(case.path, candidate, case.labels))
    return result


def _file_keys(path: str) -> list:
    """What makes two paths the same file: the real path, and the inode when the file exists."""
    keys: list = [os.path.realpath(path)]
    try:
        stat = os.stat(path)
    except OSError:
        return keys
    return keys + [(stat.st_dev, stat.st_ino)]


def item_list(value, argument: str) -> list:
    """``value`` as a list, refusing a single path where a list of paths belongs: a string would
    otherwise be taken one character at a time, each a "path".

    Args:
        value: what the caller passed.
        argument: its name, for the message.

    Returns:
        The list.

    Raises:
        TypeError: a single path (str, bytes or PathLike), or no collection at all.
    """
    if isinstance(value, (str, bytes)) or hasattr(value, "__fspath__"):
        raise TypeError(f"{argument} must be a list of paths, not a single path ({os.fspath(value)!r})")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{argument} must be a list of paths, not {type(value).__name__}") from None


def _path_list(paths, argument: str) -> list[str]:
    items = item_list(paths, argument)
    result = []
    for item in items:
        if isinstance(item, MovingInput):
            result.append(item.path)
            continue
        if not isinstance(item, str) and not hasattr(item, "__fspath__"):
            raise TypeError(f"{argument} must hold paths; got {type(item).__name__} {item!r}")
        result.append(os.fspath(item))
    if not result:
        raise ValueError(f"{argument} holds no paths")
    return result


def _csv_header(lines: list[str]) -> Optional[list[str]]:
    """The CSV header when the first non-blank line names a ``path`` column, else None (plain list)."""
    first = next((line for line in lines if line.strip() and not line.lstrip().startswith("#")), None)
    if first is None:
        return None
    columns = [column.strip().lower() for column in next(csv.reader([first]))]
    return columns if "path" in columns else None


def _csv_cases(list_path: str, lines: list[str], header: list[str], base: str) -> list[MovingInput]:
    rows = csv.reader(lines)
    cases: list[tuple[bool, MovingInput]] = []
    ids: dict[str, int] = {}
    started = False
    for number, row in enumerate(rows, start=1):
        if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
            continue
        if not started:  # the header line itself
            started = True
            continue
        values = {name: (row[index].strip() if index < len(row) else "") for index, name in enumerate(header)}
        if not values.get("path"):
            raise InputError(list_path, f"line {number}: the path column is empty")
        path = _resolve(values["path"], base)
        labels = _resolve(values["labels"], base) if values.get("labels") else None
        case_id = values.get("id") or ""
        if case_id:
            _check_given_id(list_path, number, case_id)
            if case_id.lower() in ids:
                first = ids[case_id.lower()]
                raise InputError(list_path, f"line {number}: id {case_id!r} is already used on line {first}")
            ids[case_id.lower()] = number
        cases.append((bool(case_id), MovingInput(path, case_id or case_id_from_name(path), labels)))
    # ids given in the file win over derived ones: the given come first, so only derived ones move
    order = sorted(range(len(cases)), key=lambda index: not cases[index][0])
    renamed = unique_ids([cases[index][1] for index in order])
    result: list[Optional[MovingInput]] = [None] * len(cases)
    for index, case in zip(order, renamed):
        result[index] = case
    return [case for case in result if case is not None]


def _plain_cases(lines: list[str], base: str) -> list[MovingInput]:
    cases = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            path = _resolve(text, base)
            cases.append(MovingInput(path, case_id_from_name(path)))
    return cases


def _check_given_id(list_path: str, number: int, case_id: str) -> None:
    if case_id.startswith(".") or any(sep in case_id for sep in ("/", "\\", "\0")) or case_id in ("..",):
        raise InputError(
            list_path, f"line {number}: id {case_id!r} cannot name files (no '/', '\\' or leading '.')"
        )


def _resolve(path: str, base: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _has_image_suffix(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def _root_id(relative: str) -> str:
    parts = [part for part in relative.replace("\\", "/").split("/") if part not in ("", ".")]
    parts[-1] = case_id_from_name(parts[-1])
    return ROOT_ID_SEPARATOR.join(part.lstrip(".") or UNNAMED_ID for part in parts)


def _holds_dicom(folder: str, files: list[str]) -> bool:
    """A folder is a DICOM series when it holds .dcm files or files with the DICOM preamble."""
    if any(name.lower().endswith(".dcm") for name in files):
        return True
    for name in files[:3]:  # series without suffixes: look at a few files, not all
        if _has_image_suffix(name) or not os.path.isfile(os.path.join(folder, name)):  # no pipes opened
            continue
        try:
            with open(os.path.join(folder, name), "rb") as handle:
                handle.seek(DICOM_MAGIC_OFFSET)
                if handle.read(len(DICOM_MAGIC)) == DICOM_MAGIC:
                    return True
        except OSError:
            continue
    return False
