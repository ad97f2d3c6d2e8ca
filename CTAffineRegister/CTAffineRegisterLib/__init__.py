"""CTAffineRegister core: padding-aware affine registration of CT scans.

The public face: everything a script, a notebook or the Slicer console needs is importable from here
(``from CTAffineRegisterLib import register_pair, read_image``); ``__all__`` lists it. The work is done
in subpackages named for the stages of the data's path, each importing only the ones below it:
``core`` → ``io`` → ``padding`` → ``resample``/``quality`` → ``registration`` → ``pair`` →
``cohort``/``mrml``/``panel`` → ``reference`` → ``cli`` (the import-linter contracts in
pyproject.toml enforce it).
Every exception type is in ``errors``.

Pure modules (SimpleITK + numpy) do the work; ``mrml`` connects them to a Slicer scene, and
``register_volume_nodes`` is loaded only when asked for, so the pure core never needs Slicer.
The 0.1 module paths (``CTAffineRegisterLib.pipeline``, ``.imageio``, ...) still import, with a
DeprecationWarning (``_moved``).
"""

from __future__ import annotations

from . import _moved
from ._version import __version__
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


def __getattr__(name: str):
    """``register_volume_nodes`` loads the MRML side only when asked for (it needs Slicer); a 0.1
    module name (``CTAffineRegisterLib.pipeline``) gives its module today, with a DeprecationWarning.

    Args:
        name: the attribute asked for.

    Returns:
        ``register_volume_nodes``, or the moved module.

    Raises:
        AttributeError: no such name.
    """
    if name == "register_volume_nodes":
        from .mrml.volume_nodes import register_volume_nodes

        return register_volume_nodes
    if _moved.new_name(name) is not None:
        return _moved.import_moved(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
