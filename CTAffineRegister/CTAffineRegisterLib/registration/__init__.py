"""The affine registration: its options and results (``options``), the inputs it prepares
(``preparation``), the initial placements (``initialization``) and the engine (``engine``:
``register_images``). Most callers want ``CTAffineRegisterLib.register_pair`` instead.

The names below load on first use (``core.lazy``): ``registration.options`` (what ``check`` and
the cohort's options need) is importable without the optimiser.
"""

from __future__ import annotations

from ..core.lazy import lazy_names

_NAMES = {
    "GUARD_TOLERANCE": ".engine",
    "MIN_OVERLAP": ".engine",
    "RegistrationCancelled": "..errors",
    "RegistrationError": "..errors",
    "build_pyramids": ".preparation",
    "TRANSFORM_TYPES": ".options",
    "CancelCheck": ".options",
    "ProgressCallback": ".options",
    "ProgressEvent": ".options",
    "RegistrationOptions": ".options",
    "RegistrationResult": ".options",
    "StageInfo": ".options",
    "register_images": ".engine",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
