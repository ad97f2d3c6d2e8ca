"""elastix parameter files read as the mapping elastix applies (io/transform_files.py): the rotation
order ComputeZYX chooses, the centre of rotation (or none), comments, text in other encodings, and a
file whose Transform line is commented out. Tiny text files, no registration."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.transform_files import read_transform

ANGLES, SHIFT = (0.3, -0.2, 0.5), (4.0, -6.0, 9.0)
POINTS = [(0.0, 0.0, 0.0), (100.0, -40.0, 30.0), (-80.0, 95.0, -150.0)]


def _euler_file(folder, lines: str, name: str = "TransformParameters.0.txt"):
    path = folder / name
    parameters = " ".join(str(value) for value in (*ANGLES, *SHIFT))
    path.write_text(
        f'(Transform "EulerTransform")\n(NumberOfParameters 6)\n(TransformParameters {parameters})\n{lines}'
    )
    return path


def _expected(center=(0.0, 0.0, 0.0), zyx=False) -> sitk.Euler3DTransform:
    euler = sitk.Euler3DTransform(center, *ANGLES, SHIFT)
    euler.SetComputeZYX(zyx)
    return euler


def _maps_like(transform: sitk.Transform, expected: sitk.Transform) -> bool:
    return all(
        np.allclose(transform.TransformPoint(point), expected.TransformPoint(point), atol=1e-6)
        for point in POINTS
    )


@pytest.mark.parametrize(
    ("line", "zyx"), [("", False), ('(ComputeZYX "false")\n', False), ('(ComputeZYX "true")\n', True)]
)
def test_the_rotation_order_follows_compute_zyx(tmp_path, line, zyx):
    transform = read_transform(str(_euler_file(tmp_path, line)))
    assert _maps_like(transform, _expected(zyx=zyx))
    assert not _maps_like(transform, _expected(zyx=not zyx))  # the two orders differ this far out


def test_the_centre_of_rotation_is_used_and_defaults_to_the_origin(tmp_path):
    centred = read_transform(str(_euler_file(tmp_path, "(CenterOfRotationPoint 10.5 -20 35)\n", "c.txt")))
    assert _maps_like(centred, _expected(center=(10.5, -20.0, 35.0)))
    plain = read_transform(str(_euler_file(tmp_path, "", "p.txt")))
    assert _maps_like(plain, _expected())


def test_comments_after_entries_and_comments_holding_slashes_are_ignored(tmp_path):
    lines = '(ComputeZYX "true") // set by the registration // twice\n(CenterOfRotationPoint 1 2 3) // mm\n'
    transform = read_transform(str(_euler_file(tmp_path, lines)))
    assert _maps_like(transform, _expected(center=(1.0, 2.0, 3.0), zyx=True))


def test_a_comment_in_another_encoding_does_not_stop_the_reading(tmp_path):
    path = _euler_file(tmp_path, '(ComputeZYX "true")\n')
    path.write_bytes(path.read_bytes() + "// geändert von Jürgen\n".encode("latin-1"))
    assert _maps_like(read_transform(str(path)), _expected(zyx=True))


def test_a_transform_line_only_in_a_comment_is_refused_as_an_unknown_transform(tmp_path):
    path = tmp_path / "TransformParameters.0.txt"
    path.write_text('// (Transform "EulerTransform")\n(TransformParameters 0 0 0 0 0 0)\n')
    with pytest.raises(InputError) as caught:
        read_transform(str(path))
    assert str(caught.value) == f"{path}: holds an elastix ?; only linear transforms can be checked"
