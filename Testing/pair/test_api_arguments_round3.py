"""Python API: ``check_transform`` and the label functions name a wrong argument (issue 21, item 13)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.pair.check import check_transform
from CTAffineRegisterLib.resample.labels import (
    carry_labels,
    check_label_image,
    check_labels_overlap,
    label_dice,
    resample_labels,
)
from CTAffineRegisterLib.synthetic import make_pair


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


@pytest.fixture(scope="module")
def labels(pair):
    values = sitk.GetArrayViewFromImage(pair.moving)
    image = sitk.GetImageFromArray((values > 250).astype(np.uint8))
    image.CopyInformation(pair.moving)
    return image


def _bspline(image: sitk.Image) -> sitk.Transform:
    return sitk.BSplineTransformInitializer(image, [3, 3, 3])


def _displacement(image: sitk.Image) -> sitk.Transform:
    field = sitk.Image(image.GetSize(), sitk.sitkVectorFloat64, 3)
    field.CopyInformation(image)
    return sitk.DisplacementFieldTransform(field)


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda p: _bspline(p.fixed), ValueError, "transform is a non-linear transform (BSplineTransform)"),
        (lambda p: _displacement(p.fixed), ValueError, "transform is a non-linear transform"),
        (lambda p: None, TypeError, "transform must be a SimpleITK.Transform (fixed → moving), not None"),
        (lambda p: "t.tfm", TypeError, "not the path 't.tfm'; read it first"),
        (lambda p: np.eye(4), TypeError, "not a numpy array of shape (4, 4)"),
        (lambda p: sitk.AffineTransform(2), ValueError, "transform must be a 3D transform, not 2D"),
        (lambda p: _zero_affine(), ValueError, "transform: its matrix is singular"),
    ],
)
def test_check_transform_refuses_what_the_cli_refuses(pair, make, error, words):
    with pytest.raises(error) as raised:
        check_transform(pair.fixed, pair.moving, make(pair))
    assert words in str(raised.value)


def _zero_affine() -> sitk.Transform:
    transform = sitk.AffineTransform(3)
    transform.SetMatrix([0.0] * 9)
    return transform


def test_check_transform_still_judges_a_linear_transform(pair):
    assert check_transform(pair.fixed, pair.moving, pair.true_transform)["verdict"] == "ok"


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda p, lab: carry_labels(None, p.moving, p.fixed, p.true_transform), TypeError, "labels must be"),
        (lambda p, lab: carry_labels(lab, None, p.fixed, p.true_transform), TypeError, "scan must be"),
        (lambda p, lab: carry_labels(lab, p.moving, None, p.true_transform), TypeError, "fixed must be"),
        (lambda p, lab: carry_labels(lab, p.moving, p.fixed, None), TypeError, "transform must be"),
        (lambda p, lab: resample_labels(lab, None, p.true_transform), TypeError, "reference must be a"),
        (lambda p, lab: resample_labels(lab, p.fixed, None), TypeError, "transform must be"),
        (
            lambda p, lab: resample_labels(lab, p.fixed, sitk.AffineTransform(2)),
            ValueError,
            "transform must be a 3D transform, not 2D",
        ),
        (lambda p, lab: check_label_image(None), TypeError, "labels must be a SimpleITK.Image, not None"),
        (
            lambda p, lab: check_label_image(np.zeros((3, 3, 3), np.uint8)),
            TypeError,
            "labels must be a SimpleITK.Image, not a numpy array of shape (3, 3, 3)",
        ),
        (lambda p, lab: check_labels_overlap(lab, None), TypeError, "scan must be a SimpleITK.Image"),
        (lambda p, lab: check_labels_overlap(None, p.moving), TypeError, "labels must be"),
        (lambda p, lab: label_dice(None, None), TypeError, "first must be a SimpleITK.Image, not None"),
        (lambda p, lab: label_dice(lab, "x.nii.gz"), TypeError, "second must be a SimpleITK.Image"),
    ],
)
def test_label_functions_name_a_wrong_argument(pair, labels, call, error, words):
    with pytest.raises(error) as raised:
        call(pair, labels)
    assert words in str(raised.value)


def test_label_functions_still_work_with_good_arguments(pair, labels):
    carried = carry_labels(labels, pair.moving, pair.fixed, pair.true_transform)
    assert carried.GetSize() == pair.fixed.GetSize()
    assert check_label_image(labels) == [1]
    assert label_dice(labels, labels) == {1: 1.0}


def test_check_transform_still_judges_a_single_slice_scan(pair):
    """The argument checks leave thin scans to the verdict's coverage check, as before."""
    result = check_transform(pair.fixed[:, :, 10:11], pair.moving, pair.true_transform)
    assert result["verdict"] in ("ok", "suspect", "failed") and "coverage" in result["checks"]
