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


def _write(folder, name: str, kind: str, parameters, extra: str = ""):
    path = folder / name
    values = " ".join(str(value) for value in parameters)
    path.write_text(f'(Transform "{kind}")\n(TransformParameters {values})\n{extra}')
    return path


def test_similarity_affine_and_translation_files_map_as_itk_does(tmp_path):
    center = (5.0, -7.0, 12.0)
    similarity = sitk.Similarity3DTransform()
    similarity.SetCenter(center)
    similarity.SetParameters((0.1, -0.05, 0.2, 3.0, 4.0, -5.0, 1.15))
    path = _write(
        tmp_path,
        "s.txt",
        "SimilarityTransform",
        similarity.GetParameters(),
        "(CenterOfRotationPoint 5 -7 12)\n",
    )
    assert _maps_like(read_transform(str(path)), similarity)

    affine = sitk.AffineTransform(3)
    affine.SetCenter(center)
    affine.SetParameters((1.1, 0.2, 0.0, 0.0, 0.9, 0.1, 0.05, 0.0, 1.3, 7.0, -8.0, 9.0))
    path = _write(
        tmp_path, "a.txt", "AffineTransform", affine.GetParameters(), "(CenterOfRotationPoint 5 -7 12)\n"
    )
    assert _maps_like(read_transform(str(path)), affine)

    path = _write(tmp_path, "t.txt", "TranslationTransform", (3.0, -4.0, 12.0))
    assert _maps_like(read_transform(str(path)), sitk.TranslationTransform(3, (3.0, -4.0, 12.0)))


def test_an_initial_transform_is_applied_first(tmp_path):
    first = _write(tmp_path, "TransformParameters.0.txt", "TranslationTransform", (10.0, 0.0, 0.0))
    elsewhere = "run7/TransformParameters.0.txt"  # relative to where elastix ran: found next to this file
    second = _write(
        tmp_path,
        "TransformParameters.1.txt",
        "EulerTransform",
        (*ANGLES, *SHIFT),
        f'(InitialTransformParametersFileName "{elsewhere}")\n(HowToCombineTransforms "Compose")\n',
    )
    expected = sitk.CompositeTransform([_expected(), sitk.TranslationTransform(3, (10.0, 0.0, 0.0))])
    assert _maps_like(read_transform(str(second)), expected)
    absolute = _write(
        tmp_path,
        "abs.txt",
        "EulerTransform",
        (*ANGLES, *SHIFT),
        f'(InitialTransformParametersFileName "{first}")\n',
    )
    assert _maps_like(read_transform(str(absolute)), expected)


def test_initial_transforms_that_add_are_missing_or_loop_are_refused(tmp_path):
    _write(tmp_path, "base.txt", "TranslationTransform", (1.0, 2.0, 3.0))
    adding = _write(
        tmp_path,
        "add.txt",
        "TranslationTransform",
        (1.0, 0.0, 0.0),
        '(InitialTransformParametersFileName "base.txt")\n(HowToCombineTransforms "Add")\n',
    )
    with pytest.raises(InputError, match=r"adds its transforms .* only Compose can be checked"):
        read_transform(str(adding))
    missing = _write(
        tmp_path,
        "missing.txt",
        "TranslationTransform",
        (1.0, 0.0, 0.0),
        '(InitialTransformParametersFileName "gone.txt")\n',
    )
    with pytest.raises(InputError, match="its initial transform gone.txt was not found"):
        read_transform(str(missing))
    _write(
        tmp_path,
        "x.txt",
        "TranslationTransform",
        (1.0, 0.0, 0.0),
        '(InitialTransformParametersFileName "y.txt")\n',
    )
    looping = _write(
        tmp_path,
        "y.txt",
        "TranslationTransform",
        (1.0, 0.0, 0.0),
        '(InitialTransformParametersFileName "x.txt")\n',
    )
    with pytest.raises(InputError, match="refer to each other in a loop"):
        read_transform(str(looping))
