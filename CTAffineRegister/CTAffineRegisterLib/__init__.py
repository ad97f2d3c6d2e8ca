"""CTAffineRegister core: padding-aware affine registration of CT scans.

The public face: everything a script, a notebook or the Slicer console needs is importable from here
(``from CTAffineRegisterLib import register_pair, read_image``); ``__all__`` lists it. The work is done
in subpackages named for the stages of the data's path, each importing only the ones below it:
``core`` → ``io`` → ``padding`` → ``resample``/``quality`` → ``registration`` → ``pair`` →
``cohort``/``mrml``/``panel`` → ``reference`` → ``cli`` (the import-linter contracts in
pyproject.toml enforce it).
Every exception type is in ``errors``.

Each public name is imported on first use (PEP 562, ``core.lazy``): ``import CTAffineRegisterLib``
loads no SimpleITK, and a command imports only what it runs. Pure modules (SimpleITK + numpy) do the
work; ``mrml`` connects them to a Slicer scene, and ``register_volume_nodes`` is loaded only when
asked for, so the pure core never needs Slicer.
The 0.1 module paths (``CTAffineRegisterLib.pipeline``, ``.imageio``, ...) still import, with a
DeprecationWarning (``_moved``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _moved
from ._version import __version__
from .core.lazy import lazy_names

if TYPE_CHECKING:  # what the names are, for type checkers and the API reference
    from .cohort.inputs import MovingInput, inputs_from_list_file, inputs_from_paths, inputs_from_root
    from .cohort.run import exit_status, run_cohort
    from .errors import (
        CaseStopped,
        InputError,
        LabelError,
        OutputExistsError,
        OutputWriteError,
        RegistrationCancelled,
        RegistrationError,
        SchedulerLost,
        VolumeNodeError,
    )
    from .io.images import DicomPadding, LoadedImage, read_image, write_image, write_transform
    from .io.transform_files import read_any_transform, read_transform
    from .padding.analysis import BackgroundAnalysis, analyze_background
    from .pair.apply import apply_files, apply_to_labels, apply_to_scan
    from .pair.check import check_files, check_transform
    from .pair.register import CaseResult, register_pair
    from .reference import choose_reference, read_recommendation
    from .registration.engine import register_images
    from .registration.options import ProgressEvent, RegistrationOptions, RegistrationResult
    from .resample.labels import carry_labels, read_label_map, resample_labels
    from .resample.scans import resample_to_fixed, resample_with_valid_mask
    from .synthetic import SyntheticPair, make_pair, make_phantom

_moved.install()

_NAMES = {
    "analyze_background": ".padding.analysis",
    "apply_files": ".pair.apply",
    "apply_to_labels": ".pair.apply",
    "apply_to_scan": ".pair.apply",
    "BackgroundAnalysis": ".padding.analysis",
    "carry_labels": ".resample.labels",
    "CaseResult": ".pair.register",
    "CaseStopped": ".errors",
    "check_files": ".pair.check",
    "check_transform": ".pair.check",
    "choose_reference": ".reference",
    "DicomPadding": ".io.images",
    "exit_status": ".cohort.run",
    "InputError": ".errors",
    "inputs_from_list_file": ".cohort.inputs",
    "inputs_from_paths": ".cohort.inputs",
    "inputs_from_root": ".cohort.inputs",
    "LabelError": ".errors",
    "LoadedImage": ".io.images",
    "make_pair": ".synthetic",
    "make_phantom": ".synthetic",
    "MovingInput": ".cohort.inputs",
    "OutputExistsError": ".errors",
    "OutputWriteError": ".errors",
    "ProgressEvent": ".registration.options",
    "read_any_transform": ".io.transform_files",
    "read_recommendation": ".reference",
    "read_image": ".io.images",
    "read_label_map": ".resample.labels",
    "read_transform": ".io.transform_files",
    "register_images": ".registration.engine",
    "register_pair": ".pair.register",
    "RegistrationCancelled": ".errors",
    "RegistrationError": ".errors",
    "RegistrationOptions": ".registration.options",
    "RegistrationResult": ".registration.options",
    "resample_labels": ".resample.labels",
    "resample_to_fixed": ".resample.scans",
    "resample_with_valid_mask": ".resample.scans",
    "run_cohort": ".cohort.run",
    "SchedulerLost": ".errors",
    "SyntheticPair": ".synthetic",
    "VolumeNodeError": ".errors",
    "write_image": ".io.images",
    "write_transform": ".io.images",
    "register_volume_nodes": ".mrml.volume_nodes",  # needs Slicer: loaded only when asked for
}

__all__ = [
    "BackgroundAnalysis",
    "CaseResult",
    "CaseStopped",
    "DicomPadding",
    "InputError",
    "LabelError",
    "LoadedImage",
    "MovingInput",
    "OutputExistsError",
    "OutputWriteError",
    "ProgressEvent",
    "RegistrationCancelled",
    "RegistrationError",
    "RegistrationOptions",
    "RegistrationResult",
    "SchedulerLost",
    "SyntheticPair",
    "VolumeNodeError",
    "__version__",
    "analyze_background",
    "apply_files",
    "apply_to_labels",
    "apply_to_scan",
    "carry_labels",
    "check_files",
    "check_transform",
    "choose_reference",
    "exit_status",
    "inputs_from_list_file",
    "inputs_from_paths",
    "inputs_from_root",
    "make_pair",
    "make_phantom",
    "read_any_transform",
    "read_recommendation",
    "read_image",
    "read_label_map",
    "read_transform",
    "register_images",
    "register_pair",
    "register_volume_nodes",
    "resample_labels",
    "resample_to_fixed",
    "resample_with_valid_mask",
    "run_cohort",
    "write_image",
    "write_transform",
]


_lazy_getattr, __dir__ = lazy_names(__name__, _NAMES, globals())


def __getattr__(name: str):
    """A public name on first use (``register_pair`` imports ``pair.register``; ``register_volume_nodes``
    the MRML side, which needs Slicer), or a 0.1 module name (``CTAffineRegisterLib.pipeline``): its
    module today, with a DeprecationWarning.

    Args:
        name: the attribute asked for.

    Returns:
        The public name's object, or the moved module.

    Raises:
        AttributeError: no such name.
    """
    if name in _NAMES:
        return _lazy_getattr(name)
    if _moved.new_name(name) is not None:
        return _moved.import_moved(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
