"""An ITK text transform file that would make ITK corrupt memory is refused by name before ITK parses it
(io/tfm_text.py): a NaN or Inf or a word among the parameters, or too few parameters of an
Euler3DTransform, crashed Python ("corrupted size vs. prev_size"). Each file is read in a subprocess, so
a crash is a failed test, not a dead test run."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import SimpleITK as sitk

_READ = """
import sys
from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.transform_files import read_transform
try:
    read_transform(sys.argv[1])
except InputError as error:
    print(error)
else:
    print("read")
"""


def _read_in_subprocess(path: Path) -> str:
    """What read_transform says about the file, from a separate Python (its exit code must be 0)."""
    done = subprocess.run(
        [sys.executable, "-c", _READ, str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"Python died ({done.returncode}): {done.stderr[-300:]}"
    return done.stdout.strip()


def _composite_text(first_kind: str, first_parameters: str, first_fixed: str) -> str:
    return (
        "#Insight Transform File V1.0\n#Transform 0\nTransform: CompositeTransform_double_3_3\n"
        f"#Transform 1\nTransform: {first_kind}\nParameters: {first_parameters}\n"
        f"FixedParameters: {first_fixed}\n"
        "#Transform 2\nTransform: TranslationTransform_double_3_3\nParameters: 1 2 3\nFixedParameters: \n"
    )


def test_a_composite_written_by_simpleitk_with_a_nan_in_its_first_part_is_refused_by_name(tmp_path):
    path = tmp_path / "composite.tfm"
    first = sitk.Euler3DTransform((0.0, 0.0, 0.0), 0.0, math.nan, 0.1, (1.0, 2.0, 3.0))
    sitk.WriteTransform(
        sitk.CompositeTransform([first, sitk.TranslationTransform(3, (1.0, 2.0, 3.0))]), str(path)
    )
    assert "NaN" in path.read_text()
    assert _read_in_subprocess(path) == (
        f"{path}: transform 1 (Euler3DTransform_double_3_3): Parameters value 2 is NaN: "
        "NaN or Inf maps no point to a place"
    )


def test_an_inf_a_word_or_a_short_list_in_an_euler_part_is_refused_by_name(tmp_path):
    cases = {
        "inf.tfm": (
            "0 0 0 inf 0 0",
            "0 0 0 0",
            "Parameters value 4 is inf: NaN or Inf maps no point to a place",
        ),
        "word.tfm": ("0 0 abc 0 0 0", "0 0 0 0", "Parameters value 3 is 'abc', not a number"),
        "short.tfm": ("0 0 0", "0 0 0 0", "has 3 Parameters; a 3D Euler3DTransform has 6"),
        "centre.tfm": (
            "0 0 0 0 0 0",
            "0 -nan 0 0",
            "FixedParameters value 2 is -nan: NaN or Inf maps no point to a place",
        ),
    }
    for name, (parameters, fixed, reason) in cases.items():
        path = tmp_path / name
        path.write_text(_composite_text("Euler3DTransform_double_3_3", parameters, fixed))
        assert _read_in_subprocess(path) == f"{path}: transform 1 (Euler3DTransform_double_3_3): {reason}"


def test_a_single_transform_with_an_ants_float_name_is_checked_too(tmp_path):
    path = tmp_path / "single.txt"
    path.write_text(
        "#Insight Transform File V1.0\n#Transform 0\nTransform: VersorRigid3DTransform_float_3_3\n"
        "Parameters: 0 0 0 1 2\nFixedParameters: 0 0 0\n"
    )
    assert _read_in_subprocess(path) == (
        f"{path}: transform 0 (VersorRigid3DTransform_float_3_3): has 5 Parameters; "
        "a 3D VersorRigid3DTransform has 6"
    )


def test_well_formed_files_still_read(tmp_path):
    from CTAffineRegisterLib.io.transform_files import read_transform

    first = sitk.Euler3DTransform((1.0, 2.0, 3.0), 0.1, -0.2, 0.3, (4.0, 5.0, 6.0))
    second = sitk.Similarity3DTransform()
    second.SetScale(1.1)
    path = tmp_path / "fine.tfm"
    sitk.WriteTransform(sitk.CompositeTransform([first, second]), str(path))
    transform = read_transform(str(path))
    point = (10.0, -20.0, 30.0)
    expected = first.TransformPoint(second.TransformPoint(point))
    assert transform.TransformPoint(point) == pytest.approx(expected, abs=1e-9)
