"""The affine registration: its options and results (``options``), the inputs it prepares
(``preparation``), the initial placements (``initialization``) and the engine (``engine``:
``register_images``). Most callers want ``CTAffineRegisterLib.register_pair`` instead."""

from __future__ import annotations

from .engine import register_images
from .options import (
    TRANSFORM_TYPES,
    CancelCheck,
    ProgressCallback,
    ProgressEvent,
    RegistrationOptions,
    RegistrationResult,
    StageInfo,
)

__all__ = [
    "TRANSFORM_TYPES",
    "CancelCheck",
    "ProgressCallback",
    "ProgressEvent",
    "RegistrationOptions",
    "RegistrationResult",
    "StageInfo",
    "register_images",
]
