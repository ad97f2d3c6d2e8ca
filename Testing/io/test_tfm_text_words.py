"""The reason a user reads when an ITK text transform file is refused before ITK parses it
(io/tfm_text.py), in this process (test_tfm_text.py reads through ITK in a subprocess, so a crash is a
failed test). Fast: small text files, no ITK."""

from __future__ import annotations

import pytest

from CTAffineRegisterLib.io.tfm_text import itk_text_problem

_HEADER = "#Insight Transform File V1.0\n"


def _problem(tmp_path, body: str, header: str = _HEADER):
    path = tmp_path / "t.tfm"
    path.write_text(header + body, encoding="latin-1")
    return itk_text_problem(str(path))


def _single(kind: str, parameters: str, fixed: str = "0 0 0") -> str:
    return f"#Transform 0\nTransform: {kind}\nParameters: {parameters}\nFixedParameters: {fixed}\n"


@pytest.mark.parametrize(
    "name, count",
    [
        ("Euler3DTransform", 6),
        ("VersorRigid3DTransform", 6),
        ("Similarity3DTransform", 7),
        ("ScaleVersor3DTransform", 9),
        ("ScaleSkewVersor3DTransform", 15),
        ("ComposeScaleSkewVersor3DTransform", 12),
        ("ScaleTransform", 3),
        ("VersorTransform", 3),
    ],
)
def test_each_unchecked_3d_transform_needs_exactly_its_parameter_count(tmp_path, name, count):
    kind = f"{name}_double_3_3"
    right = " ".join(["0"] * count)
    assert _problem(tmp_path, _single(kind, right)) is None
    for wrong in (count - 1, count + 1):
        words = " ".join(["0"] * wrong)
        assert _problem(tmp_path, _single(kind, words)) == (
            f"transform 0 ({kind}): has {wrong} Parameters; a 3D {name} has {count}"
        )


def test_a_file_not_in_itk_text_format_is_left_to_the_reader(tmp_path):
    assert _problem(tmp_path, _single("Euler3DTransform_double_3_3", "nan"), header="#Other\n") is None
    assert _problem(tmp_path, "", header="#Insight Transform") is None  # shorter than the header
    path = tmp_path / "binary.mat"
    path.write_bytes(b"\x00\xff" * 40)
    assert itk_text_problem(str(path)) is None


def test_counts_are_checked_only_for_3d_parameters_of_known_kinds(tmp_path):
    assert _problem(tmp_path, _single("Euler3DTransform_double_2_2", "0 0")) is None
    assert _problem(tmp_path, _single("AffineTransform_double_3_3", "0 0")) is None
    assert _problem(tmp_path, _single("Euler3DTransform", "0 0")) is None  # no _double_3_3: ITK decides
    assert _problem(tmp_path, _single("Euler3DTransform_double_3_3", "0 0 0 0 0 0", fixed="0")) is None
    assert _problem(tmp_path, _single("Euler3DTransform_float_3_3", "0 0")) == (
        "transform 0 (Euler3DTransform_float_3_3): has 2 Parameters; a 3D Euler3DTransform has 6"
    )


def test_the_first_bad_value_is_named_by_its_place_and_cut_to_forty_characters(tmp_path):
    long_word = "z" * 60
    assert _problem(tmp_path, _single("AffineTransform_double_3_3", f"1 2 {long_word} nan")) == (
        f"transform 0 (AffineTransform_double_3_3): Parameters value 3 is '{'z' * 40}', not a number"
    )
    assert _problem(tmp_path, _single("AffineTransform_double_3_3", "-inf 1")) == (
        "transform 0 (AffineTransform_double_3_3): Parameters value 1 is -inf: "
        "NaN or Inf maps no point to a place"
    )
    assert _problem(tmp_path, _single("AffineTransform_double_3_3", "1 2 3", fixed="1 NaN")) == (
        "transform 0 (AffineTransform_double_3_3): FixedParameters value 2 is NaN: "
        "NaN or Inf maps no point to a place"
    )


def test_the_transform_is_named_by_its_number_and_kind_in_a_composite(tmp_path):
    body = (
        "#Transform 0\nTransform: CompositeTransform_double_3_3\n"
        "#Transform 1\nTransform: TranslationTransform_double_3_3\nParameters: 1 2 3\nFixedParameters:\n"
        "  #Transform   2  \n  Transform:   Euler3DTransform_double_3_3  \n"
        "  Parameters:  0 0 0 0 0  \nFixedParameters: 0 0 0\n"
    )
    assert _problem(tmp_path, body) == (
        "transform 2 (Euler3DTransform_double_3_3): has 5 Parameters; a 3D Euler3DTransform has 6"
    )


def test_values_before_any_transform_line_are_named_as_transform_zero_of_unknown_kind(tmp_path):
    assert (
        _problem(tmp_path, "Parameters: 1 x\n") == "transform 0 (?): Parameters value 2 is 'x', not a number"
    )


def test_bytes_that_are_not_utf8_do_not_stop_the_check(tmp_path):
    path = tmp_path / "latin.tfm"
    body = _single("Euler3DTransform_double_3_3", "0 0 0 0 0")
    path.write_bytes(_HEADER.encode() + "# written by G\xe9rard\n".encode("latin-1") + body.encode())
    assert itk_text_problem(str(path)) == (
        "transform 0 (Euler3DTransform_double_3_3): has 5 Parameters; a 3D Euler3DTransform has 6"
    )


def test_a_word_holding_a_colon_is_named_whole(tmp_path):
    assert _problem(tmp_path, _single("Euler3DTransform_double_3_3", "0 0 0 0 0 a:b")) == (
        "transform 0 (Euler3DTransform_double_3_3): Parameters value 6 is 'a:b', not a number"
    )


def test_a_long_number_that_overflows_to_inf_is_cut_to_forty_characters(tmp_path):
    huge = "1e" + "9" * 45
    assert _problem(tmp_path, _single("AffineTransform_double_3_3", f"1 {huge}")) == (
        f"transform 0 (AffineTransform_double_3_3): Parameters value 2 is {huge[:40]}: "
        "NaN or Inf maps no point to a place"
    )
