"""CTAffineRegister core: padding-aware affine registration of CT scans.

Pure modules (SimpleITK + numpy) do the work; ``mrml_bridge`` connects them to a Slicer scene.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    """``from CTAffineRegisterLib import register_volume_nodes`` loads the MRML bridge only when asked,
    so the pure core never needs Slicer."""
    if name == "register_volume_nodes":
        from .mrml_bridge import register_volume_nodes

        return register_volume_nodes
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
