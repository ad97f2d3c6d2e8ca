"""Grid settings of the tiny synthetic pair that file-handling tests register: coarse enough that a
registration takes well under a second, fine enough that it lands within a voxel."""

from __future__ import annotations

TINY_PAIR = {
    "fixed_size": (64, 64, 40),
    "fixed_spacing": (5.0, 5.0, 6.0),
    "moving_spacing": (5.5, 5.5, 6.5),
    "point_count": 200,
}

# A smaller patient on 96×96×64 grids keeps each full registration around a second.
SMALL_PATIENT = dict(
    fixed_size=(96, 96, 64),
    fixed_spacing=(2.6, 2.6, 3.6),
    moving_spacing=(2.9, 2.9, 4.2),
    anatomy_scale=0.7,
    max_translation_mm=14.0,
)
