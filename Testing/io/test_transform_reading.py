"""Reading a transform file as the linear mapping ``check`` judges (io/transform_files.py): types
without a centre, non-linear files named by their type, ITK's reason for an unreadable file."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.transform_files import read_transform


def test_a_translation_file_reads_as_the_same_shift(tmp_path):
    path = tmp_path / "shift.tfm"
    sitk.WriteTransform(sitk.TranslationTransform(3, (5.0, -2.0, 7.0)), str(path))
    transform = read_transform(str(path))
    assert isinstance(transform, sitk.AffineTransform)
    for point in [(1.0, 2.0, 3.0), (-100.0, 40.0, 250.0)]:
        assert np.allclose(transform.TransformPoint(point), np.add(point, (5.0, -2.0, 7.0)))


def test_a_centred_rigid_file_reads_about_its_own_centre(tmp_path):
    rigid = sitk.Euler3DTransform((30.0, -40.0, 12.5), 0.1, -0.2, 0.3, (1.0, 2.0, 3.0))
    path = tmp_path / "rigid.tfm"
    sitk.WriteTransform(rigid, str(path))
    transform = read_transform(str(path))
    assert transform.GetCenter() == pytest.approx((30.0, -40.0, 12.5))
    for point in [(0.0, 0.0, 0.0), (120.0, -80.0, 60.0)]:
        assert np.allclose(transform.TransformPoint(point), rigid.TransformPoint(point), atol=1e-9)


def test_a_non_linear_file_is_refused_naming_its_type(tmp_path):
    grid = sitk.Image([8, 8, 8], sitk.sitkFloat32)
    path = tmp_path / "warp.tfm"
    sitk.WriteTransform(sitk.BSplineTransformInitializer(grid, [2, 2, 2]), str(path))
    with pytest.raises(InputError) as caught:
        read_transform(str(path))
    assert str(caught.value) == (
        f"{path}: holds a non-linear transform (BSplineTransform); only linear transforms can be checked"
    )


def test_an_unreadable_transform_file_gives_itks_last_line_only(tmp_path):
    path = tmp_path / "short.tfm"
    path.write_text(
        "#Insight Transform File V1.0\n#Transform 0\nTransform: AffineTransform_double_3_3\n"
        "Parameters: 1 2 3\nFixedParameters: 0 0 0\n"
    )
    with pytest.raises(InputError) as caught:
        read_transform(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: not a readable transform file (")
    assert "parameters array size (3) is less than expected" in message
    assert "\n" not in message and "Exception thrown" not in message
