"""Choosing the reference scan: rank candidates by how well a sample of the cohort fits onto each
and by what each covers; ``choose_reference`` is the whole job, ``read_recommendation`` reads its
pick back (``register --fixed-from``)."""

from __future__ import annotations

from .report import read_recommendation
from .run import choose_reference, exit_status

__all__ = ["choose_reference", "exit_status", "read_recommendation"]
