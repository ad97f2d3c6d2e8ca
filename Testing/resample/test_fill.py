"""``fill`` reaches every output voxel without real moving data, and only those (issue 13, item 20).

"Without real moving data" is checked against an independent computation in numpy: the fixed voxel's
centre mapped through the transform lands outside the moving image, or its nearest moving voxel is
the scan's field-of-view padding (the ground truth the pair was built with, not the detector's mask).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from support.expected_masks import expected_data_mask, maps_inside

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.cohort.batch import BatchSettings, run_batch
from CTAffineRegisterLib.io.images import write_image, write_transform
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.resample.scans import resample_with_valid_mask


@pytest.fixture(scope="module")
def demo_pair():
    """The demo's pair (-3024 padding outside the moving scan's field of view), a little smaller."""
    return synthetic.make_pair(
        seed=0, fixed_size=(96, 96, 72), fixed_spacing=(3.0, 3.0, 3.5), anatomy_scale=0.9
    )


def test_fill_covers_padding_and_outside_and_mask_marks_exactly_those(demo_pair):
    pair = demo_pair
    analysis = analyze_background(pair.moving)
    assert analysis.padding_value == -3024
    registered, mask = resample_with_valid_mask(
        pair.moving, pair.fixed, pair.true_transform, analysis, fill=-500
    )
    values = sitk.GetArrayViewFromImage(registered)
    marked = sitk.GetArrayViewFromImage(mask)

    expected = expected_data_mask(pair.fixed, pair.moving_valid_mask, pair.true_transform)
    disagree = np.count_nonzero((marked > 0) != expected)
    assert disagree <= 1e-5 * expected.size  # ties of a voxel centre exactly halfway between two voxels
    over_padding = ~expected & maps_inside(pair.fixed, pair.moving, pair.true_transform)
    assert np.count_nonzero(over_padding) > 10_000  # the case the old code got wrong: over the padding
    assert np.count_nonzero(~expected & ~over_padding) > 10_000  # and outside the moving image
    assert np.all(values[marked == 0] == -500)
    # no second background: nothing at the moving air level where there is no data
    assert not np.any(values[marked == 0] == round(analysis.air_value))


def test_voxels_with_data_do_not_depend_on_the_fill(demo_pair):
    pair = demo_pair
    analysis = analyze_background(pair.moving)
    low, low_mask = resample_with_valid_mask(
        pair.moving, pair.fixed, pair.true_transform, analysis, fill=-500
    )
    high, high_mask = resample_with_valid_mask(
        pair.moving, pair.fixed, pair.true_transform, analysis, fill=300
    )
    assert np.array_equal(sitk.GetArrayViewFromImage(low_mask), sitk.GetArrayViewFromImage(high_mask))
    with_data = sitk.GetArrayViewFromImage(low_mask) > 0
    low_values, high_values = sitk.GetArrayViewFromImage(low), sitk.GetArrayViewFromImage(high)
    assert np.array_equal(low_values[with_data], high_values[with_data])
    assert np.all(low_values[~with_data] == -500) and np.all(high_values[~with_data] == 300)


@pytest.mark.parametrize("interpolator", ["linear", "bspline", "nearest"])
def test_fill_and_mask_agree_for_every_interpolator_and_without_padding(demo_pair, interpolator):
    """A moving scan without padding: the mask comes from the resampling itself, fill outside only."""
    pair = demo_pair
    unpadded = synthetic.make_phantom(pair.moving.GetSize(), pair.moving.GetSpacing(), seed=3)
    unpadded.CopyInformation(pair.moving)
    analysis = analyze_background(unpadded)
    assert analysis.padding_value is None
    registered, mask = resample_with_valid_mask(
        unpadded, pair.fixed, pair.true_transform, analysis, fill=-700, interpolator=interpolator
    )
    expected = maps_inside(pair.fixed, unpadded, pair.true_transform)
    marked = sitk.GetArrayViewFromImage(mask) > 0
    assert np.count_nonzero(marked != expected) <= 1e-5 * expected.size
    assert np.count_nonzero(~expected) > 10_000
    values = sitk.GetArrayViewFromImage(registered)
    assert np.all(values[~marked] == -700)
    assert registered.GetPixelID() == unpadded.GetPixelID()


def test_written_outputs_of_a_registration_with_fill(demo_pair, tmp_path):
    """The whole path, as the CLI runs it: files in, registration, files out, read back."""
    pair = demo_pair
    fixed_path, moving_path = tmp_path / "fixed.nii.gz", tmp_path / "moving.nii.gz"
    write_image(pair.fixed, str(fixed_path))
    write_image(pair.moving, str(moving_path))
    write_transform(pair.true_transform, str(tmp_path / "truth.tfm"))
    out = tmp_path / "out"
    report = run_batch(
        str(fixed_path), [str(moving_path)], BatchSettings(out_dir=str(out), fill=-500, jobs=1, quiet=True)
    )
    case = report["cases"][0]
    assert case["status"] == "ok", case.get("error")
    assert case["fill"] == -500
    registered = sitk.GetArrayFromImage(sitk.ReadImage(str(out / case["outputs"]["registered"])))
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / case["outputs"]["validmask"])))
    transform = sitk.ReadTransform(str(out / case["outputs"]["transform"]))

    expected = expected_data_mask(pair.fixed, pair.moving_valid_mask, transform)
    assert np.count_nonzero((mask > 0) != expected) <= 1e-5 * expected.size
    assert np.all(registered[mask == 0] == -500)
    over_padding = ~expected & maps_inside(pair.fixed, pair.moving, transform)
    assert np.count_nonzero(over_padding) > 10_000
    assert np.all(registered[over_padding & (mask == 0)] == -500)
