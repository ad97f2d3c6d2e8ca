"""The 0.1 module paths (one flat folder) keep working for one release, with a DeprecationWarning.

``import CTAffineRegisterLib.pipeline`` and ``from CTAffineRegisterLib.imageio import read_image``
give the very module that now lives at the new path (``CTAffineRegisterLib.pair.register``,
``CTAffineRegisterLib.io.images``): same functions, same classes, so ``isinstance`` and monkeypatching
behave as before. A finder on ``sys.meta_path`` answers only for the names below; every other import
is left to Python. Paths that are packages now (``cli``, ``cohort``, ``registration``) re-export what
their 0.1 module taught and need no alias. Pure module: the standard library only.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Optional

PACKAGE = __name__.rpartition(".")[0]

# 0.1 module name -> its module today (under the package).
MOVED = {
    "accuracy": "quality.accuracy",
    "api_checks": "io.arguments",
    "apply_transform": "pair.apply",
    "background": "padding.analysis",
    "batch": "cohort.batch",
    "case_runner": "cohort.case",
    "check": "pair.check",
    "cohort_backends": "cohort.backends",
    "cohort_dask": "cohort.dask_backend",
    "cohort_html": "cohort.report_page",
    "cohort_inputs": "cohort.inputs",
    "cohort_outputs": "cohort.outputs",
    "cohort_progress": "cohort.progress",
    "cohort_report": "cohort.summary",
    "cohort_resume": "cohort.resume",
    "cohort_review": "cohort.review",
    "demo": "cli.demo",
    "dicom_series": "io.dicom",
    "file_checks": "io.file_integrity",
    "imageio": "io.images",
    "initialization": "registration.initialization",
    "labels": "resample.labels",
    "mask_mapping": "resample.valid_mask",
    "morphology": "core.morphology",
    "mrml_bridge": "mrml.volume_nodes",
    "mrml_segmentations": "mrml.segmentations",
    "native_stderr": "io.itk_messages",
    "output_formats": "io.volume_writers",
    "padding_region": "padding.region",
    "pipeline": "pair.register",
    "pyramid": "core.pyramid",
    "qc": "quality.picture",
    "resampling": "resample.scans",
    "result_summary": "panel.result_lines",
    "scene_watch": "panel.scene_watch",
    "slicer_batch": "cli.slicer_batch",
    "transform_files": "io.transform_files",
    "transforms": "core.affine",
    "verdict": "quality.verdict",
    "volume_findings": "panel.volume_findings",
}


def new_name(old: str) -> Optional[str]:
    """The full module name today of a 0.1 module name (``"pipeline"``), or None if it did not move.

    Args:
        old: the module's name directly under the package, as in 0.1.

    Returns:
        ``"CTAffineRegisterLib.pair.register"`` and the like, or None.
    """
    moved = MOVED.get(old)
    return f"{PACKAGE}.{moved}" if moved else None


def import_moved(old: str):
    """Import a module by its 0.1 name, warning that it moved; the module object at its new path.

    Args:
        old: the module's 0.1 name directly under the package (``"imageio"``).

    Returns:
        The module itself (the one ``sys.modules`` holds under its new name).

    Raises:
        KeyError: ``old`` is not a moved module.
    """
    target = new_name(old)
    if target is None:
        raise KeyError(old)
    warnings.warn(
        f"{PACKAGE}.{old} moved to {target}; the old path goes away in the next release "
        f"(or import from {PACKAGE} directly)",
        DeprecationWarning,
        stacklevel=_caller_level(),
    )
    return importlib.import_module(target)


def _caller_level() -> int:
    """``stacklevel`` that points the warning at the user's import, past this module and the package root.

    ``warnings.warn`` itself steps over importlib's frames without counting them, so they are not counted.
    """
    own = (__file__, getattr(sys.modules.get(PACKAGE), "__file__", None))
    frame, level = sys._getframe(1), 1
    while frame is not None:
        name = frame.f_code.co_filename
        if "importlib" in name and "_bootstrap" in name:
            frame = frame.f_back
            continue
        if name not in own:
            break
        frame, level = frame.f_back, level + 1
    return level


class _MovedLoader(importlib.abc.Loader):
    """Hands out the module at its new path instead of creating one."""

    def __init__(self, old: str):
        self.old = old
        self.spec = None

    def create_module(self, spec):
        module = import_moved(self.old)
        self.spec = module.__spec__  # importlib sets the alias spec on it next; put it back in exec_module
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds ``CTAffineRegisterLib.<0.1 name>`` (and nothing else) as an alias of its new module."""

    def find_spec(self, fullname: str, path=None, target=None):
        """A spec that aliases a 0.1 module name to its module today; None for any other name.

        Args:
            fullname: the module name being imported.
            path: the parent package's path (unused).
            target: unused.

        Returns:
            The spec, or None.
        """
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, _MovedLoader(old))


def install() -> None:
    """Put the finder on ``sys.meta_path`` once (a reload of the package does not add a second)."""
    if not any(type(finder).__name__ == "MovedFinder" for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
