"""The affine registration: its options and results (``options``), the inputs it prepares
(``preparation``), the initial placements (``initialization``) and the engine (``engine``:
``register_images``). Most callers want ``CTAffineRegisterLib.register_pair`` instead."""

from __future__ import annotations

from ..errors import RegistrationCancelled, RegistrationError
from .engine import GUARD_TOLERANCE, MIN_OVERLAP, register_images
from .options import (
    TRANSFORM_TYPES,
    CancelCheck,
    ProgressCallback,
    ProgressEvent,
    RegistrationOptions,
    RegistrationResult,
    StageInfo,
)
from .preparation import build_pyramids

__all__ = [
    "GUARD_TOLERANCE",
    "MIN_OVERLAP",
    "RegistrationCancelled",
    "RegistrationError",
    "build_pyramids",
    "TRANSFORM_TYPES",
    "CancelCheck",
    "ProgressCallback",
    "ProgressEvent",
    "RegistrationOptions",
    "RegistrationResult",
    "StageInfo",
    "register_images",
]
