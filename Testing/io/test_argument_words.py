"""What a Python API user reads when an argument is wrong (io/arguments.py): the exception type and the
whole sentence, which names the argument, says what was given and what to pass instead. Fast: tiny
images, no reading, no registration."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io import arguments
from CTAffineRegisterLib.io.images import LoadedImage


def _words(check, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises((TypeError, ValueError)) as caught:
        check(*args, **kwargs)
    return type(caught.value).__name__, str(caught.value)


def test_something_that_is_not_an_image_is_named_with_a_hint_for_what_to_pass():
    image_hint = "; make one with sitk.GetImageFromArray(array) and set its spacing, origin and direction"
    path_hint = "; read it first: read_image(path).image"
    for check in (arguments.check_image, arguments.check_image_type):
        assert _words(check, None, "fixed") == ("TypeError", "fixed must be a SimpleITK.Image, not None")
        assert _words(check, np.zeros((2, 3)), "fixed") == (
            "TypeError",
            "fixed must be a SimpleITK.Image, not a numpy array of shape (2, 3)" + image_hint,
        )
        assert _words(check, "a.nii", "moving") == (
            "TypeError",
            "moving must be a SimpleITK.Image, not the path 'a.nii'" + path_hint,
        )
        assert _words(check, Path("b.nii"), "moving") == (
            "TypeError",
            "moving must be a SimpleITK.Image, not the path 'b.nii'" + path_hint,
        )
        assert _words(check, 3, "fixed") == ("TypeError", "fixed must be a SimpleITK.Image, not an int")
        loaded = LoadedImage(image=sitk.Image([2, 2, 2], sitk.sitkInt16), path="c.nii", name="c")
        kind, words = _words(check, loaded, "fixed")
        assert kind == "TypeError"
        assert words.startswith("fixed must be a SimpleITK.Image, not a ")
        assert words.endswith("LoadedImage; pass its .image (and its .dicom_padding as the padding argument)")


def test_an_image_of_the_wrong_shape_or_kind_is_refused_with_its_size():
    check = arguments.check_image
    assert _words(check, sitk.Image([4, 4], sitk.sitkInt16), "fixed") == (
        "ValueError",
        "fixed must be a 3D image, not 2D (size (4, 4))",
    )
    assert _words(check, sitk.Image([4, 4, 4, 1], sitk.sitkInt16), "fixed") == (
        "ValueError",
        "fixed must be a 3D image, not 4D (size (4, 4, 4, 1)) "
        "(take image[:, :, :, 0] for a 4D image with one volume)",
    )
    assert _words(check, sitk.Image([4, 4, 4, 2], sitk.sitkInt16), "fixed") == (
        "ValueError",
        "fixed must be a 3D image, not 4D (size (4, 4, 4, 2))",
    )
    assert _words(check, sitk.Image([4, 4, 4], sitk.sitkVectorFloat32, 3), "moving") == (
        "ValueError",
        "moving must have one value per voxel, not 3 (vector of 32-bit float)",
    )
    for pixel, words in ((sitk.sitkComplexFloat32, "32"), (sitk.sitkComplexFloat64, "64")):
        assert _words(check, sitk.Image([4, 4, 4], pixel), "moving") == (
            "ValueError",
            f"moving must be real-valued, not complex of {words}-bit float",
        )
    assert _words(check, sitk.Image([4, 4, 0], sitk.sitkInt16), "fixed") == (
        "ValueError",
        "fixed is empty (size (4, 4, 0))",
    )


def test_a_single_slice_is_refused_only_where_a_volume_is_needed():
    one_slice = sitk.Image([4, 4, 1], sitk.sitkInt16)
    arguments.check_image(one_slice, "fixed")
    assert _words(arguments.check_image, one_slice, "fixed", volume=True) == (
        "ValueError",
        "fixed is a single slice (size (4, 4, 1)); registration needs 2 or more voxels per axis",
    )
    arguments.check_image(sitk.Image([2, 2, 2], sitk.sitkFloat32), "fixed", volume=True)
    arguments.check_image_type(sitk.Image([4, 4], sitk.sitkInt16), "fixed")


def test_a_transform_argument_is_checked_for_kind_dimension_linearity_and_matrix():
    check = arguments.check_transform_argument
    assert _words(check, None) == (
        "TypeError",
        "transform must be a SimpleITK.Transform (fixed → moving), not None",
    )
    assert _words(check, "x.tfm", "initial") == (
        "TypeError",
        "initial must be a SimpleITK.Transform (fixed → moving), not the path 'x.tfm'; "
        "read it first: read_transform(path)",
    )
    assert _words(check, Path("y.tfm")) == (
        "TypeError",
        "transform must be a SimpleITK.Transform (fixed → moving), not the path 'y.tfm'; "
        "read it first: read_transform(path)",
    )
    assert _words(check, np.eye(4)) == (
        "TypeError",
        "transform must be a SimpleITK.Transform (fixed → moving), not a numpy array of shape (4, 4)",
    )
    assert _words(check, sitk.AffineTransform(2)) == (
        "ValueError",
        "transform must be a 3D transform, not 2D (AffineTransform)",
    )
    assert _words(check, sitk.BSplineTransform(3), linear=True) == (
        "ValueError",
        "transform is a non-linear transform (BSplineTransform); only linear transforms can be checked",
    )
    check(sitk.BSplineTransform(3))
    check(sitk.AffineTransform(3), linear=True)
    flat = sitk.AffineTransform(3)
    flat.SetMatrix([0.0] * 9)
    kind, words = _words(check, flat, "tx")
    assert kind == "ValueError"
    assert words.startswith("tx: its matrix is singular")


def test_a_choice_not_offered_lists_the_choices():
    choices = ("linear", "nearest")
    arguments.check_choice("nearest", "interpolator", choices)
    assert _words(arguments.check_choice, "cubic", "interpolator", choices) == (
        "ValueError",
        "interpolator must be one of 'linear', 'nearest', not 'cubic'",
    )
    assert _words(arguments.check_choice, 3, "interpolator", choices) == (
        "ValueError",
        "interpolator must be one of 'linear', 'nearest', not 3",
    )


def test_an_instance_check_says_whether_none_was_allowed():
    arguments.check_instance(None, "options", dict, optional=True)
    arguments.check_instance({}, "options", dict)
    assert _words(arguments.check_instance, None, "options", dict) == (
        "TypeError",
        "options must be a dict, not None",
    )
    assert _words(arguments.check_instance, "x", "options", dict, optional=True) == (
        "TypeError",
        "options must be a dict or None, not the path 'x'",
    )


def test_callbacks_accept_callables_events_and_none_and_name_anything_else():
    arguments.check_callbacks(None, None)
    arguments.check_callbacks(print, threading.Event())
    arguments.check_callbacks(None, lambda: False)
    assert _words(arguments.check_callbacks, 3, None) == (
        "TypeError",
        "progress must be a callable taking a ProgressEvent, or None, not an int",
    )
    assert _words(arguments.check_callbacks, None, 3) == (
        "TypeError",
        "cancel must be a threading.Event, a callable returning True to stop, or None, not an int",
    )
    assert _words(arguments.check_callbacks, None, object()) == (
        "TypeError",
        "cancel must be a threading.Event, a callable returning True to stop, or None, not an object",
    )


def test_a_wrong_value_is_described_in_words():
    class Options:
        pass

    assert arguments.describe(None) == "None"
    assert arguments.describe(np.zeros(3)) == "a numpy array of shape (3,)"
    assert arguments.describe(Path("scan.nii")) == "the path 'scan.nii'"
    assert arguments.describe(1.5) == "a float"
    assert arguments.describe([1]) == "a list"
    assert arguments.describe(Options()) == f"a {__name__}.{Options.__qualname__}"
    assert arguments.describe(object()) == "an object"
    assert arguments.describe(ValueError()) == "a ValueError"
    assert arguments.describe(set()) == "a set"
    assert arguments.describe(type("Reader", (), {"__module__": "Xray"})()) == "a Xray.Reader"
    assert arguments.describe(type("Reader", (), {"__module__": "io_tools"})()) == "an io_tools.Reader"
