"""The Python API refuses a wrong argument at once, naming it, before any work is done."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import SimpleITK as sitk

from CTAffineRegisterLib.io.images import DicomPadding, LoadedImage
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair.register import register_pair
from CTAffineRegisterLib.registration.engine import RegistrationError, RegistrationOptions, register_images
from CTAffineRegisterLib.synthetic import make_phantom


@pytest.fixture(scope="module")
def volume() -> sitk.Image:
    return make_phantom(size=(32, 32, 20), spacing=(8.0, 8.0, 9.0), seed=1)


@pytest.fixture(scope="module")
def analysis(volume):
    return analyze_background(volume)


def _image(size, pixel=sitk.sitkInt16, components=1) -> sitk.Image:
    if components > 1:
        return sitk.Image(list(size), sitk.sitkVectorFloat32, components)
    return sitk.Image(list(size), pixel)


BAD_IMAGES = [
    (None, TypeError, "must be a SimpleITK.Image, not None"),
    (
        np.zeros((4, 5, 6)),
        TypeError,
        "not a numpy array of shape (4, 5, 6); make one with sitk.GetImageFromArray",
    ),
    ("scan.nii.gz", TypeError, "not the path 'scan.nii.gz'; read it first: read_image(path).image"),
    (_image((16, 16)), ValueError, "must be a 3D image, not 2D"),
    (_image((8, 8, 8, 1)), ValueError, "not 4D (size (8, 8, 8, 1)) (take image[:, :, :, 0]"),
    (_image((8, 8, 8), components=3), ValueError, "must have one value per voxel, not 3"),
    (_image((8, 8, 8), pixel=sitk.sitkComplexFloat32), ValueError, "must be real-valued"),
    (_image((0, 0, 0)), ValueError, "is empty (size (0, 0, 0))"),
]


@pytest.mark.parametrize("bad, error, text", BAD_IMAGES)
@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_register_pair_names_a_bad_image(volume, role, bad, error, text):
    arguments = {"fixed": volume, "moving": volume, role: bad}
    started = time.perf_counter()
    with pytest.raises(error) as caught:
        register_pair(arguments["fixed"], arguments["moving"])
    assert str(caught.value).startswith(f"{role} ")
    assert text in str(caught.value)
    assert time.perf_counter() - started < 0.5  # refused before any analysis or registration


@pytest.mark.parametrize("bad, error, text", BAD_IMAGES)
def test_analyze_background_names_a_bad_image(bad, error, text):
    with pytest.raises(error) as caught:
        analyze_background(bad)
    assert str(caught.value).startswith("image ") and text in str(caught.value)


@pytest.mark.parametrize(
    "keyword, value, error, text",
    [
        ("fill", math.nan, ValueError, "fill must be a finite number, not nan"),
        ("fill", math.inf, ValueError, "fill must be a finite number, not inf"),
        (
            "fill",
            1e40,
            ValueError,
            "fill 1e+40 is outside the range of its 16-bit signed integer output",
        ),
        ("fill", "-1000", TypeError, "fill must be a number or None, not the path '-1000'"),
        ("fill", True, TypeError, "fill must be a number or None"),
        (
            "interpolator",
            "cubic",
            ValueError,
            "interpolator must be one of 'bspline', 'linear', 'nearest', not 'cubic'",
        ),
        (
            "transform",
            "bogus",
            ValueError,
            "transform must be one of 'rigid', 'similarity', 'affine', not 'bogus'",
        ),
        ("transform", None, ValueError, "transform must be one of"),
        (
            "options",
            {"transform": "rigid"},
            TypeError,
            "options must be a RegistrationOptions or None, not a dict",
        ),
        ("fixed_padding", -3024, TypeError, "fixed_padding must be a DicomPadding or None, not an int"),
        ("moving_analysis", "analysis", TypeError, "moving_analysis must be a BackgroundAnalysis or None"),
        ("progress", 5, TypeError, "progress must be a callable"),
        ("cancel", "stop", TypeError, "cancel must be a threading.Event, a callable"),
    ],
)
def test_register_pair_names_a_bad_option(volume, keyword, value, error, text):
    started = time.perf_counter()
    with pytest.raises(error) as caught:
        register_pair(volume, volume, **{keyword: value})
    assert text in str(caught.value)
    assert time.perf_counter() - started < 0.5


def test_a_loaded_image_gets_a_hint(volume):
    loaded = LoadedImage(image=volume, path="a.nii.gz", name="a", dicom_padding=DicomPadding(-3024.0))
    with pytest.raises(TypeError, match=r"pass its \.image \(and its \.dicom_padding"):
        register_pair(loaded, volume)


def test_single_slice_is_refused_for_registration_but_analysed(volume):
    one_slice = volume[:, :, 5:6]
    with pytest.raises(ValueError, match="moving is a single slice"):
        register_pair(volume, one_slice)
    assert analyze_background(one_slice).kind != "not-ct"  # a single slice can still be inspected


@pytest.mark.parametrize("role", ["fixed", "moving"])
def test_an_image_that_is_not_ct_is_refused_before_registering(volume, role):
    """An MR-like image (no negative values) is named, with the reason, before any iteration."""
    shifted = sitk.Cast(volume + 2000, sitk.sitkInt16)
    pair = {"fixed": volume, "moving": volume, role: shifted}
    events = []
    with pytest.raises(RegistrationError, match=rf"^{role} image is not CT-like \(no negative values"):
        register_pair(pair["fixed"], pair["moving"], progress=events.append)
    assert events == []


def test_register_images_needs_analyses_and_images(volume, analysis):
    with pytest.raises(TypeError, match="fixed_analysis is required: pass analyze_background"):
        register_images(volume, volume, None, analysis)
    with pytest.raises(TypeError, match="moving must be a SimpleITK.Image, not a numpy array"):
        register_images(volume, sitk.GetArrayFromImage(volume), analysis, analysis)
    with pytest.raises(TypeError, match="options must be a RegistrationOptions"):
        register_images(volume, volume, analysis, analysis, options="affine")


def test_good_arguments_still_pass_the_checks(volume, analysis):
    """The checks accept what the API documents: numpy numbers, Events, explicit options."""
    import threading

    cancel = threading.Event()
    cancel.set()  # stops at the first iteration: the checks have been passed by then
    from CTAffineRegisterLib.registration.engine import RegistrationCancelled

    with pytest.raises(RegistrationCancelled):
        register_pair(
            volume,
            volume,
            fill=np.int16(-1000),
            interpolator="bspline",
            options=RegistrationOptions(transform="rigid"),
            fixed_analysis=analysis,
            moving_analysis=analysis,
            progress=lambda event: None,
            cancel=cancel,
        )
