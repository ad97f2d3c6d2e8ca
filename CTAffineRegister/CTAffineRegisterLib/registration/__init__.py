"""The affine registration: its options and results, the inputs it prepares, the initial placements
and the engine (``register_images``). Most callers want ``CTAffineRegisterLib.register_pair`` instead."""

from __future__ import annotations

from .engine import (
    TRANSFORM_TYPES,
    CancelCheck,
    ProgressCallback,
    ProgressEvent,
    RegistrationOptions,
    RegistrationResult,
    StageInfo,
    register_images,
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
