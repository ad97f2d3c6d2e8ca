"""Choosing the reference scan: rank candidates by how well a sample of the cohort fits onto each
and by what each covers; ``choose_reference`` is the whole job, ``read_recommendation`` reads its
pick back (``register --fixed-from``)."""

from __future__ import annotations

from ..core.lazy import lazy_names

# loaded on first use (``core.lazy``): the command line's parser imports ``reference.defaults`` alone
_NAMES = {"choose_reference": ".run", "exit_status": ".run", "read_recommendation": ".report"}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_names(__name__, _NAMES, globals())
