"""``python -m CTAffineRegisterLib.cli``: the same as ``ct-affine-register``."""

from __future__ import annotations

import sys

from .commands import main

if __name__ == "__main__":
    sys.exit(main())
