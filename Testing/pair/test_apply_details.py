"""``apply``: what each input's result says (coverage, summary, fill, result record) and that a scan's
DICOM padding tags and a non-CT image's options are honoured. Fast: tiny images, no registration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from support.dicom_writer import write_volume
from support.grid_images import dose_map, on_grid_of
from support.padding_rings import RANGE_TAGS, ring_as_a_range
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.io.images import DicomPadding
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair import apply as apply_module
from CTAffineRegisterLib.pair.apply import apply_files, apply_to_labels, apply_to_scan, describe_result
from CTAffineRegisterLib.synthetic import make_pair

IDENTITY = sitk.AffineTransform(3)


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=21, **TINY_PAIR)


def _shifted(millimetres: float) -> sitk.Transform:
    return sitk.TranslationTransform(3, (millimetres, 0.0, 0.0))


def test_a_padded_ct_covers_only_where_it_has_real_data(pair):
    """The coverage a user reads counts the field-of-view padding as no data: a scan whose circular
    field of view fills part of its square slices covers about that part of its own grid, not 100 %."""
    applied = apply_to_scan(pair.moving, pair.moving, IDENTITY)
    real_share = float(sitk.GetArrayViewFromImage(pair.moving_valid_mask).mean())
    assert real_share < 0.9  # the scan has padding corners to speak of
    assert applied.kind == "ct"
    assert applied.coverage == pytest.approx(real_share, abs=0.04)


def test_a_dicom_padding_range_is_replaced_as_register_replaces_it(pair):
    """A ring padded with a range of values (-3024..-3001) is padding only by its DICOM tags: given
    them, ``apply`` treats the scan as a padded CT (no ring values in the output)."""
    moving = ring_as_a_range(pair.moving, pair.moving_valid_mask)
    tagged = apply_to_scan(
        moving, pair.fixed, pair.true_transform, dicom_padding=DicomPadding(-3024.0, -3001.0)
    )
    assert tagged.kind == "ct"
    assert sitk.GetArrayViewFromImage(tagged.image).min() > -1100
    untagged = apply_to_scan(moving, pair.fixed, pair.true_transform)
    assert untagged.summary != tagged.summary


def test_an_image_that_is_not_ct_reports_its_coverage_and_uses_the_fill_asked_for(pair):
    dose = dose_map(pair.moving)
    shift = 0.5 * pair.moving.GetSize()[0] * pair.moving.GetSpacing()[0]  # half the image off its grid
    applied = apply_to_scan(dose, pair.moving, _shifted(shift), fill=-7.0)
    assert applied.kind == "image"
    assert applied.coverage == pytest.approx(0.5, abs=0.05)
    values = sitk.GetArrayViewFromImage(applied.image)
    outside = values[:, :, -5:]  # the far side maps beyond the image: the fill asked for
    assert np.all(outside == -7.0)
    assert "fill -7" in applied.summary


def test_an_image_that_is_not_ct_is_resampled_with_the_interpolator_asked_for(pair):
    dose = dose_map(pair.moving)
    half_voxel = 0.5 * pair.moving.GetSpacing()[0]
    nearest = apply_to_scan(dose, pair.moving, _shifted(half_voxel * 0.6), interpolator="nearest")
    linear = apply_to_scan(dose, pair.moving, _shifted(half_voxel * 0.6), interpolator="linear")
    source_values = set(np.unique(sitk.GetArrayViewFromImage(dose)).tolist())
    nearest_values = set(np.unique(sitk.GetArrayViewFromImage(nearest.image)).tolist())
    assert nearest_values <= source_values | {float(nearest.summary.rsplit("fill ", 1)[1])}
    assert not set(np.unique(sitk.GetArrayViewFromImage(linear.image)).tolist()) <= source_values


def test_the_summary_gives_the_fill_as_a_plain_number(pair):
    """An integral fill reads "-1000", not "-1000.0"; another keeps one decimal."""
    as_float = sitk.Cast(pair.moving, sitk.sitkFloat32)
    assert apply_to_scan(as_float, pair.fixed, pair.true_transform, fill=-1000.0).summary.endswith(
        "fill -1000"
    )
    assert apply_to_scan(as_float, pair.fixed, pair.true_transform, fill=-987.25).summary.endswith(
        "fill -987.2"
    )


def _labels(like: sitk.Image, values: list[int], far_value=None) -> sitk.Image:
    """One small block per value along x; ``far_value`` marks the last block, moved off the fixed grid."""
    array = np.zeros(sitk.GetArrayViewFromImage(like).shape, np.uint16)
    for index, value in enumerate(values):
        array[10:14, 20:24, 2 + 4 * index : 5 + 4 * index] = value
    return on_grid_of(array, like)


def test_a_label_summary_names_its_structures_singular_or_plural(pair):
    one = apply_to_labels(_labels(pair.moving, [7]), pair.moving, IDENTITY)
    assert one.kind == "labels"
    assert one.summary == "label map, 1 structure (7)"
    two = apply_to_labels(_labels(pair.moving, [3, 9]), pair.moving, IDENTITY)
    assert two.summary == "label map, 2 structures (3, 9)"


def test_a_long_label_list_is_cut_after_twelve(pair):
    twelve = list(range(1, 13))
    assert apply_to_labels(_labels(pair.moving, twelve), pair.moving, IDENTITY).summary.endswith(
        "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)"
    )
    thirteen = list(range(1, 14))
    assert apply_to_labels(_labels(pair.moving, thirteen), pair.moving, IDENTITY).summary.endswith(
        "(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, … (13 in all))"
    )


def test_structures_that_miss_the_fixed_grid_are_named_after_the_others(pair):
    labels = _labels(pair.moving, [4, 5, 6])
    # each output voxel shows the moving voxel 9.5 voxels further along x: blocks 4 and 5 (x <= 8) are
    # off the grid, block 6 (x 10..12) stays
    shift = 9.5 * pair.moving.GetSpacing()[0]
    applied = apply_to_labels(labels, pair.moving, _shifted(shift))
    assert applied.summary.startswith("label map, 3 structures (4, 5, 6); not on the fixed grid")
    assert applied.summary.endswith("(outside its field of view): 4, 5")


def test_each_input_gets_a_record_a_script_can_read(tmp_path, pair):
    sitk.WriteImage(pair.fixed, str(tmp_path / "fixed.nii.gz"))
    sitk.WriteImage(pair.moving, str(tmp_path / "good.nii.gz"))
    sitk.WriteTransform(pair.true_transform, str(tmp_path / "t.tfm"))
    (tmp_path / "bad.nii.gz").write_bytes(b"not an image")
    inputs = [str(tmp_path / "good.nii.gz"), str(tmp_path / "bad.nii.gz")]
    good, bad = apply_files(
        str(tmp_path / "fixed.nii.gz"), str(tmp_path / "t.tfm"), inputs, str(tmp_path / "out")
    )
    assert good["status"] == "ok" and good["input"] == inputs[0] and good["kind"] == "ct"
    assert 0.0 < good["coverage"] <= 1.0 and good["output"].endswith("good_applied.nii.gz")
    assert set(bad) == {"input", "output", "status", "error"}
    assert bad["input"] == inputs[1] and bad["output"] is None and bad["status"] == "failed"
    assert "bad.nii.gz" in bad["error"]
    assert describe_result(bad) == f"error: {bad['error']}"


def test_an_image_that_is_not_ct_covers_its_whole_grid_zeros_included(pair):
    """An MR-like map with zeros outside a circle is resampled plainly, zeros and all: its coverage is
    the whole grid (the zeros look like padding to the CT analysis, but are not taken out)."""
    z, y, x = np.indices(sitk.GetArrayViewFromImage(pair.moving).shape, dtype=np.float32)
    values = (x + y + z) * 0.5 + 100.0
    centre = (values.shape[2] - 1) / 2.0
    values[np.hypot(x - centre, y - centre) > centre - 1] = 0.0
    image = on_grid_of(values.astype(np.float32), pair.moving)
    applied = apply_to_scan(image, pair.moving, IDENTITY)
    assert applied.kind == "image"
    assert applied.coverage == 1.0


@pytest.fixture
def written(tmp_path, pair) -> dict:
    paths = {name: tmp_path / f"{name}.nii.gz" for name in ("fixed", "moving")}
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    sitk.WriteTransform(pair.true_transform, str(tmp_path / "t.tfm"))
    return {**{name: str(path) for name, path in paths.items()}, "transform": str(tmp_path / "t.tfm")}


def _apply_files(written: dict, inputs: list, out, **options) -> list[dict]:
    return apply_files(
        written["fixed"], written["transform"], [str(path) for path in inputs], str(out), **options
    )


def test_a_finished_input_records_its_output_kind_coverage_and_line(tmp_path, written):
    (record,) = _apply_files(written, [written["moving"]], tmp_path / "out")
    assert set(record) == {"input", "output", "status", "error", "kind", "summary", "coverage"}
    assert record["status"] == "ok" and record["error"] is None
    assert 0.0 < record["coverage"] < 1.0 and record["coverage"] == round(record["coverage"], 3)
    share = f"{record['coverage']:.0%} of the fixed grid has data"
    assert describe_result(record) == f"{record['output']}: {record['summary']}; {share}"


def test_outputs_already_there_are_kept_unless_overwrite_is_asked(tmp_path, written):
    out = tmp_path / "out"
    (first,) = _apply_files(written, [written["moving"]], out)
    before = Path(first["output"]).stat().st_mtime_ns
    (second,) = _apply_files(written, [written["moving"]], out)
    assert second["status"] == "failed" and "exists" in second["error"]
    assert Path(first["output"]).stat().st_mtime_ns == before
    (third,) = _apply_files(written, [written["moving"]], out, overwrite=True)
    assert third["status"] == "ok"


def test_an_input_refused_for_its_value_is_named_in_its_record(tmp_path, written):
    """A fill an int16 scan cannot hold fails that input, and its record names it."""
    (record,) = _apply_files(written, [written["moving"]], tmp_path / "out", fill=0.5)
    assert record["status"] == "failed" and record["input"] == written["moving"]
    assert record["error"].startswith(f"{written['moving']}: fill")


def test_a_failure_inside_simpleitk_is_one_line_naming_the_input(tmp_path, written, monkeypatch):
    """ITK's last line, cut at 200 characters, after the input's name."""
    last = "ITK ERROR: " + "disk gone " * 30

    def broken_write(*_arguments):
        raise RuntimeError(f"Exception thrown in SimpleITK ImageFileWriter_Execute:\n  detail\n{last}\n")

    monkeypatch.setattr(apply_module, "write_image", broken_write)
    (record,) = _apply_files(written, [written["moving"]], tmp_path / "out")
    assert record["status"] == "failed" and record["input"] == written["moving"]
    assert record["error"] == f"{written['moving']}: processing failed ({last[:200]})"


def test_a_dicom_series_padded_with_a_range_is_applied_with_its_tags(tmp_path, pair, written):
    """The series' Pixel Padding Value and Range Limit reach the analysis, as in ``register``."""
    series = tmp_path / "series"
    write_volume(series, ring_as_a_range(pair.moving, pair.moving_valid_mask), RANGE_TAGS)
    (record,) = _apply_files(written, [series], tmp_path / "out")
    assert record["status"] == "ok" and record["kind"] == "ct"
    assert sitk.GetArrayFromImage(sitk.ReadImage(record["output"])).min() > -1100


def test_the_interpolator_asked_for_is_used_for_files_and_scans(tmp_path, pair, written):
    (record,) = _apply_files(written, [written["moving"]], tmp_path / "out", interpolator="nearest")
    from_file = sitk.GetArrayFromImage(sitk.ReadImage(record["output"]))
    direct = apply_to_scan(pair.moving, pair.fixed, pair.true_transform, interpolator="nearest")
    assert np.array_equal(from_file, sitk.GetArrayViewFromImage(direct.image))
    linear = apply_to_scan(pair.moving, pair.fixed, pair.true_transform)
    assert not np.array_equal(from_file, sitk.GetArrayViewFromImage(linear.image))
    # nearest: only values the scan has (padding replaced by its air level) or the fill
    allowed = set(np.unique(sitk.GetArrayViewFromImage(pair.moving)).tolist()) | {-1000, -1024, -3024}
    assert set(np.unique(from_file).tolist()) - allowed <= {
        round(float(direct.summary.rsplit("fill ", 1)[1]))
    }


def test_the_summary_says_when_padding_was_replaced(pair):
    padded = apply_to_scan(pair.moving, pair.fixed, pair.true_transform)
    assert "; padding replaced by air; fill" in padded.summary
    unpadded = apply_to_scan(pair.fixed, pair.moving, pair.true_transform.GetInverse())
    assert unpadded.summary.startswith(analyze_background(pair.fixed).summary + "; fill ")


@pytest.mark.parametrize("axis", [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)])
def test_a_half_turn_about_the_grid_centre_covers_the_whole_grid(axis):
    """A turn that maps the grid onto itself covers all of it, however far the grid is from the
    origin (the coverage reads the transform about the right centre)."""
    image = sitk.Image(64, 64, 48, sitk.sitkFloat32)
    image.SetOrigin((-310.0, 125.0, 402.0))
    centre = image.TransformContinuousIndexToPhysicalPoint([31.5, 31.5, 23.5])
    turn = sitk.VersorRigid3DTransform()
    turn.SetCenter(centre)
    turn.SetRotation(axis, np.pi)
    values = np.indices((48, 64, 64)).sum(axis=0).astype(np.float32)
    dose = on_grid_of(values, image)
    assert apply_to_scan(dose, image, turn).coverage == 1.0


def test_a_non_linear_transform_is_applied_with_its_coverage(pair):
    """A displacement field (here: none) gives what the identity gives, coverage included."""
    field = sitk.Image(pair.fixed.GetSize(), sitk.sitkVectorFloat64, 3)
    field.CopyInformation(pair.fixed)
    warp = sitk.DisplacementFieldTransform(field)
    warped = apply_to_scan(pair.moving, pair.fixed, warp)
    plain = apply_to_scan(pair.moving, pair.fixed, sitk.AffineTransform(3))
    assert warped.coverage == plain.coverage > 0.0
    assert np.array_equal(sitk.GetArrayViewFromImage(warped.image), sitk.GetArrayViewFromImage(plain.image))


def test_the_command_passes_its_fill_and_interpolator_on(tmp_path, pair, written, capsys):
    out = tmp_path / "out"
    arguments = ["apply", "--fixed", written["fixed"], "--transform", written["transform"]]
    arguments += [
        "--input",
        written["moving"],
        "--out",
        str(out),
        "--fill",
        "-2500",
        "--interpolator",
        "bspline",
    ]
    assert main(arguments) == 0
    written_scan = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "moving_applied.nii.gz")))
    expected = apply_to_scan(pair.moving, pair.fixed, pair.true_transform, fill=-2500, interpolator="bspline")
    assert np.array_equal(written_scan, sitk.GetArrayViewFromImage(expected.image))
    assert (written_scan == -2500).any()
    assert expected.summary.endswith("fill -2500") and expected.summary in capsys.readouterr().out
