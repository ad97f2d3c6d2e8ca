"""CTAffineRegister core: padding-aware affine registration of CT scans.

Pure modules (SimpleITK + numpy) do the work; ``mrml_bridge`` connects them to a Slicer scene.
"""

from __future__ import annotations

__version__ = "0.1.0"
