"""A fill at the very edge of what the output type holds is taken; the refusal shows whole numbers as
typed up to 21 digits and in exponent form beyond."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.resample.scans import fill_problem


def test_the_largest_float32_is_a_fill_a_float32_output_holds():
    largest = float(np.finfo(np.float32).max)
    assert fill_problem(largest, sitk.sitkFloat32) is None
    assert fill_problem(-largest, sitk.sitkFloat32) is None
    assert "outside the range" in fill_problem(largest * 2.0, sitk.sitkFloat32)


def test_a_refused_whole_number_is_shown_as_typed_up_to_21_digits():
    just_below = 10**21 - 1
    assert fill_problem(just_below, sitk.sitkInt64).startswith(f"{just_below} is outside")
    assert fill_problem(10**21, sitk.sitkInt64).startswith("1e+21 is outside")
    assert fill_problem(-(10**21), sitk.sitkInt64).startswith("-1e+21 is outside")
